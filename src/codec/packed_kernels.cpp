// Fused AVX-512 packing kernels for QSGD and TernGrad (issue 7), and the rounding stream's vector
// generator.
//
// The fused kernels load 16 floats, draw their 24-bit rounding values (two VAES rounds per 16
// elements, core/rounding.hpp), round in the integer domain and write packed output bytes
// directly: no field array, no per-field bit-writer call. Per 32 elements the sign and the
// signed-zero rule are applied once, to gathered bytes (GFNI and a byte lookup). For QSGD with 2-,
// 4- or 8-bit fields and norm=max, qsgd_pack_buckets also takes whole runs of buckets (scale pass,
// scale, fields) per call, so the per-bucket cost is a few instructions. The compiler does not fuse
// these steps by itself, hence intrinsics, selected at run time; every result equals the portable
// field kernels of qsgd_kernels.cpp and the scalar references
// (tests/unit/codec/qsgd_kernels_test.cpp).
#include <algorithm>
#include <bit>
#include <cstring>

#include "qsgd_kernels.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define THINWIRE_FUSED_PACK 1
#define THINWIRE_VAES \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,aes,vaes,gfni")))
#endif

namespace thinwire::codec::kernels {

#if defined(THINWIRE_FUSED_PACK)
namespace {

// All-lanes masks on the zero-masking forms: GCC 12's unmasked forms of these start from an
// "undefined" register and trip -Wmaybe-uninitialized (as in qsgd_kernels.cpp).
constexpr __mmask16 kAll = 0xFFFF;

THINWIRE_VAES inline __m512i broadcast(const AesBlock& b) noexcept {
  return _mm512_maskz_broadcast_i32x4(kAll,
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.data())));
}

// The AES inputs of successive 16-element groups (four quads each) and their 24-bit outputs.
class GroupStream {
 public:
  THINWIRE_VAES explicit GroupStream(const RoundingKey& key) noexcept
      : key_(&key), r1_(broadcast(key.round1())), r2_(broadcast(key.round2())) {}

  // Positions the stream at element g (a multiple of 16).
  THINWIRE_VAES void seek(std::uint64_t g) noexcept {
    const auto q0 = static_cast<int>((g >> kRoundingQuadLog2) & 255);
    x_ = _mm512_add_epi32(
        broadcast(key_->whitening(g >> kRoundingBlockLog2)),
        _mm512_setr_epi32(q0, 0, 0, 0, q0 + 1, 0, 0, 0, q0 + 2, 0, 0, 0, q0 + 3, 0, 0, 0));
  }
  // The 24-bit values of the group at g, the stream's position (top bits zero), moving to the new
  // whitening first when g starts a rounding block; then advances by 16.
  THINWIRE_VAES __m512i at(std::uint64_t g) noexcept {
    if ((g & (kRoundingBlock - 1)) == 0) seek(g);
    return next();
  }
  // The same within a rounding block: the caller seeks at every block's start.
  THINWIRE_VAES __m512i next() noexcept {
    const __m512i h = _mm512_aesenc_epi128(_mm512_aesenc_epi128(x_, r1_), r2_);
    x_ = _mm512_add_epi32(x_, _mm512_setr_epi32(4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0));
    return _mm512_maskz_srli_epi32(kAll, h, 8);
  }

 private:
  const RoundingKey* key_;
  __m512i r1_;
  __m512i r2_;
  __m512i x_ = _mm512_setzero_si512();
};

// The quantizers below compute, for 16 elements, one byte per 32-bit lane (its byte 3) from which
// fields() makes the element's field; store32 gathers those bytes for 32 elements with one
// vpermt2b first, so that the work on field bytes is shared by 32 elements instead of 16.

// The bytes that fields() turns into a fixed-width field by a 16-entry lookup (vpshufb): a
// GF(2)-affine bit permutation (vgf2p8affineqb) moves the bits into the low nibble first.
// `matrix` is the affine matrix (row i, for output bit i, in byte 7 - i) and `table` the lookup.
THINWIRE_VAES inline __m512i lookup_bytes(__m512i bytes, std::uint64_t matrix,
                                          __m512i table) noexcept {
  const __m512i low = _mm512_maskz_gf2p8affine_epi64_epi8(
      0xFFFFFFFFULL, bytes, _mm512_set1_epi64(static_cast<long long>(matrix)), 0);
  return _mm512_maskz_shuffle_epi8(0xFFFFFFFFULL, table, low);
}

// QSGD fields of 16 elements: level | negative << width, width = FW - 1 <= 7 (s <= 127). With Q =
// ⌈sr·2^24⌉ (sr·2^24 is exact and below 2^31), ⌊sr⌋ + round_up24(r, frac·2^24) = (Q + r) >> 24:
// T = Q + r holds the level in bits 24 and up (below 2^31), and the lane's byte 3 is taken with
// x's sign bit ORed into bit 31 (one vpternlogd): level | sign << 7. fields() then moves the sign
// to bit FW - 1 and clears it where the level is 0 (-0 is not negative), once per 32 elements.
// The constants live in registers (the quantizer is passed by value into the loops, so stores to
// the output cannot alias them).
template <unsigned FW>
class QsgdQuantizer {
 public:
  THINWIRE_VAES QsgdQuantizer(float inv, float s_f) noexcept
      : inv_(_mm512_set1_ps(inv)), s_(_mm512_set1_ps(s_f)) {}

  THINWIRE_VAES __m512i lanes16(const float* u, __m512i r) const noexcept {
    const __m512i xb = _mm512_loadu_si512(u);
    // min(|x|·inv, s) in one vrangeps (imm 0b1010: the smaller magnitude, sign cleared): |x·inv|
    // is |x|·inv exactly, and of two equal magnitudes either one is the same value. NaN, where
    // vrangeps and std::min differ, is excluded: the input is finite, inv and s finite.
    const __m512 sr =
        _mm512_maskz_range_ps(kAll, _mm512_mul_ps(_mm512_castsi512_ps(xb), inv_), s_, 0b1010);
    const __m512i q =
        _mm512_maskz_cvt_roundps_epi32(kAll, _mm512_mul_ps(sr, _mm512_set1_ps(0x1.0p24f)),
                                       _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    // (q + r) | (xb & 0x80000000): imm 0xF8 is a | (b & c).
    return _mm512_maskz_ternarylogic_epi32(kAll, _mm512_add_epi32(q, r), xb,
                                           _mm512_set1_epi32(static_cast<int>(0x80000000U)), 0xF8);
  }

  // Field bytes from 32 gathered bytes level | sign << 7.
  THINWIRE_VAES static __m512i fields(__m512i bytes) noexcept {
    if constexpr (FW == 8) {
      // A zero level keeps no sign: byte 0x80 becomes 0.
      const __mmask64 zero = _mm512_testn_epi8_mask(bytes, _mm512_set1_epi8(0x7F));
      return _mm512_maskz_mov_epi8(~zero & 0xFFFFFFFFULL, bytes);
    } else if constexpr (FW == 4) {
      // Bits 0-2 stay, bit 7 goes to bit 3; then field 8 (a signed zero) becomes 0.
      return lookup_bytes(
          bytes, 0x0102048000000000ULL,
          _mm512_maskz_broadcast_i32x4(
              kAll, _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15)));
    } else {
      static_assert(FW == 2);
      // Bit 0 stays, bit 7 goes to bit 1; then field 2 (a signed zero) becomes 0.
      return lookup_bytes(bytes, 0x0180000000000000ULL,
                          _mm512_maskz_broadcast_i32x4(
                              kAll, _mm_setr_epi8(0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)));
    }
  }

 private:
  __m512 inv_;
  __m512 s_;
};

// TernGrad codes of 16 elements: keep << negative, keep = round_up24(r, p·2^24) != 0, p =
// min(|x|, scale)/scale. Unclipped, scale is the bucket's maximum and the min is the identity.
// C = ⌈p·2^24⌉ is at most 2^24 + 4 (p exceeds 1 only where fl(1/scale) is subnormal, by 2^-22 at
// most), so keep is (C + r) >> 24 != 0, with (C + r) >> 24 in {0, 1, 2}; the lane's byte 3 is that
// with x's sign bit ORed into bit 7, and fields() maps it to the code (a -0 has the sign bit but
// p = 0, so it is never kept).
template <bool kClipped>
class TernGradQuantizer {
 public:
  THINWIRE_VAES TernGradQuantizer(float scale, float inv) noexcept
      : scale_(_mm512_set1_ps(scale)), inv_(_mm512_set1_ps(inv)) {}

  THINWIRE_VAES __m512i lanes16(const float* u, __m512i r) const noexcept {
    const __m512i xb = _mm512_loadu_si512(u);
    __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(xb, _mm512_set1_epi32(0x7FFFFFFF)));
    if constexpr (kClipped) ax = _mm512_maskz_min_ps(kAll, ax, scale_);
    const __m512 p = _mm512_mul_ps(ax, inv_);
    const __m512i c =
        _mm512_maskz_cvt_roundps_epi32(kAll, _mm512_mul_ps(p, _mm512_set1_ps(0x1.0p24f)),
                                       _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    // (c + r) | (xb & 0x80000000): imm 0xF8 is a | (b & c).
    return _mm512_maskz_ternarylogic_epi32(kAll, _mm512_add_epi32(c, r), xb,
                                           _mm512_set1_epi32(static_cast<int>(0x80000000U)), 0xF8);
  }

  // Codes from 32 gathered bytes k | sign << 7 (k in {0, 1, 2}): bits 0-1 stay, bit 7 goes to
  // bit 2, then a lookup gives 0 for k = 0, else 1 + sign.
  THINWIRE_VAES static __m512i fields(__m512i bytes) noexcept {
    return lookup_bytes(bytes, 0x0102800000000000ULL,
                        _mm512_maskz_broadcast_i32x4(
                            kAll, _mm_setr_epi8(0, 1, 1, 1, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0)));
  }

 private:
  __m512 scale_;
  __m512 inv_;
};

// Packs `count` (16 or 32) fields of FW bits, the low 32 bytes of `fields` (each below 2^FW),
// least significant first: count·FW/8 bytes. For FW < 8, vpmaddubsw (and for FW = 2 vpmaddwd)
// merges neighbouring fields, f0 + f1·2^FW, which is their bit concatenation since each is below
// 2^FW, and a vpermb collects the merged bytes.
template <unsigned FW>
THINWIRE_VAES inline void pack_fields(__m512i fields, unsigned count, std::uint8_t* out) noexcept {
  const std::uint64_t bytes = count * FW / 8;
  const __mmask64 store = (std::uint64_t{1} << bytes) - 1;
  if constexpr (FW == 8) {
    _mm512_mask_storeu_epi8(out, store, fields);
  } else if constexpr (FW == 4) {
    const __m512i pairs = _mm512_maskz_maddubs_epi16(0xFFFF, fields, _mm512_set1_epi16(0x1001));
    const __m512i word_bytes = _mm512_setr_epi32(0x06040200, 0x0E0C0A08, 0x16141210, 0x1E1C1A18, 0,
                                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_mask_storeu_epi8(out, store,
                            _mm512_maskz_permutexvar_epi8(0xFFFFULL, word_bytes, pairs));
  } else {
    static_assert(FW == 2);
    const __m512i pairs = _mm512_maskz_maddubs_epi16(0xFFFF, fields, _mm512_set1_epi16(0x0401));
    const __m512i quads = _mm512_maskz_madd_epi16(0xFF, pairs, _mm512_set1_epi32(0x00100001));
    const __m512i dword_bytes =
        _mm512_setr_epi32(0x0C080400, 0x1C181410, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_mask_storeu_epi8(out, store, _mm512_maskz_permutexvar_epi8(0xFFULL, dword_bytes, quads));
  }
}

// The fields of 32 elements from the quantizer's lanes of two groups of 16 (a: elements 0-15,
// b: 16-31): one vpermt2b gathers byte 3 of every lane (element m in byte m), then Q::fields makes
// the fields and pack_fields packs them (the first `count` of them).
template <unsigned FW, typename Q>
THINWIRE_VAES inline void store32(__m512i a, __m512i b, unsigned count,
                                  std::uint8_t* out) noexcept {
  const __m512i lane_bytes =
      _mm512_setr_epi32(0x0F0B0703, 0x1F1B1713, 0x2F2B2723, 0x3F3B3733, 0x4F4B4743, 0x5F5B5753,
                        0x6F6B6763, 0x7F7B7773, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i bytes = _mm512_maskz_permutex2var_epi8(0xFFFFFFFFULL, a, lane_bytes, b);
  pack_fields<FW>(Q::fields(bytes), count, out);
}

// Floats ahead of the packing position to prefetch (see pack_run); set by measurement.
#ifndef THINWIRE_PREFETCH_AHEAD
#define THINWIRE_PREFETCH_AHEAD 1024
#endif
constexpr std::size_t kPrefetchAhead = THINWIRE_PREFETCH_AHEAD;

// Packs u[0..n) (n a multiple of 16; element 0 is element `first` of the vector, first a multiple
// of 16) with quantizer q into out.
template <unsigned FW, typename Q>
[[gnu::always_inline]] THINWIRE_VAES inline void pack_run(const float* u, std::size_t n,
                                                          std::uint64_t first, const Q q,
                                                          GroupStream& stream_state,
                                                          std::uint8_t* out) noexcept {
  // A local copy keeps the counter and round keys in registers (stores to out could alias the
  // caller's object, which would put a store and a reload on every group's critical path).
  GroupStream stream = stream_state;
  std::size_t i = 0;
  while (i < n) {
    // Up to the end of the rounding block (a multiple of 16 elements away), without a block check
    // per group.
    const std::uint64_t in_block = (first + i) & (kRoundingBlock - 1);
    if (in_block == 0) stream.seek(first + i);
    const std::size_t end = std::min<std::size_t>(n, i + (kRoundingBlock - in_block));
    for (; i + 32 <= end; i += 32) {
      // The caller's scale pass over the next bucket runs right after this one: fetching its
      // cache lines now overlaps the memory stream with the arithmetic here (prefetches past the
      // end of u are harmless hints).
      _mm_prefetch(reinterpret_cast<const char*>(u + i + kPrefetchAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(u + i + 16 + kPrefetchAhead), _MM_HINT_T0);
      const __m512i a = q.lanes16(u + i, stream.next());
      const __m512i b = q.lanes16(u + i + 16, stream.next());
      store32<FW, Q>(a, b, 32, out + i * FW / 8);
    }
    if (i < end) {
      const __m512i a = q.lanes16(u + i, stream.next());
      store32<FW, Q>(a, a, 16, out + i * FW / 8);
      i += 16;
    }
  }
  stream_state = stream;
}

// max_i |u_i| of n floats (n a multiple of 16) as a bit pattern, as kernels::max_abs computes it
// (sign bits cleared, unsigned maximum): a NaN or infinity gives a pattern >= 0x7F800000.
THINWIRE_VAES inline std::uint32_t max_abs_bits(const float* u, std::size_t n) noexcept {
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i m0 = _mm512_setzero_si512();
  __m512i m1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm512_maskz_max_epu32(kAll, m0, _mm512_and_si512(_mm512_loadu_si512(u + i), magnitude));
    m1 = _mm512_maskz_max_epu32(kAll, m1,
                                _mm512_and_si512(_mm512_loadu_si512(u + i + 16), magnitude));
  }
  if (i < n) {
    m0 = _mm512_maskz_max_epu32(kAll, m0, _mm512_and_si512(_mm512_loadu_si512(u + i), magnitude));
  }
  // Horizontal maximum: halves, quarters, then within 128-bit lanes.
  __m512i m = _mm512_maskz_max_epu32(kAll, m0, m1);
  m = _mm512_maskz_max_epu32(kAll, m, _mm512_maskz_shuffle_i32x4(kAll, m, m, 0x4E));
  m = _mm512_maskz_max_epu32(kAll, m, _mm512_maskz_shuffle_i32x4(kAll, m, m, 0xB1));
  m = _mm512_maskz_max_epu32(kAll, m, _mm512_maskz_shuffle_epi32(kAll, m, _MM_PERM_BADC));
  m = _mm512_maskz_max_epu32(kAll, m, _mm512_maskz_shuffle_epi32(kAll, m, _MM_PERM_CDAB));
  return static_cast<std::uint32_t>(_mm512_cvtsi512_si32(m));
}

}  // namespace

namespace {

// The entry points below are plain functions (callers may lack AVX-512); these carry the target.
template <unsigned FW, typename Q>
THINWIRE_VAES void pack_from(const float* u, std::size_t n, std::uint64_t first, const Q q,
                             const RoundingKey& key, std::uint8_t* out) noexcept {
  GroupStream stream(key);
  stream.seek(first);
  pack_run<FW>(u, n, first, q, stream, out);
}

THINWIRE_VAES void qsgd_pack_vaes(const float* u, std::size_t n, std::uint64_t first, float inv,
                                  std::uint32_t s, unsigned width, const RoundingKey& key,
                                  std::uint8_t* out) noexcept {
  const auto s_f = static_cast<float>(s);
  if (width == 1) return pack_from<2>(u, n, first, QsgdQuantizer<2>(inv, s_f), key, out);
  if (width == 3) return pack_from<4>(u, n, first, QsgdQuantizer<4>(inv, s_f), key, out);
  pack_from<8>(u, n, first, QsgdQuantizer<8>(inv, s_f), key, out);
}

THINWIRE_VAES void terngrad_pack_vaes(const float* u, std::size_t n, std::uint64_t first,
                                      float scale, float inv, const RoundingKey& key,
                                      std::uint8_t* out) noexcept {
  pack_from<2>(u, n, first, TernGradQuantizer<true>(scale, inv), key, out);
}

}  // namespace

void qsgd_pack_avx512(const float* u, std::size_t n, std::uint64_t first, float inv,
                      std::uint32_t s, unsigned width, const RoundingKey& key,
                      std::uint8_t* out) noexcept {
  qsgd_pack_vaes(u, n, first, inv, s, width, key, out);
}

void terngrad_pack_avx512(const float* u, std::size_t n, std::uint64_t first, float scale,
                          float inv, const RoundingKey& key, std::uint8_t* out) noexcept {
  terngrad_pack_vaes(u, n, first, scale, inv, key, out);
}

namespace {

// The quantizer of a bucket with scale `scale` and inv = numerator/scale.
struct QsgdBuckets {
  float s_f;
  [[nodiscard]] float numerator() const noexcept { return s_f; }
  template <unsigned FW>
  THINWIRE_VAES QsgdQuantizer<FW> quantizer(float /*scale*/, float inv) const noexcept {
    return QsgdQuantizer<FW>(inv, s_f);
  }
};
struct TernGradBuckets {
  [[nodiscard]] static float numerator() noexcept { return 1.0f; }
  // Runs are unclipped (see terngrad_pack_buckets): no element exceeds the scale.
  template <unsigned FW>
  THINWIRE_VAES TernGradQuantizer<false> quantizer(float scale, float inv) const noexcept {
    return TernGradQuantizer<false>(scale, inv);
  }
};

template <unsigned FW, typename Kind>
THINWIRE_VAES PackedRun pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                                     std::uint64_t first, const Kind kind, const RoundingKey& key,
                                     std::uint8_t* out) noexcept {
  GroupStream stream(key);
  stream.seek(first);
  std::uint64_t position = first;  // where the rounding stream stands
  PackedRun run{0, 0};
  for (; run.buckets < buckets; ++run.buckets) {
    const float* b = u + run.buckets * bucket;
    const std::uint64_t g = first + run.buckets * bucket;
    const std::uint32_t scale_bits = max_abs_bits(b, bucket);
    if (scale_bits >= 0x7F800000U) break;  // not finite: the caller reports it
    const float scale = std::bit_cast<float>(scale_bits);
    // numerator/scale as the codecs compute it (in double, then rounded to fp32; one fp32
    // division gives the same float, as double rounding is harmless for a quotient of floats).
    // From 2^100 on (subnormal scales) the caller's double path takes the bucket.
    const float inv = scale == 0.0f ? 0.0f : kind.numerator() / scale;
    if (!(inv < 0x1.0p100f)) break;
    std::memcpy(out + run.bytes, &scale_bits, 4);
    run.bytes += 4;
    if (scale == 0.0f) continue;  // a zero bucket sends only its scale
    if (g != position) stream.seek(g);
    position = g + bucket;
    pack_run<FW>(b, bucket, g, kind.template quantizer<FW>(scale, inv), stream, out + run.bytes);
    run.bytes += bucket * FW / 8;
  }
  return run;
}

THINWIRE_VAES PackedRun qsgd_pack_buckets_vaes(const float* u, std::size_t buckets,
                                               std::size_t bucket, std::uint64_t first,
                                               std::uint32_t s, unsigned width,
                                               const RoundingKey& key, std::uint8_t* out) noexcept {
  const QsgdBuckets kind{static_cast<float>(s)};
  if (width == 1) return pack_buckets<2>(u, buckets, bucket, first, kind, key, out);
  if (width == 3) return pack_buckets<4>(u, buckets, bucket, first, kind, key, out);
  return pack_buckets<8>(u, buckets, bucket, first, kind, key, out);
}

THINWIRE_VAES PackedRun terngrad_pack_buckets_vaes(const float* u, std::size_t buckets,
                                                   std::size_t bucket, std::uint64_t first,
                                                   const RoundingKey& key,
                                                   std::uint8_t* out) noexcept {
  return pack_buckets<2>(u, buckets, bucket, first, TernGradBuckets{}, key, out);
}

}  // namespace

PackedRun qsgd_pack_buckets_avx512(const float* u, std::size_t buckets, std::size_t bucket,
                                   std::uint64_t first, std::uint32_t s, unsigned width,
                                   const RoundingKey& key, std::uint8_t* out) noexcept {
  return qsgd_pack_buckets_vaes(u, buckets, bucket, first, s, width, key, out);
}

PackedRun terngrad_pack_buckets_avx512(const float* u, std::size_t buckets, std::size_t bucket,
                                       std::uint64_t first, const RoundingKey& key,
                                       std::uint8_t* out) noexcept {
  return terngrad_pack_buckets_vaes(u, buckets, bucket, first, key, out);
}

#else

void qsgd_pack_avx512(const float*, std::size_t, std::uint64_t, float, std::uint32_t, unsigned,
                      const RoundingKey&, std::uint8_t*) noexcept {}
void terngrad_pack_avx512(const float*, std::size_t, std::uint64_t, float, float,
                          const RoundingKey&, std::uint8_t*) noexcept {}
PackedRun qsgd_pack_buckets_avx512(const float*, std::size_t, std::size_t, std::uint64_t,
                                   std::uint32_t, unsigned, const RoundingKey&,
                                   std::uint8_t*) noexcept {
  return {0, 0};
}
PackedRun terngrad_pack_buckets_avx512(const float*, std::size_t, std::size_t, std::uint64_t,
                                       const RoundingKey&, std::uint8_t*) noexcept {
  return {0, 0};
}

#endif

}  // namespace thinwire::codec::kernels
