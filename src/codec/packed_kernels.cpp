// Fused AVX-512 packing kernels for QSGD and TernGrad (issue 7): one pass that loads 16 floats,
// draws their 16 rounding uniforms (the lowbias32 mixer of RngKey::rounding_uniform, 16 lanes),
// computes the fields exactly as qsgd_fields / terngrad_fields do, narrows them to bytes
// (vpmovdb) and gathers 2- or 4-bit fields with pext, writing the packed output bytes directly:
// no field array, no per-field bit-writer call. The compiler does not fuse the field loop with the
// narrowing and pext steps by itself, hence intrinsics; selected at run time.
#include <bit>
#include <cstring>

#include "qsgd_kernels.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define THINWIRE_FUSED_PACK 1
#define THINWIRE_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,bmi,bmi2")))
#endif

namespace thinwire::codec::kernels {

#if defined(THINWIRE_FUSED_PACK)
namespace {

// All-lanes masks on the zero-masking forms: GCC 12's unmasked forms of these start from an
// "undefined" register and trip -Wmaybe-uninitialized (as in qsgd_kernels.cpp).
constexpr __mmask16 kAll = 0xFFFF;

// The 16 uniforms for counters ctr (lane k: block key + (j0 + k)·golden32), as
// RngKey::rounding_uniform_in_block computes them: mix32, top 24 bits, times 2^-24 (exact).
THINWIRE_AVX512 inline __m512 uniforms16(__m512i h) noexcept {
  h = _mm512_xor_si512(h, _mm512_maskz_srli_epi32(kAll, h, 16));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0x7FEB352DU)));
  h = _mm512_xor_si512(h, _mm512_maskz_srli_epi32(kAll, h, 15));
  h = _mm512_mullo_epi32(h, _mm512_set1_epi32(static_cast<int>(0x846CA68BU)));
  h = _mm512_xor_si512(h, _mm512_maskz_srli_epi32(kAll, h, 16));
  return _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_srli_epi32(kAll, h, 8)),
                       _mm512_set1_ps(0x1.0p-24f));
}

// QSGD fields of 16 elements: level | negative << width (kernels::qsgd_fields_block, lane-wise).
struct QsgdQuantizer {
  float inv;
  float s_f;
  std::uint32_t s;
  unsigned width;

  THINWIRE_AVX512 __m512i fields16(const float* u, __m512i ctr) const noexcept {
    const __m512i xb = _mm512_loadu_si512(u);
    const __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(xb, _mm512_set1_epi32(0x7FFFFFFF)));
    const __m512 uniform = uniforms16(ctr);
    // std::min(a, b) is b < a ? b : a; vminps(a, b) is a < b ? a : b: equal unless they are
    // equal (then the same value) or NaN (excluded: the input is finite, inv and s finite).
    const __m512 sr =
        _mm512_maskz_min_ps(kAll, _mm512_mul_ps(ax, _mm512_set1_ps(inv)), _mm512_set1_ps(s_f));
    const __m512i level0 = _mm512_maskz_cvttps_epi32(kAll, sr);
    const __m512 frac = _mm512_sub_ps(sr, _mm512_maskz_cvtepi32_ps(kAll, level0));
    const __mmask16 up = _mm512_cmp_ps_mask(uniform, frac, _CMP_LT_OQ);
    const __m512i level = _mm512_mask_add_epi32(level0, up, level0, _mm512_set1_epi32(1));
    const __mmask16 negative =
        _mm512_test_epi32_mask(xb, _mm512_set1_epi32(static_cast<int>(0x80000000U))) &
        _mm512_test_epi32_mask(level, level);
    return _mm512_mask_or_epi32(level, negative, level,
                                _mm512_set1_epi32(static_cast<int>(1U << width)));
  }
  void scalar_fields(const float* u, std::uint64_t first, RngKey key,
                     std::uint32_t* f) const noexcept {
    qsgd_fields(u, 16, first, inv, s, width, key, f);
  }
};

// TernGrad codes of 16 elements: keep << negative (kernels::terngrad_fields_block, lane-wise).
struct TernGradQuantizer {
  float scale;
  float inv;

  THINWIRE_AVX512 __m512i fields16(const float* u, __m512i ctr) const noexcept {
    const __m512i xb = _mm512_loadu_si512(u);
    const __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(xb, _mm512_set1_epi32(0x7FFFFFFF)));
    const __m512 uniform = uniforms16(ctr);
    const __m512 p =
        _mm512_mul_ps(_mm512_maskz_min_ps(kAll, ax, _mm512_set1_ps(scale)), _mm512_set1_ps(inv));
    const __mmask16 keep = _mm512_cmp_ps_mask(uniform, p, _CMP_LT_OQ);
    const __mmask16 negative =
        _mm512_test_epi32_mask(xb, _mm512_set1_epi32(static_cast<int>(0x80000000U))) &
        _mm512_cmp_ps_mask(ax, _mm512_setzero_ps(), _CMP_NEQ_OQ);
    // keep << negative: 1 for +, 2 for -, 0 if not kept.
    const __m512i one = _mm512_set1_epi32(1);
    return _mm512_maskz_mov_epi32(keep, _mm512_mask_mov_epi32(one, negative, _mm512_set1_epi32(2)));
  }
  void scalar_fields(const float* u, std::uint64_t first, RngKey key,
                     std::uint32_t* f) const noexcept {
    terngrad_fields(u, 16, first, scale, inv, key, f);
  }
};

// Stores 16 FW-bit fields (each < 2^FW), least significant first: 2·FW bytes.
template <unsigned FW>
THINWIRE_AVX512 inline void store16(__m512i fields, std::uint8_t* out) noexcept {
  const __m128i b = _mm512_maskz_cvtepi32_epi8(kAll, fields);  // byte k = field k
  if constexpr (FW == 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), b);
  } else {
    constexpr std::uint64_t kMask = FW == 4 ? 0x0F0F0F0F0F0F0F0FULL : 0x0303030303030303ULL;
    const auto lo = static_cast<std::uint64_t>(_mm_cvtsi128_si64(b));
    const auto hi = static_cast<std::uint64_t>(_mm_extract_epi64(b, 1));
    const std::uint64_t packed = _pext_u64(lo, kMask) | (_pext_u64(hi, kMask) << (8 * FW));
    std::memcpy(out, &packed, 2 * FW);
  }
}

// Floats ahead of the packing position to prefetch (see pack_loop); set by measurement.
#ifndef THINWIRE_PREFETCH_AHEAD
#define THINWIRE_PREFETCH_AHEAD 1024
#endif
constexpr std::size_t kPrefetchAhead = THINWIRE_PREFETCH_AHEAD;

template <unsigned FW, typename Q>
THINWIRE_AVX512 void pack_loop(const float* u, std::size_t n, std::uint64_t first, const Q& q,
                               RngKey key, std::uint8_t* out) noexcept {
  const __m512i lane =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(kGolden32)));
  const __m512i step = _mm512_set1_epi32(static_cast<int>(16U * kGolden32));
  std::size_t i = 0;
  while (i < n) {
    const std::uint64_t g = first + i;
    const auto j0 = static_cast<std::uint32_t>(g & (kRoundingBlock - 1));
    const std::size_t groups = std::min<std::size_t>(n - i, kRoundingBlock - j0) / 16;
    if (groups == 0) {
      // 16 elements that straddle two rounding blocks: the scalar-equivalent field kernel.
      alignas(64) std::uint32_t f[16];
      q.scalar_fields(u + i, g, key, f);
      store16<FW>(_mm512_load_si512(f), out + i * FW / 8);
      i += 16;
      continue;
    }
    const std::uint32_t block_key = key.rounding_block_key(g >> kRoundingBlockLog2);
    __m512i ctr =
        _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(block_key + j0 * kGolden32)), lane);
    for (std::size_t k = 0; k < groups; ++k, i += 16) {
      // The caller's scale pass (max |u_i| of the next bucket) runs right after this one: fetch
      // its cache lines now, so that the memory stream overlaps the arithmetic here instead of
      // running in a separate pass (prefetches past the end of u are harmless hints).
      _mm_prefetch(reinterpret_cast<const char*>(u + i + kPrefetchAhead), _MM_HINT_T0);
      store16<FW>(q.fields16(u + i, ctr), out + i * FW / 8);
      ctr = _mm512_add_epi32(ctr, step);
    }
  }
}

}  // namespace

bool has_fused_pack() noexcept {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("bmi2");
  return ok;
}

void qsgd_pack(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
               unsigned width, RngKey key, std::uint8_t* out) noexcept {
  const QsgdQuantizer q{inv, static_cast<float>(s), s, width};
  if (width == 1) return pack_loop<2>(u, n, first, q, key, out);
  if (width == 3) return pack_loop<4>(u, n, first, q, key, out);
  pack_loop<8>(u, n, first, q, key, out);
}

void terngrad_pack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                   RngKey key, std::uint8_t* out) noexcept {
  pack_loop<2>(u, n, first, TernGradQuantizer{scale, inv}, key, out);
}

#else

bool has_fused_pack() noexcept { return false; }
void qsgd_pack(const float*, std::size_t, std::uint64_t, float, std::uint32_t, unsigned, RngKey,
               std::uint8_t*) noexcept {}
void terngrad_pack(const float*, std::size_t, std::uint64_t, float, float, RngKey,
                   std::uint8_t*) noexcept {}

#endif

}  // namespace thinwire::codec::kernels
