// Bucketed packing of QSGD (2-, 4- and 8-bit fields) and TernGrad (2-bit codes) on Highway: one
// implementation for both and for every target, a quantizer policy each. Per bucket: the scale pass
// (maximum magnitude, finiteness), the scale, then the fields straight into the message bytes
// with the rounding stream drawn alongside: no field array, no bit writer. The bytes are those of
// encode_buckets in qsgd.cpp / terngrad.cpp from a byte-aligned position (qsgd_kernels.hpp
// documents the contracts); kernel_targets_test.cpp checks them on every target. (These replaced
// hand-written AVX-512 VAES/GFNI kernels, which only the AVX3_DL target ran: issue 20.)
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/pack.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <bit>
#include <cstring>

#include "src/codec/qsgd_kernels.hpp"
// Per target, after highway.h:
#include "src/codec/kernels/quantize-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {

using VU = hn::Vec<DU>;

// A code lane from t (the element's level or keep probability times 2^24, 0 <= t < 2^31) and its
// rounding bits r: ⌈t⌉ + r, whose bits 24-30 are the code (round_up24 of core/rounding.hpp), with
// x's sign bit in bit 31.
HWY_INLINE VU CodeLane(hn::Vec<DF> t, VU r, VU xbits) {
  const DU du;
  const auto c = hn::BitCast(du, hn::ConvertTo(DI(), hn::Ceil(t)));
  return hn::OrAnd(hn::Add(c, r), xbits, hn::Set(du, 0x80000000U));
}

// QSGD's code lanes for s <= 127: the level is stochastic from sr = min(|x|·inv, s) and the
// rounding bits r (qsgd.cpp's fp32 branch of stochastic_level). With Q = ⌈sr·2^24⌉ (sr·2^24 is
// exact and below 2^31), ⌊sr⌋ + round_up24(r, frac·2^24) = (Q + r) >> 24, so Q + r holds the
// level in bits 24-30 (it stays below 2^31), and x's sign bit goes into bit 31.
struct QsgdCodeLanes {
  hn::Vec<DF> inv;
  hn::Vec<DF> s;

  QsgdCodeLanes(float inv_f, float s_f) : inv(hn::Set(DF(), inv_f)), s(hn::Set(DF(), s_f)) {}

  VU operator()(VU xbits, VU r) const {
    const DF df;
    const DU du;
    const auto ax = hn::BitCast(df, hn::And(xbits, hn::Set(du, 0x7FFFFFFFU)));
    return CodeLane(hn::Mul(hn::Min(hn::Mul(ax, inv), s), hn::Set(df, 0x1.0p24f)), r, xbits);
  }
};

// TernGrad's code lanes: kept with probability ⌈min(|x|, scale)·inv·2^24⌉/2^24 (terngrad.cpp).
// C = ⌈t⌉ is at most 2^24 + 4 (t exceeds 2^24 only where fl(1/scale) is subnormal), so
// round_up24(r, t) = (C + r) >> 24 is 0, 1 or 2, nonzero when kept; x's sign bit goes into bit 31
// (a -0 is never kept).
struct TernGradCodeLanes {
  hn::Vec<DF> scale;
  hn::Vec<DF> inv;

  TernGradCodeLanes(float scale_f, float inv_f)
      : scale(hn::Set(DF(), scale_f)), inv(hn::Set(DF(), inv_f)) {}

  VU operator()(VU xbits, VU r) const {
    const DF df;
    const DU du;
    const auto ax = hn::BitCast(df, hn::And(xbits, hn::Set(du, 0x7FFFFFFFU)));
    return CodeLane(hn::Mul(hn::Mul(hn::Min(ax, scale), inv), hn::Set(df, 0x1.0p24f)), r, xbits);
  }
};

// The packed kernels quantize each lane to a code byte, byte 3 of the lane: c | sign << 7, where c
// is QSGD's level (below 2^7) or TernGrad's keep count (0, 1 or 2; nonzero means kept) and sign is
// x's sign bit. Four vectors of lanes give one vector of code bytes (TopBytes), turned into fields
// by a 16-entry byte lookup (FieldsOfCodes) and packed (StoreFields): the work per field is shared
// by four lanes' worth of elements.

// The index into the field table of code byte b: c's low bits, then the sign.
template <int FW, bool kTernGrad, class V>
HWY_INLINE V FieldIndex(V b) {
  const hn::DFromV<V> d;
  if constexpr (kTernGrad) {
    return hn::Or(hn::And(b, hn::Set(d, 3)), hn::And(hn::ShiftRight<5>(b), hn::Set(d, 4)));
  } else if constexpr (FW == 4) {
    return hn::Or(hn::And(b, hn::Set(d, 7)), hn::And(hn::ShiftRight<4>(b), hn::Set(d, 8)));
  } else {
    static_assert(FW == 2);
    return hn::Or(hn::And(b, hn::Set(d, 1)), hn::And(hn::ShiftRight<6>(b), hn::Set(d, 2)));
  }
}

// The fields by index: QSGD keeps the level and the sign but drops the sign of a zero level (-0 is
// not negative); TernGrad sends 0 (dropped), 1 (kept, +) or 2 (kept, -).
template <int FW, bool kTernGrad>
constexpr std::uint8_t kFieldTable[16] = {0, 1, 1, 1, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0};
template <>
constexpr std::uint8_t kFieldTable<4, false>[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                                    0, 9, 10, 11, 12, 13, 14, 15};
template <>
constexpr std::uint8_t kFieldTable<2, false>[16] = {0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

#if HWY_TARGET != HWY_SCALAR
using D8 = hn::Repartition<std::uint8_t, DU>;
using V8 = hn::Vec<D8>;

// Byte 3 of every lane of t0, t1, t2, t3 (consecutive elements), in order.
HWY_INLINE V8 TopBytes(VU t0, VU t1, VU t2, VU t3) {
  const hn::Repartition<std::uint16_t, DU> d16;
  const D8 d8;
  const auto low = hn::ConcatOdd(d16, hn::BitCast(d16, t1), hn::BitCast(d16, t0));
  const auto high = hn::ConcatOdd(d16, hn::BitCast(d16, t3), hn::BitCast(d16, t2));
  return hn::ConcatOdd(d8, hn::BitCast(d8, high), hn::BitCast(d8, low));
}

template <int FW, bool kTernGrad>
HWY_INLINE V8 FieldsOfCodes(V8 b) {
  const D8 d8;
  if constexpr (FW == 8) {
    return hn::IfThenZeroElse(hn::Eq(hn::And(b, hn::Set(d8, 0x7F)), hn::Zero(d8)), b);
  } else {
    return hn::TableLookupBytes(hn::LoadDup128(d8, kFieldTable<FW, kTernGrad>),
                                FieldIndex<FW, kTernGrad>(b));
  }
}

// Stores the fields of four vectors of code lanes as FW-bit fields, least significant first:
// 4·Lanes·FW/8 bytes. Neighbouring fields are merged in 16- and then 32-bit lanes, whose low
// bytes are then kept.
template <int FW, bool kTernGrad>
HWY_INLINE void StoreFields(VU t0, VU t1, VU t2, VU t3, std::uint8_t* out) {
  const V8 f = FieldsOfCodes<FW, kTernGrad>(TopBytes(t0, t1, t2, t3));
  const hn::Repartition<std::uint16_t, DU> d16;
  const auto v16 = hn::BitCast(d16, f);
  if constexpr (FW == 8) {
    hn::StoreU(f, D8(), out);
  } else if constexpr (FW == 4) {
    const auto w = hn::Or(hn::And(v16, hn::Set(d16, 0x000F)),
                          hn::And(hn::ShiftRight<4>(v16), hn::Set(d16, 0x00F0)));
    const hn::Rebind<std::uint8_t, decltype(d16)> d8h;
    hn::StoreU(hn::DemoteTo(d8h, hn::BitCast(hn::RebindToSigned<decltype(d16)>(), w)), d8h, out);
  } else {
    static_assert(FW == 2);
    const auto w = hn::Or(hn::And(v16, hn::Set(d16, 0x0003)),
                          hn::And(hn::ShiftRight<6>(v16), hn::Set(d16, 0x000C)));
    const DU du;
    const auto v32 = hn::BitCast(du, w);
    const auto z = hn::Or(hn::And(v32, hn::Set(du, 0x0FU)),
                          hn::And(hn::ShiftRight<12>(v32), hn::Set(du, 0xF0U)));
    const hn::Rebind<std::uint8_t, DU> d8q;
    hn::StoreU(hn::DemoteTo(d8q, hn::BitCast(DI(), z)), d8q, out);
  }
}
#else
template <int FW, bool kTernGrad>
HWY_INLINE void StoreFields(VU t0, VU t1, VU t2, VU t3, std::uint8_t* out) {
  const VU t[4] = {t0, t1, t2, t3};
  std::uint32_t bits = 0;
  for (int k = 0; k < 4; ++k) {
    const auto b = static_cast<std::uint8_t>(hn::GetLane(t[k]) >> 24);
    std::uint32_t field = (b & 0x7F) == 0 ? 0 : b;
    if constexpr (FW < 8) {
      field = kFieldTable<FW, kTernGrad>[hn::GetLane(
          FieldIndex<FW, kTernGrad>(hn::Set(hn::Sisd<std::uint8_t>(), b)))];
    }
    bits |= field << (k * FW);
  }
  std::memcpy(out, &bits, FW / 2);
}
#endif

// Floats ahead of the packing position to prefetch (PackRun), and per cache line.
#ifndef THINWIRE_PREFETCH_AHEAD
#define THINWIRE_PREFETCH_AHEAD 1024
#endif
constexpr std::size_t kPrefetchAhead = THINWIRE_PREFETCH_AHEAD;
constexpr std::size_t kFloatsPerLine = 64 / sizeof(float);

// The quantized fields of the lanes at u[at], the stream standing at them. (A function, not a
// lambda: GCC keeps an HWY_ATTR lambda out of line, a call per vector.)
template <class Quantize>
HWY_INLINE VU FieldsAt(const std::uint32_t* ub, std::size_t at, const Quantize& quantize,
                       RoundingStream& stream) {
  return quantize(hn::LoadU(DU(), ub + at), stream.Next());
}

// Packs the fields of u[0..n) (n a multiple of 16; g, the index of u[0], a multiple of 16, where
// the stream stands) into n·FW/8 bytes. The quantizer and the stream are local copies: stores to
// `out` (bytes) may alias any object the caller passes by reference, which would put a reload of
// the stream's counter and keys on every vector's path.
template <int FW, bool kTernGrad, class Quantize>
HWY_INLINE void PackRun(const float* u, std::size_t n, std::uint64_t g, const Quantize quantize,
                        RoundingStream& stream_state, std::uint8_t* out) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t step = 4 * lanes;
  const auto* ub = reinterpret_cast<const std::uint32_t*>(u);
  RoundingStream stream = stream_state;
  std::size_t i = 0;
  while (i < n) {
    // Up to the end of the rounding block, without a block check per vector.
    const std::uint64_t in_block = (g + i) & (kRoundingBlock - 1);
    if (in_block == 0) stream.seek(g + i);
    const std::size_t end = std::min<std::size_t>(n, i + (kRoundingBlock - in_block));
    for (; i + step <= end; i += step) {
      // The caller's scale pass over the next bucket comes right after this run: fetching its
      // cache lines now overlaps the memory stream with this arithmetic (the distance was set by
      // measurement; prefetches past the end of u are harmless hints).
      if (step >= kFloatsPerLine || i % kFloatsPerLine == 0) {
        for (std::size_t line = 0; line < step; line += kFloatsPerLine) {
          hwy::Prefetch(u + i + line + kPrefetchAhead);
        }
      }
      const VU f0 = FieldsAt(ub, i, quantize, stream);
      const VU f1 = FieldsAt(ub, i + lanes, quantize, stream);
      const VU f2 = FieldsAt(ub, i + 2 * lanes, quantize, stream);
      const VU f3 = FieldsAt(ub, i + 3 * lanes, quantize, stream);
      StoreFields<FW, kTernGrad>(f0, f1, f2, f3, out + i * FW / 8);
    }
    if (i < end) {
      // The block's last, partial step (whole groups of lanes; the missing vectors are zeros).
      const std::size_t left = end - i;
      const VU f0 = FieldsAt(ub, i, quantize, stream);
      const VU f1 = left > lanes ? FieldsAt(ub, i + lanes, quantize, stream) : hn::Zero(du);
      const VU f2 = left > 2 * lanes ? FieldsAt(ub, i + 2 * lanes, quantize, stream) : hn::Zero(du);
      const VU f3 = left > 3 * lanes ? FieldsAt(ub, i + 3 * lanes, quantize, stream) : hn::Zero(du);
      HWY_ALIGN std::uint8_t tmp[HWY_MAX_BYTES];
      StoreFields<FW, kTernGrad>(f0, f1, f2, f3, tmp);
      std::memcpy(out + i * FW / 8, tmp, left * FW / 8);
      i = end;
    }
  }
  stream_state = stream;
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
struct QsgdPolicy {
  static constexpr bool kTernGrad = false;
  float s_f;
  [[nodiscard]] float numerator() const { return s_f; }
  [[nodiscard]] QsgdCodeLanes quantizer(float /*scale*/, float inv) const {
    return QsgdCodeLanes(inv, s_f);
  }
};
struct TernGradPolicy {
  static constexpr bool kTernGrad = true;
  [[nodiscard]] static float numerator() { return 1.0f; }
  // Runs are unclipped (terngrad_pack_buckets): min(|x|, scale) is |x|.
  [[nodiscard]] static TernGradCodeLanes quantizer(float scale, float inv) {
    return TernGradCodeLanes(scale, inv);
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
    PackRun<FW, Policy::kTernGrad>(b, bucket, g, policy.quantizer(scale, inv), stream,
                                   out + run.bytes);
    run.bytes += bucket * FW / 8;
  }
  return run;
}

PackedRun QsgdPackBuckets(const float* u, std::size_t buckets, std::size_t bucket,
                          std::uint64_t first, std::uint32_t s, unsigned width,
                          const RoundingKey& key, std::uint8_t* out) {
  const auto s_f = static_cast<float>(s);
  if (width == 1) return PackBuckets<2>(u, buckets, bucket, first, QsgdPolicy{s_f}, key, out);
  if (width == 3) return PackBuckets<4>(u, buckets, bucket, first, QsgdPolicy{s_f}, key, out);
  return PackBuckets<8>(u, buckets, bucket, first, QsgdPolicy{s_f}, key, out);
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
  if (width == 1) return PackRun<2, false>(u, n, first, QsgdCodeLanes(inv, s_f), stream, out);
  if (width == 3) return PackRun<4, false>(u, n, first, QsgdCodeLanes(inv, s_f), stream, out);
  PackRun<8, false>(u, n, first, QsgdCodeLanes(inv, s_f), stream, out);
}

void TernGradPack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                  const RoundingKey& key, std::uint8_t* out) {
  RoundingStream stream(key);
  stream.seek(first);
  PackRun<2, true>(u, n, first, TernGradCodeLanes(scale, inv), stream, out);
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
  HWY_DYNAMIC_DISPATCH(QsgdPack)(u, n, first, inv, s, width, key, out);
}

void terngrad_pack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                   const RoundingKey& key, std::uint8_t* out) noexcept {
  HWY_DYNAMIC_DISPATCH(TernGradPack)(u, n, first, scale, inv, key, out);
}

PackedRun qsgd_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                            std::uint64_t first, std::uint32_t s, unsigned width,
                            const RoundingKey& key, std::uint8_t* out) noexcept {
  return HWY_DYNAMIC_DISPATCH(QsgdPackBuckets)(u, buckets, bucket, first, s, width, key, out);
}

PackedRun terngrad_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                                std::uint64_t first, const RoundingKey& key,
                                std::uint8_t* out) noexcept {
  return HWY_DYNAMIC_DISPATCH(TernGradPackBuckets)(u, buckets, bucket, first, key, out);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
