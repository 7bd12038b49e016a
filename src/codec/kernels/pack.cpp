// Bucketed packing of QSGD (2-, 4- and 8-bit fields) and TernGrad (2-bit codes) on Highway: one
// implementation for both, a quantizer policy each (quantize-inl.h). Per bucket: the scale pass
// (maximum magnitude, finiteness), the scale, then the fields straight into the message bytes
// with the rounding stream drawn alongside: no field array, no bit writer. The bytes are those of
// encode_buckets in qsgd.cpp / terngrad.cpp from a byte-aligned position (qsgd_kernels.hpp
// documents the contracts); kernel_targets_test.cpp checks them on every target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/pack.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <bit>
#include <cstring>

#include "src/codec/kernels/targets.hpp"
#include "src/codec/qsgd_kernels.hpp"
// Per target, after highway.h:
#include "src/codec/kernels/quantize-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {

using VU = hn::Vec<DU>;

#if HWY_TARGET != HWY_SCALAR
// Lane i of the result: v[2i] | v[2i + 1] << kShift, where v is a's lanes then b's (values below
// 2^kShift): the odd lane moves down next to the even one inside each 64-bit lane, then the even
// 32-bit lanes of both are concatenated.
template <int kShift>
HWY_INLINE VU PairUp(VU a, VU b) {
  const DU du;
  const hn::Repartition<std::uint64_t, DU> d64;
  const auto low = hn::Set(d64, 0xFFFFFFFFULL);
  const auto join = [&](VU v) HWY_ATTR {
    const auto w = hn::BitCast(d64, v);
    return hn::BitCast(du, hn::Or(hn::And(w, low), hn::ShiftRight<32 - kShift>(w)));
  };
  return hn::ConcatEven(du, join(b), join(a));
}
#endif

// Stores the fields of 8/FW vectors f0, f1, ... (consecutive elements; the unused ones ignored)
// as FW-bit fields, least significant first: Lanes bytes.
template <int FW>
HWY_INLINE void StoreFields(VU f0, VU f1, VU f2, VU f3, std::uint8_t* out) {
#if HWY_TARGET == HWY_SCALAR
  std::uint32_t byte = hn::GetLane(f0);
  if constexpr (FW <= 4) byte |= hn::GetLane(f1) << FW;
  if constexpr (FW == 2) byte |= (hn::GetLane(f2) << 4) | (hn::GetLane(f3) << 6);
  *out = static_cast<std::uint8_t>(byte);
#else
  VU bytes = f0;
  if constexpr (FW == 4) bytes = PairUp<4>(f0, f1);
  if constexpr (FW == 2) bytes = PairUp<4>(PairUp<2>(f0, f1), PairUp<2>(f2, f3));
  const hn::Rebind<std::uint8_t, DU> d8;
  hn::StoreU(hn::DemoteTo(d8, hn::BitCast(DI(), bytes)), d8, out);
#endif
}

// The quantized fields of the lanes at u[at] (element g + at), or zeros at or past n.
template <class Quantize>
HWY_INLINE VU FieldsAt(const std::uint32_t* ub, std::size_t at, std::size_t n, std::uint64_t g,
                       const Quantize& quantize, RoundingStream& stream) {
  const DU du;
  if (at >= n) return hn::Zero(du);
  return quantize(hn::LoadU(du, ub + at), stream.at(g + at));
}

// Packs the fields of u[0..n) (n a multiple of 16; g, the index of u[0], a multiple of 16, where
// the stream stands) into n·FW/8 bytes.
template <int FW, class Quantize>
HWY_INLINE void PackRun(const float* u, std::size_t n, std::uint64_t g, const Quantize& quantize,
                        RoundingStream& stream, std::uint8_t* out) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t step = static_cast<std::size_t>(8 / FW) * lanes;
  const auto* ub = reinterpret_cast<const std::uint32_t*>(u);
  for (std::size_t i = 0; i < n; i += step) {
    const VU f0 = FieldsAt(ub, i, n, g, quantize, stream);
    const VU f1 = FW <= 4 ? FieldsAt(ub, i + lanes, n, g, quantize, stream) : f0;
    const VU f2 = FW == 2 ? FieldsAt(ub, i + 2 * lanes, n, g, quantize, stream) : f0;
    const VU f3 = FW == 2 ? FieldsAt(ub, i + 3 * lanes, n, g, quantize, stream) : f0;
    if (i + step <= n) {
      StoreFields<FW>(f0, f1, f2, f3, out + i * FW / 8);
    } else {
      // The last, partial step (whole groups of lanes; the missing vectors are zeros).
      HWY_ALIGN std::uint8_t tmp[HWY_MAX_BYTES];
      StoreFields<FW>(f0, f1, f2, f3, tmp);
      std::memcpy(out + i * FW / 8, tmp, (n - i) * FW / 8);
    }
  }
}

// max_i |u_i| as a bit pattern (sign cleared): a NaN or infinity gives >= 0x7F800000.
HWY_INLINE std::uint32_t MaxAbsBits(const float* u, std::size_t n) {
  const DU du;
  const DI di;
  const std::size_t lanes = hn::Lanes(du);
  const auto* ub = reinterpret_cast<const std::uint32_t*>(u);
  const auto magnitude = hn::Set(du, 0x7FFFFFFFU);
  auto m0 = hn::Zero(di);
  auto m1 = hn::Zero(di);
  std::size_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    m0 = hn::Max(m0, hn::BitCast(di, hn::And(hn::LoadU(du, ub + i), magnitude)));
    m1 = hn::Max(m1, hn::BitCast(di, hn::And(hn::LoadU(du, ub + i + lanes), magnitude)));
  }
  for (; i + lanes <= n; i += lanes) {
    m0 = hn::Max(m0, hn::BitCast(di, hn::And(hn::LoadU(du, ub + i), magnitude)));
  }
  auto m = static_cast<std::uint32_t>(hn::GetLane(hn::MaxOfLanes(di, hn::Max(m0, m1))));
  for (; i < n; ++i) m = std::max(m, ub[i] & 0x7FFFFFFFU);
  return m;
}

// The two quantizer policies of PackBuckets: what inv's numerator is, and the lane quantizer of a
// bucket with its scale and inv = numerator/scale.
template <int FW>
struct QsgdPolicy {
  float s_f;
  [[nodiscard]] float numerator() const { return s_f; }
  [[nodiscard]] QsgdSmallLanes<FW> quantizer(float /*scale*/, float inv) const {
    return QsgdSmallLanes<FW>(inv, s_f);
  }
};
struct TernGradPolicy {
  [[nodiscard]] static float numerator() { return 1.0f; }
  // Runs are unclipped (terngrad_pack_buckets): min(|x|, scale) is |x|.
  [[nodiscard]] static TernGradLanes quantizer(float scale, float inv) {
    return TernGradLanes(scale, inv);
  }
};

template <int FW, class Policy>
HWY_INLINE PackedRun PackBuckets(const float* u, std::size_t buckets, std::size_t bucket,
                                 std::uint64_t first, const Policy& policy, const RoundingKey& key,
                                 std::uint8_t* out) {
  RoundingStream stream(key);
  stream.seek(first);
  std::uint64_t position = first;  // where the rounding stream stands
  PackedRun run{0, 0};
  for (; run.buckets < buckets; ++run.buckets) {
    const float* b = u + run.buckets * bucket;
    const std::uint64_t g = first + run.buckets * bucket;
    const std::uint32_t scale_bits = MaxAbsBits(b, bucket);
    if (scale_bits >= 0x7F800000U) break;  // not finite: the caller reports it
    const float scale = std::bit_cast<float>(scale_bits);
    // numerator/scale as the codecs compute it (in double, then rounded to fp32; one fp32
    // division gives the same float, as double rounding is harmless for a quotient of floats).
    // From 2^100 on (subnormal scales) the caller's double path takes the bucket.
    const float inv = scale == 0.0f ? 0.0f : policy.numerator() / scale;
    if (!(inv < 0x1.0p100f)) break;
    std::memcpy(out + run.bytes, &scale_bits, 4);
    run.bytes += 4;
    if (scale == 0.0f) continue;  // a zero bucket sends only its scale
    if (g != position) stream.seek(g);
    position = g + bucket;
    PackRun<FW>(b, bucket, g, policy.quantizer(scale, inv), stream, out + run.bytes);
    run.bytes += bucket * FW / 8;
  }
  return run;
}

PackedRun QsgdPackBuckets(const float* u, std::size_t buckets, std::size_t bucket,
                          std::uint64_t first, std::uint32_t s, unsigned width,
                          const RoundingKey& key, std::uint8_t* out) {
  const auto s_f = static_cast<float>(s);
  if (width == 1) return PackBuckets<2>(u, buckets, bucket, first, QsgdPolicy<2>{s_f}, key, out);
  if (width == 3) return PackBuckets<4>(u, buckets, bucket, first, QsgdPolicy<4>{s_f}, key, out);
  return PackBuckets<8>(u, buckets, bucket, first, QsgdPolicy<8>{s_f}, key, out);
}

PackedRun TernGradPackBuckets(const float* u, std::size_t buckets, std::size_t bucket,
                              std::uint64_t first, const RoundingKey& key, std::uint8_t* out) {
  return PackBuckets<2>(u, buckets, bucket, first, TernGradPolicy{}, key, out);
}

void QsgdPack(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
              unsigned width, const RoundingKey& key, std::uint8_t* out) {
  RoundingStream stream(key);
  stream.seek(first);
  const auto s_f = static_cast<float>(s);
  if (width == 1) return PackRun<2>(u, n, first, QsgdSmallLanes<2>(inv, s_f), stream, out);
  if (width == 3) return PackRun<4>(u, n, first, QsgdSmallLanes<4>(inv, s_f), stream, out);
  PackRun<8>(u, n, first, QsgdSmallLanes<8>(inv, s_f), stream, out);
}

void TernGradPack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                  const RoundingKey& key, std::uint8_t* out) {
  RoundingStream stream(key);
  stream.seek(first);
  PackRun<2>(u, n, first, TernGradLanes(scale, inv), stream, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(QsgdPackBuckets);
HWY_EXPORT(TernGradPackBuckets);
HWY_EXPORT(QsgdPack);
HWY_EXPORT(TernGradPack);

bool has_fused_pack() noexcept { return true; }

void qsgd_pack(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
               unsigned width, const RoundingKey& key, std::uint8_t* out) noexcept {
  if (avx512_dl_target()) return qsgd_pack_avx512(u, n, first, inv, s, width, key, out);
  HWY_DYNAMIC_DISPATCH(QsgdPack)(u, n, first, inv, s, width, key, out);
}

void terngrad_pack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                   const RoundingKey& key, std::uint8_t* out) noexcept {
  if (avx512_dl_target()) return terngrad_pack_avx512(u, n, first, scale, inv, key, out);
  HWY_DYNAMIC_DISPATCH(TernGradPack)(u, n, first, scale, inv, key, out);
}

PackedRun qsgd_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                            std::uint64_t first, std::uint32_t s, unsigned width,
                            const RoundingKey& key, std::uint8_t* out) noexcept {
  if (avx512_dl_target()) {
    return qsgd_pack_buckets_avx512(u, buckets, bucket, first, s, width, key, out);
  }
  return HWY_DYNAMIC_DISPATCH(QsgdPackBuckets)(u, buckets, bucket, first, s, width, key, out);
}

PackedRun terngrad_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                                std::uint64_t first, const RoundingKey& key,
                                std::uint8_t* out) noexcept {
  if (avx512_dl_target()) return terngrad_pack_buckets_avx512(u, buckets, bucket, first, key, out);
  return HWY_DYNAMIC_DISPATCH(TernGradPackBuckets)(u, buckets, bucket, first, key, out);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
