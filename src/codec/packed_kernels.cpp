// Fused AVX-512 packing kernels for QSGD and TernGrad (issue 7), and the rounding stream's vector
// generator.
//
// The fused kernels load 16 floats, draw their 24-bit rounding values (two VAES rounds per 16
// elements, core/rounding.hpp), round in the integer domain and write packed output bytes
// directly: no field array, no per-field bit-writer call. For QSGD with 2-, 4- or 8-bit fields
// and norm=max, qsgd_pack_buckets also takes whole runs of buckets (scale pass, scale, fields)
// per call, so the per-bucket cost is a few instructions. The compiler does not fuse these steps
// by itself, hence intrinsics, selected at run time; every result equals the portable field
// kernels of qsgd_kernels.cpp and the scalar references (tests/unit/codec/qsgd_kernels_test.cpp).
#include <algorithm>
#include <bit>
#include <cstring>

#include "qsgd_kernels.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define THINWIRE_FUSED_PACK 1
#define THINWIRE_VAES \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,bmi,bmi2,aes,vaes")))
#define THINWIRE_AESNI __attribute__((target("sse4.1,aes")))
#endif

namespace thinwire::codec::kernels {

namespace {

// The software generator: one AES evaluation per quad through RoundingCursor.
void rounding_bits_soft(const RoundingKey& key, std::uint64_t first, std::size_t n,
                        std::uint32_t* out) noexcept {
  RoundingCursor cursor(key);
  for (std::size_t k = 0; k < n; ++k) out[k] = cursor.bits24(first + k);
}

}  // namespace

#if defined(THINWIRE_FUSED_PACK)
namespace {

// All-lanes masks on the zero-masking forms: GCC 12's unmasked forms of these start from an
// "undefined" register and trip -Wmaybe-uninitialized (as in qsgd_kernels.cpp).
constexpr __mmask16 kAll = 0xFFFF;

// VAES is CPUID leaf 7, ECX bit 9 (read directly: not every compiler's __builtin_cpu_supports
// knows the name; the AVX-512 checks there also cover the operating system's register support).
bool cpu_has_vaes() noexcept {
  unsigned a = 0;
  unsigned b = 0;
  unsigned c = 0;
  unsigned d = 0;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) != 0 && ((c >> 9) & 1) != 0;
}

bool has_vaes() noexcept {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("bmi2") &&
                         __builtin_cpu_supports("aes") && cpu_has_vaes();
  return ok;
}

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

THINWIRE_VAES void rounding_bits_vaes(const RoundingKey& key, std::uint64_t first, std::size_t n,
                                      std::uint32_t* out) noexcept {
  GroupStream stream(key);
  std::size_t k = 0;
  std::uint64_t g = first & ~std::uint64_t{15};
  stream.seek(g);
  while (k < n) {
    const __m512i h = stream.at(g);
    const auto lo = static_cast<std::size_t>(first + k - g);
    const std::size_t take = std::min<std::size_t>(16 - lo, n - k);
    if (take == 16) {
      _mm512_storeu_si512(out + k, h);
    } else {
      alignas(64) std::uint32_t tmp[16];
      _mm512_store_si512(tmp, h);
      std::memcpy(out + k, tmp + lo, 4 * take);
    }
    k += take;
    g += 16;
  }
}

THINWIRE_AESNI void rounding_bits_aesni(const RoundingKey& key, std::uint64_t first, std::size_t n,
                                        std::uint32_t* out) noexcept {
  const auto load = [](const AesBlock& b) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.data()));
  };
  const __m128i r1 = load(key.round1());
  const __m128i r2 = load(key.round2());
  std::uint64_t block = first >> kRoundingBlockLog2;
  __m128i whitening = load(key.whitening(block));
  std::size_t k = 0;
  while (k < n) {
    const std::uint64_t i = first + k;
    if ((i >> kRoundingBlockLog2) != block) {
      block = i >> kRoundingBlockLog2;
      whitening = load(key.whitening(block));
    }
    const std::uint64_t q = i >> kRoundingQuadLog2;
    const __m128i x = _mm_add_epi32(whitening, _mm_cvtsi32_si128(static_cast<int>(q & 255)));
    alignas(16) std::uint32_t w[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(w),
                    _mm_srli_epi32(_mm_aesenc_si128(_mm_aesenc_si128(x, r1), r2), 8));
    for (auto j = static_cast<std::size_t>(i & 3); j < 4 && k < n; ++j) out[k++] = w[j];
  }
}

// QSGD fields of 16 elements: level | negative << width, width <= 7 (s <= 127). With Q =
// ⌈sr·2^24⌉ (sr·2^24 is exact and below 2^31), ⌊sr⌋ + round_up24(r, frac·2^24) = (Q + r) >> 24.
// The constants live in registers (the quantizer is passed by value into the loops, so stores to
// the output cannot alias them).
class QsgdQuantizer {
 public:
  THINWIRE_VAES QsgdQuantizer(float inv, float s_f, unsigned width) noexcept
      : inv_(_mm512_set1_ps(inv)),
        s_(_mm512_set1_ps(s_f)),
        sign_field_(_mm512_set1_epi32(static_cast<int>(1U << width))) {}

  THINWIRE_VAES __m512i fields16(const float* u, __m512i r) const noexcept {
    const __m512i xb = _mm512_loadu_si512(u);
    // min(|x|·inv, s) in one vrangeps (imm 0b1010: the smaller magnitude, sign cleared): |x·inv|
    // is |x|·inv exactly, and of two equal magnitudes either one is the same value. NaN, where
    // vrangeps and std::min differ, is excluded: the input is finite, inv and s finite.
    const __m512 sr =
        _mm512_maskz_range_ps(kAll, _mm512_mul_ps(_mm512_castsi512_ps(xb), inv_), s_, 0b1010);
    const __m512i q =
        _mm512_maskz_cvt_roundps_epi32(kAll, _mm512_mul_ps(sr, _mm512_set1_ps(0x1.0p24f)),
                                       _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    const __m512i level = _mm512_maskz_srli_epi32(kAll, _mm512_add_epi32(q, r), 24);
    const __mmask16 negative = _mm512_mask_test_epi32_mask(
        _mm512_test_epi32_mask(level, level), xb, _mm512_set1_epi32(static_cast<int>(0x80000000U)));
    return _mm512_mask_or_epi32(level, negative, level, sign_field_);
  }

 private:
  __m512 inv_;
  __m512 s_;
  __m512i sign_field_;
};

// TernGrad codes of 16 elements: keep << negative, keep = round_up24(r, p·2^24) != 0, p =
// min(|x|, scale)/scale. Unclipped, scale is the bucket's maximum and the min is the identity.
template <bool kClipped>
class TernGradQuantizer {
 public:
  THINWIRE_VAES TernGradQuantizer(float scale, float inv) noexcept
      : scale_(_mm512_set1_ps(scale)), inv_(_mm512_set1_ps(inv)) {}

  THINWIRE_VAES __m512i fields16(const float* u, __m512i r) const noexcept {
    const __m512i xb = _mm512_loadu_si512(u);
    __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(xb, _mm512_set1_epi32(0x7FFFFFFF)));
    if constexpr (kClipped) ax = _mm512_maskz_min_ps(kAll, ax, scale_);
    const __m512 p = _mm512_mul_ps(ax, inv_);
    const __m512i c =
        _mm512_maskz_cvt_roundps_epi32(kAll, _mm512_mul_ps(p, _mm512_set1_ps(0x1.0p24f)),
                                       _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    const __mmask16 keep = _mm512_test_epi32_mask(_mm512_add_epi32(c, r),
                                                  _mm512_set1_epi32(static_cast<int>(0xFF000000U)));
    // 1 + the sign bit: 2 for x < 0. A -0 has the sign bit but p = 0, so it is never kept.
    return _mm512_maskz_add_epi32(keep, _mm512_maskz_srli_epi32(kAll, xb, 31),
                                  _mm512_set1_epi32(1));
  }

 private:
  __m512 scale_;
  __m512 inv_;
};

// Stores 16 FW-bit fields (each < 2^FW), least significant first: 2·FW bytes.
template <unsigned FW>
THINWIRE_VAES inline void store16(__m512i fields, std::uint8_t* out) noexcept {
  if constexpr (FW == 8) {
    _mm512_mask_cvtepi32_storeu_epi8(out, kAll, fields);
  } else if constexpr (FW == 4) {
    // Each 64-bit lane holds fields 2j (low half) and 2j + 1 (high half): f | f >> 28 puts the
    // pair's byte in the lane's low byte, and vpmovqb stores the eight lanes' low bytes.
    const __m512i pairs = _mm512_or_si512(fields, _mm512_maskz_srli_epi64(0xFF, fields, 28));
    _mm512_mask_cvtepi64_storeu_epi8(out, 0xFF, pairs);
  } else {
    const __m128i b = _mm512_maskz_cvtepi32_epi8(kAll, fields);  // byte k = field k
    constexpr std::uint64_t kMask = 0x0303030303030303ULL;
    const auto lo = static_cast<std::uint64_t>(_mm_cvtsi128_si64(b));
    const auto hi = static_cast<std::uint64_t>(_mm_extract_epi64(b, 1));
    const std::uint32_t packed = static_cast<std::uint32_t>(_pext_u64(lo, kMask)) |
                                 static_cast<std::uint32_t>(_pext_u64(hi, kMask) << 16);
    std::memcpy(out, &packed, 4);
  }
}

// 32 FW-bit fields from two vectors of 16 (a: elements 0-15, b: 16-31). One vpermt2b gathers the
// low byte of every lane (field m in byte m); for FW < 8, vpmaddubsw (and for FW = 2 vpmaddwd)
// then merges neighbouring fields, f0 + f1·2^FW, which is their bit concatenation since each is
// below 2^FW, and a vpermb collects the merged bytes. Four vector instructions and one masked
// store for 32 elements (the 2-bit path was two vpmovdb, four extracts and four pext before).
template <unsigned FW>
THINWIRE_VAES inline void store32(__m512i a, __m512i b, std::uint8_t* out) noexcept {
  const __m512i lane_bytes =
      _mm512_setr_epi32(0x0C080400, 0x1C181410, 0x2C282420, 0x3C383430, 0x4C484440, 0x5C585450,
                        0x6C686460, 0x7C787470, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i fields = _mm512_maskz_permutex2var_epi8(0xFFFFFFFFULL, a, lane_bytes, b);
  if constexpr (FW == 8) {
    _mm512_mask_storeu_epi8(out, 0xFFFFFFFFULL, fields);
  } else if constexpr (FW == 4) {
    const __m512i pairs = _mm512_maskz_maddubs_epi16(0xFFFF, fields, _mm512_set1_epi16(0x1001));
    const __m512i word_bytes = _mm512_setr_epi32(0x06040200, 0x0E0C0A08, 0x16141210, 0x1E1C1A18, 0,
                                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_mask_storeu_epi8(out, 0xFFFFULL,
                            _mm512_maskz_permutexvar_epi8(0xFFFFULL, word_bytes, pairs));
  } else {
    static_assert(FW == 2);
    const __m512i pairs = _mm512_maskz_maddubs_epi16(0xFFFF, fields, _mm512_set1_epi16(0x0401));
    const __m512i quads = _mm512_maskz_madd_epi16(0xFF, pairs, _mm512_set1_epi32(0x00100001));
    const __m512i dword_bytes =
        _mm512_setr_epi32(0x0C080400, 0x1C181410, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_mask_storeu_epi8(out, 0xFFULL,
                            _mm512_maskz_permutexvar_epi8(0xFFULL, dword_bytes, quads));
  }
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
  for (; i + 32 <= n; i += 32) {
    // The caller's scale pass over the next bucket runs right after this one: fetching its cache
    // lines now overlaps the memory stream with the arithmetic here (prefetches past the end of u
    // are harmless hints).
    _mm_prefetch(reinterpret_cast<const char*>(u + i + kPrefetchAhead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(u + i + 16 + kPrefetchAhead), _MM_HINT_T0);
    const __m512i a = q.fields16(u + i, stream.at(first + i));
    const __m512i b = q.fields16(u + i + 16, stream.at(first + i + 16));
    store32<FW>(a, b, out + i * FW / 8);
  }
  if (i < n) store16<FW>(q.fields16(u + i, stream.at(first + i)), out + i * FW / 8);
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

bool has_fused_pack() noexcept { return has_vaes(); }

void rounding_bits(const RoundingKey& key, std::uint64_t first, std::size_t n, std::uint32_t* out,
                   AesPath use) noexcept {
  static const bool aesni = __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
  if (use == AesPath::kBest && has_vaes()) return rounding_bits_vaes(key, first, n, out);
  if (use != AesPath::kSoftware && aesni) return rounding_bits_aesni(key, first, n, out);
  rounding_bits_soft(key, first, n, out);
}

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
  const QsgdQuantizer q(inv, static_cast<float>(s), width);
  if (width == 1) return pack_from<2>(u, n, first, q, key, out);
  if (width == 3) return pack_from<4>(u, n, first, q, key, out);
  pack_from<8>(u, n, first, q, key, out);
}

THINWIRE_VAES void terngrad_pack_vaes(const float* u, std::size_t n, std::uint64_t first,
                                      float scale, float inv, const RoundingKey& key,
                                      std::uint8_t* out) noexcept {
  pack_from<2>(u, n, first, TernGradQuantizer<true>(scale, inv), key, out);
}

}  // namespace

void qsgd_pack(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
               unsigned width, const RoundingKey& key, std::uint8_t* out) noexcept {
  qsgd_pack_vaes(u, n, first, inv, s, width, key, out);
}

void terngrad_pack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                   const RoundingKey& key, std::uint8_t* out) noexcept {
  terngrad_pack_vaes(u, n, first, scale, inv, key, out);
}

namespace {

// The quantizer of a bucket with scale `scale` and inv = numerator/scale.
struct QsgdBuckets {
  float s_f;
  unsigned width;
  [[nodiscard]] float numerator() const noexcept { return s_f; }
  THINWIRE_VAES QsgdQuantizer quantizer(float /*scale*/, float inv) const noexcept {
    return QsgdQuantizer(inv, s_f, width);
  }
};
struct TernGradBuckets {
  [[nodiscard]] static float numerator() noexcept { return 1.0f; }
  // Runs are unclipped (see terngrad_pack_buckets): no element exceeds the scale.
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
    pack_run<FW>(b, bucket, g, kind.quantizer(scale, inv), stream, out + run.bytes);
    run.bytes += bucket * FW / 8;
  }
  return run;
}

THINWIRE_VAES PackedRun qsgd_pack_buckets_vaes(const float* u, std::size_t buckets,
                                               std::size_t bucket, std::uint64_t first,
                                               std::uint32_t s, unsigned width,
                                               const RoundingKey& key, std::uint8_t* out) noexcept {
  const QsgdBuckets kind{static_cast<float>(s), width};
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

PackedRun qsgd_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                            std::uint64_t first, std::uint32_t s, unsigned width,
                            const RoundingKey& key, std::uint8_t* out) noexcept {
  return qsgd_pack_buckets_vaes(u, buckets, bucket, first, s, width, key, out);
}

PackedRun terngrad_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                                std::uint64_t first, const RoundingKey& key,
                                std::uint8_t* out) noexcept {
  return terngrad_pack_buckets_vaes(u, buckets, bucket, first, key, out);
}

#else

bool has_fused_pack() noexcept { return false; }
void rounding_bits(const RoundingKey& key, std::uint64_t first, std::size_t n, std::uint32_t* out,
                   AesPath /*use*/) noexcept {
  rounding_bits_soft(key, first, n, out);
}
void qsgd_pack(const float*, std::size_t, std::uint64_t, float, std::uint32_t, unsigned,
               const RoundingKey&, std::uint8_t*) noexcept {}
void terngrad_pack(const float*, std::size_t, std::uint64_t, float, float, const RoundingKey&,
                   std::uint8_t*) noexcept {}
PackedRun qsgd_pack_buckets(const float*, std::size_t, std::size_t, std::uint64_t, std::uint32_t,
                            unsigned, const RoundingKey&, std::uint8_t*) noexcept {
  return {0, 0};
}
PackedRun terngrad_pack_buckets(const float*, std::size_t, std::size_t, std::uint64_t,
                                const RoundingKey&, std::uint8_t*) noexcept {
  return {0, 0};
}

#endif

}  // namespace thinwire::codec::kernels
