#include "qsgd_kernels.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

// The AVX-512 clone of each hot loop (x86-64-v4: AVX-512F/BW/DQ/VL) and a baseline clone; the
// loader picks one per process (ifunc). Elsewhere the plain loop is compiled once. The rounding
// bits come from kernels::rounding_bits (packed_kernels.cpp), which uses AES instructions.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define THINWIRE_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define THINWIRE_CLONES
#endif

namespace thinwire::codec::kernels {

THINWIRE_CLONES bool all_finite(const float* u, std::size_t n) noexcept {
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, u + i, 4);
    bad |= static_cast<std::uint32_t>((bits & 0x7F800000U) == 0x7F800000U);
  }
  return bad == 0;
}

THINWIRE_CLONES float max_abs(const float* u, std::size_t n) noexcept {
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, u + i, 4);
    m = std::max(m, bits & 0x7FFFFFFFU);
  }
  return std::bit_cast<float>(m);
}

// Fields from precomputed rounding bits r[i] (the generator runs first, by AES where the CPU has
// it, so that this loop is plain arithmetic the compiler vectorizes).
THINWIRE_CLONES void qsgd_fields_from_bits(const float* u, std::size_t n, const std::uint32_t* r,
                                           float inv, float s_f, unsigned width,
                                           std::uint32_t* fields) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t xbits = 0;
    std::memcpy(&xbits, u + i, 4);
    const std::uint32_t sign = xbits >> 31;
    const float ax = std::bit_cast<float>(xbits & 0x7FFFFFFFU);
    const float sr = std::min(ax * inv, s_f);
    // sr >= 0, so truncation is the floor, and sr - level0 is exact (so is its scaling by 2^24).
    const auto level0 = static_cast<std::uint32_t>(static_cast<std::int32_t>(sr));
    const std::uint32_t level =
        level0 + round_up24(r[i], (sr - static_cast<float>(level0)) * 0x1.0p24f);
    const std::uint32_t negative = sign & static_cast<std::uint32_t>(level != 0);
    fields[i] = level | (negative << width);
  }
}

void qsgd_fields(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
                 unsigned width, const RoundingKey& key, std::uint32_t* fields) noexcept {
  const auto s_f = static_cast<float>(s);
  std::uint32_t r[kQsgdChunk];
  for (std::size_t done = 0; done < n;) {
    const std::size_t seg = std::min(kQsgdChunk, n - done);
    rounding_bits(key, first + done, seg, r);
    qsgd_fields_from_bits(u + done, seg, r, inv, s_f, width, fields + done);
    done += seg;
  }
}

THINWIRE_CLONES void terngrad_fields_from_bits(const float* u, std::size_t n,
                                               const std::uint32_t* r, float scale, float inv,
                                               std::uint32_t* fields) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t xbits = 0;
    std::memcpy(&xbits, u + i, 4);
    const float ax = std::bit_cast<float>(xbits & 0x7FFFFFFFU);
    const auto keep =
        static_cast<std::uint32_t>(round_up24(r[i], std::min(ax, scale) * inv * 0x1.0p24f) != 0);
    // x < 0 (not the sign bit: -0 is not negative, and is never kept anyway).
    const std::uint32_t negative = (xbits >> 31) & static_cast<std::uint32_t>(ax != 0.0f);
    fields[i] = keep << negative;
  }
}

void terngrad_fields(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                     const RoundingKey& key, std::uint32_t* fields) noexcept {
  std::uint32_t r[kQsgdChunk];
  for (std::size_t done = 0; done < n;) {
    const std::size_t seg = std::min(kQsgdChunk, n - done);
    rounding_bits(key, first + done, seg, r);
    terngrad_fields_from_bits(u + done, seg, r, scale, inv, fields + done);
    done += seg;
  }
}

THINWIRE_CLONES bool terngrad_values(const std::uint32_t* fields, std::size_t n, float scale,
                                     float* out, bool overwrite) noexcept {
  const std::uint32_t scale_bits = std::bit_cast<std::uint32_t>(scale);
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t code = fields[i];
    bad |= static_cast<std::uint32_t>(code == 3);
    // Code 1: +scale, 2: -scale, 0 and 3: +0 (as the reference decoder).
    const std::uint32_t magnitude = (code == 1 || code == 2) ? scale_bits : 0U;
    const float x = std::bit_cast<float>(magnitude | (static_cast<std::uint32_t>(code == 2) << 31));
    if (overwrite) {
      out[i] = x;
    } else {
      out[i] += x;
    }
  }
  return bad != 0;
}

namespace {

// Σ term(u_i) in double over 8 interleaved partial sums (element i goes to sum i mod 8), combined
// as ((s0+s4)+(s2+s6))+((s1+s5)+(s3+s7)): the fixed order of sum_abs and sum_squares. Inlined
// into each clone of its callers.
template <typename Term>
[[gnu::always_inline]] inline double fixed_order_sum(const float* u, std::size_t n,
                                                     Term term) noexcept {
  double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (std::size_t t = 0; t < 8; ++t) acc[t] += term(u + i + t);
  }
  for (std::size_t t = 0; i + t < n; ++t) acc[t] += term(u + i + t);
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

}  // namespace

THINWIRE_CLONES double sum_abs(const float* u, std::size_t n) noexcept {
  return fixed_order_sum(u, n, [](const float* x) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, x, 4);
    return static_cast<double>(std::bit_cast<float>(bits & 0x7FFFFFFFU));
  });
}

THINWIRE_CLONES double sum_squares(const float* u, std::size_t n) noexcept {
  return fixed_order_sum(u, n, [](const float* x) {
    const auto v = static_cast<double>(*x);
    return v * v;
  });
}

namespace {

[[gnu::always_inline]] inline double variance_sum(const float* u, std::size_t n, double inv,
                                                  double s) noexcept {
  return fixed_order_sum(u, n, [inv, s](const float* x) {
    const double sr = std::min(static_cast<double>(std::fabs(*x)) * inv, s);
    // sr is in [0, 2^20]: truncation is floor, and it vectorizes (std::floor does not on x86-64).
    const double f = sr - static_cast<double>(static_cast<std::int32_t>(sr));
    return f * (1.0 - f);
  });
}

[[gnu::always_inline]] inline double squares_sum(const float* u, std::size_t n) noexcept {
  return fixed_order_sum(u, n, [](const float* x) {
    const auto v = static_cast<double>(*x);
    return v * v;
  });
}

}  // namespace

THINWIRE_CLONES double rounding_variance_sum(const float* u, std::size_t n, double inv,
                                             double s) noexcept {
  return variance_sum(u, n, inv, s);
}

THINWIRE_CLONES void bucket_sum_squares(const float* u, std::size_t n, std::size_t bucket,
                                        double* out) noexcept {
  for (std::size_t first = 0, k = 0; first < n; first += bucket, ++k) {
    out[k] = squares_sum(u + first, std::min(bucket, n - first));
  }
}

THINWIRE_CLONES void bucket_rounding_variance_sums(const float* u, std::size_t n,
                                                   std::size_t bucket, const double* inv, double s,
                                                   double* out) noexcept {
  for (std::size_t first = 0, k = 0; first < n; first += bucket, ++k) {
    out[k] = variance_sum(u + first, std::min(bucket, n - first), inv[k], s);
  }
}

THINWIRE_CLONES void nonzero_bytes(const std::uint32_t* fields, std::size_t nb, std::uint32_t mask,
                                   std::uint8_t* bytes) noexcept {
  for (std::size_t j = 0; j < nb; ++j) {
    std::uint32_t b = 0;
    for (std::size_t t = 0; t < 8; ++t) {
      b |= static_cast<std::uint32_t>((fields[8 * j + t] & mask) != 0) << t;
    }
    bytes[j] = static_cast<std::uint8_t>(b);
  }
}

THINWIRE_CLONES void sign_bytes(const float* u, std::size_t nb, std::uint8_t* bytes) noexcept {
  for (std::size_t j = 0; j < nb; ++j) {
    std::uint32_t b = 0;
    for (std::size_t t = 0; t < 8; ++t) b |= static_cast<std::uint32_t>(u[8 * j + t] < 0.0f) << t;
    bytes[j] = static_cast<std::uint8_t>(b);
  }
}

THINWIRE_CLONES void sign_values(const std::uint8_t* bytes, std::size_t n, float scale, float* out,
                                 bool overwrite) noexcept {
  const std::uint32_t scale_bits = std::bit_cast<std::uint32_t>(scale);
  // Whole bytes with a constant bit position per inner step (so the loop vectorizes), then the
  // tail bit by bit.
  const std::size_t nb = n / 8;
  for (std::size_t j = 0; j < nb; ++j) {
    for (std::size_t t = 0; t < 8; ++t) {
      const std::uint32_t bit = (std::uint32_t{bytes[j]} >> t) & 1U;
      const float x = std::bit_cast<float>(scale_bits ^ (bit << 31));
      if (overwrite) {
        out[8 * j + t] = x;
      } else {
        out[8 * j + t] += x;
      }
    }
  }
  for (std::size_t i = 8 * nb; i < n; ++i) {
    const std::uint32_t bit = (std::uint32_t{bytes[i / 8]} >> (i % 8)) & 1U;
    const float x = std::bit_cast<float>(scale_bits ^ (bit << 31));
    if (overwrite) {
      out[i] = x;
    } else {
      out[i] += x;
    }
  }
}

void put_bytes(BitWriter& w, const std::uint8_t* bytes, std::size_t nb) {
  w.put_stream(std::span(reinterpret_cast<const std::byte*>(bytes), nb), 8 * std::uint64_t{nb});
}

void get_bytes(BitReader& r, std::uint8_t* bytes, std::size_t nb) {
  r.get_words(reinterpret_cast<std::byte*>(bytes), nb / 8);
  for (std::size_t k = nb / 8 * 8; k < nb; ++k) bytes[k] = static_cast<std::uint8_t>(r.get(8));
}

namespace {

// One decoded value: ±(float)(step·level), the sign bit set for a negative field; `bad` collects
// invalid fields (level > s, or a signed zero level).
inline float qsgd_value(std::uint32_t field, double step, std::uint32_t s, unsigned width,
                        std::uint32_t& bad) noexcept {
  const std::uint32_t level = field & ((std::uint32_t{1} << width) - 1);
  const std::uint32_t negative = field >> width;
  bad |=
      static_cast<std::uint32_t>(level > s) | (negative & static_cast<std::uint32_t>(level == 0));
  return std::bit_cast<float>(
      std::bit_cast<std::uint32_t>(static_cast<float>(step * static_cast<double>(level))) |
      (negative << 31));
}

template <unsigned FW, bool kOverwrite>
inline std::uint32_t qsgd_values_bytes_t(const std::uint8_t* bytes, std::size_t nb, double step,
                                         std::uint32_t s, float* out) noexcept {
  constexpr std::size_t kPerByte = 8 / FW;
  constexpr std::uint32_t kMask = (std::uint32_t{1} << FW) - 1;
  std::uint32_t bad = 0;
  for (std::size_t j = 0; j < nb; ++j) {
    for (std::size_t t = 0; t < kPerByte; ++t) {
      const std::uint32_t field = (std::uint32_t{bytes[j]} >> (t * FW)) & kMask;
      const float x = qsgd_value(field, step, s, FW - 1, bad);
      if constexpr (kOverwrite) {
        out[j * kPerByte + t] = x;
      } else {
        out[j * kPerByte + t] += x;
      }
    }
  }
  return bad;
}

}  // namespace

bool qsgd_values_bytes_generic(const std::uint8_t* bytes, std::size_t nb, unsigned fw, double step,
                               std::uint32_t s, float* out, bool overwrite) noexcept;

#if defined(__x86_64__) && defined(__GNUC__)
// 4-bit fields (s <= 7) with AVX-512: the 16 possible values, computed by qsgd_value exactly as
// the generic loop would, sit in one register, so each field is one vpermps lookup instead of a
// round trip through double; the invalid fields are a 16-entry 0/1 table looked up the same way.
// The compiler does not turn the table loop into register permutes by itself, hence intrinsics.
__attribute__((target("avx512f"))) std::uint32_t qsgd_values_nibbles_avx512(
    const std::uint8_t* bytes, std::size_t nb, double step, std::uint32_t s, float* out,
    bool overwrite) noexcept {
  alignas(64) float table[16];
  alignas(64) std::uint32_t invalid[16];
  for (std::uint32_t f = 0; f < 16; ++f) {
    std::uint32_t bad = 0;
    table[f] = qsgd_value(f, step, s, 3, bad);
    invalid[f] = bad;
  }
  const __m512 values = _mm512_load_ps(table);
  const __m512i bad_table = _mm512_load_si512(invalid);
  const __m512i low_nibble = _mm512_set1_epi32(15);
  // All-lanes masks on the zero-masking forms: GCC 12's unmasked forms start from an
  // "undefined" register and trip -Wmaybe-uninitialized.
  constexpr __mmask16 kAll = 0xFFFF;
  // Interleave: byte j holds field 2j (low nibble) and 2j + 1 (high nibble).
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  __m512i bad = _mm512_setzero_si512();
  std::size_t j = 0;
  for (; j + 16 <= nb; j += 16) {
    const __m512i b = _mm512_maskz_cvtepu8_epi32(
        kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + j)));
    const __m512i lo = _mm512_and_si512(b, low_nibble);
    const __m512i hi = _mm512_maskz_srli_epi32(kAll, b, 4);
    bad =
        _mm512_or_si512(bad, _mm512_or_si512(_mm512_maskz_permutexvar_epi32(kAll, lo, bad_table),
                                             _mm512_maskz_permutexvar_epi32(kAll, hi, bad_table)));
    const __m512 vlo = _mm512_maskz_permutexvar_ps(kAll, lo, values);
    const __m512 vhi = _mm512_maskz_permutexvar_ps(kAll, hi, values);
    __m512 out0 = _mm512_permutex2var_ps(vlo, first, vhi);
    __m512 out1 = _mm512_permutex2var_ps(vlo, second, vhi);
    float* dst = out + 2 * j;
    if (!overwrite) {
      out0 = _mm512_add_ps(_mm512_loadu_ps(dst), out0);
      out1 = _mm512_add_ps(_mm512_loadu_ps(dst + 16), out1);
    }
    _mm512_storeu_ps(dst, out0);
    _mm512_storeu_ps(dst + 16, out1);
  }
  std::uint32_t tail_bad =
      overwrite ? qsgd_values_bytes_t<4, true>(bytes + j, nb - j, step, s, out + 2 * j)
                : qsgd_values_bytes_t<4, false>(bytes + j, nb - j, step, s, out + 2 * j);
  return tail_bad | static_cast<std::uint32_t>(_mm512_test_epi32_mask(bad, bad) != 0);
}

// 8-bit fields (64 <= s <= 127): the 128 magnitudes step·level, computed by qsgd_value as the
// generic loop would, sit in eight registers; each field is four two-register vpermt2ps lookups
// on its low 5 bits and two blends on bits 5 and 6, then the sign bit ORed in. Invalid fields
// (level > s, or a signed zero level) are found by comparing the fields themselves.
__attribute__((target("avx512f"))) std::uint32_t qsgd_values_bytes8_avx512(
    const std::uint8_t* bytes, std::size_t nb, double step, std::uint32_t s, float* out,
    bool overwrite) noexcept {
  alignas(64) float table[128];
  for (std::uint32_t f = 0; f < 128; ++f) {
    std::uint32_t ignored = 0;
    table[f] = qsgd_value(f, step, s, 7, ignored);
  }
  __m512 t[8];
  for (int k = 0; k < 8; ++k) t[k] = _mm512_load_ps(table + 16 * k);
  constexpr __mmask16 kAll = 0xFFFF;  // as above: zero-masking forms for GCC 12
  const __m512i level_mask = _mm512_set1_epi32(0x7F);
  const __m512i sign_bit = _mm512_set1_epi32(static_cast<int>(0x80000000U));
  const __m512i s_vec = _mm512_set1_epi32(static_cast<int>(s));
  __mmask16 bad = 0;
  std::size_t j = 0;
  for (; j + 16 <= nb; j += 16) {
    const __m512i b = _mm512_maskz_cvtepu8_epi32(
        kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + j)));
    const __m512i level = _mm512_and_si512(b, level_mask);
    const __mmask16 negative = _mm512_test_epi32_mask(b, _mm512_set1_epi32(0x80));
    bad =
        static_cast<__mmask16>(bad | _mm512_cmpgt_epu32_mask(level, s_vec) |
                               (negative & _mm512_cmpeq_epi32_mask(level, _mm512_setzero_si512())));
    const __mmask16 bit5 = _mm512_test_epi32_mask(level, _mm512_set1_epi32(32));
    const __mmask16 bit6 = _mm512_test_epi32_mask(level, _mm512_set1_epi32(64));
    const __m512 a = _mm512_mask_blend_ps(bit5, _mm512_permutex2var_ps(t[0], level, t[1]),
                                          _mm512_permutex2var_ps(t[2], level, t[3]));
    const __m512 c = _mm512_mask_blend_ps(bit5, _mm512_permutex2var_ps(t[4], level, t[5]),
                                          _mm512_permutex2var_ps(t[6], level, t[7]));
    __m512 x = _mm512_castsi512_ps(
        _mm512_mask_or_epi32(_mm512_castps_si512(_mm512_mask_blend_ps(bit6, a, c)), negative,
                             _mm512_castps_si512(_mm512_mask_blend_ps(bit6, a, c)), sign_bit));
    if (!overwrite) x = _mm512_add_ps(_mm512_loadu_ps(out + j), x);
    _mm512_storeu_ps(out + j, x);
  }
  const std::uint32_t tail_bad =
      overwrite ? qsgd_values_bytes_t<8, true>(bytes + j, nb - j, step, s, out + j)
                : qsgd_values_bytes_t<8, false>(bytes + j, nb - j, step, s, out + j);
  return tail_bad | static_cast<std::uint32_t>(bad != 0);
}
#endif

bool qsgd_values_bytes(const std::uint8_t* bytes, std::size_t nb, unsigned fw, double step,
                       std::uint32_t s, float* out, bool overwrite) noexcept {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has_avx512 = __builtin_cpu_supports("avx512f") != 0;
  if (fw == 4 && has_avx512) {
    return qsgd_values_nibbles_avx512(bytes, nb, step, s, out, overwrite) != 0;
  }
  if (fw == 8 && has_avx512) {
    return qsgd_values_bytes8_avx512(bytes, nb, step, s, out, overwrite) != 0;
  }
#endif
  return qsgd_values_bytes_generic(bytes, nb, fw, step, s, out, overwrite);
}

THINWIRE_CLONES bool qsgd_values_bytes_generic(const std::uint8_t* bytes, std::size_t nb,
                                               unsigned fw, double step, std::uint32_t s,
                                               float* out, bool overwrite) noexcept {
  std::uint32_t bad = 0;
  if (fw == 2) {
    bad = overwrite ? qsgd_values_bytes_t<2, true>(bytes, nb, step, s, out)
                    : qsgd_values_bytes_t<2, false>(bytes, nb, step, s, out);
  } else if (fw == 4) {
    bad = overwrite ? qsgd_values_bytes_t<4, true>(bytes, nb, step, s, out)
                    : qsgd_values_bytes_t<4, false>(bytes, nb, step, s, out);
  } else {
    bad = overwrite ? qsgd_values_bytes_t<8, true>(bytes, nb, step, s, out)
                    : qsgd_values_bytes_t<8, false>(bytes, nb, step, s, out);
  }
  return bad != 0;
}

THINWIRE_CLONES bool qsgd_values(const std::uint32_t* fields, std::size_t n, double step,
                                 std::uint32_t s, unsigned width, float* out,
                                 bool overwrite) noexcept {
  const std::uint32_t mask = (std::uint32_t{1} << width) - 1;
  std::uint32_t bad = 0;
  if (overwrite) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t level = fields[i] & mask;
      const std::uint32_t negative = fields[i] >> width;
      bad |= static_cast<std::uint32_t>(level > s) |
             (negative & static_cast<std::uint32_t>(level == 0));
      const float m = std::bit_cast<float>(
          std::bit_cast<std::uint32_t>(static_cast<float>(step * static_cast<double>(level))) |
          (negative << 31));
      out[i] = m;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t level = fields[i] & mask;
      const std::uint32_t negative = fields[i] >> width;
      bad |= static_cast<std::uint32_t>(level > s) |
             (negative & static_cast<std::uint32_t>(level == 0));
      const float m = std::bit_cast<float>(
          std::bit_cast<std::uint32_t>(static_cast<float>(step * static_cast<double>(level))) |
          (negative << 31));
      out[i] += m;
    }
  }
  return bad != 0;
}

// bytes[j] = the 8/FW fields f[j·8/FW ...] packed least significant first (FW in {2, 4, 8}).
template <unsigned FW>
inline void pack_bytes_t(const std::uint32_t* f, std::size_t nb, std::uint8_t* bytes) noexcept {
  constexpr std::size_t kPerByte = 8 / FW;
  for (std::size_t j = 0; j < nb; ++j) {
    std::uint32_t b = 0;
    for (std::size_t t = 0; t < kPerByte; ++t) b |= f[j * kPerByte + t] << (t * FW);
    bytes[j] = static_cast<std::uint8_t>(b);
  }
}

template <unsigned FW>
inline void unpack_bytes_t(const std::uint8_t* bytes, std::size_t nb, std::uint32_t* f) noexcept {
  constexpr std::size_t kPerByte = 8 / FW;
  constexpr std::uint32_t kMask = (std::uint32_t{1} << FW) - 1;
  for (std::size_t j = 0; j < nb; ++j) {
    for (std::size_t t = 0; t < kPerByte; ++t) {
      f[j * kPerByte + t] = (std::uint32_t{bytes[j]} >> (t * FW)) & kMask;
    }
  }
}

THINWIRE_CLONES void pack_bytes(const std::uint32_t* f, std::size_t nb, unsigned fw,
                                std::uint8_t* bytes) noexcept {
  if (fw == 2) return pack_bytes_t<2>(f, nb, bytes);
  if (fw == 4) return pack_bytes_t<4>(f, nb, bytes);
  pack_bytes_t<8>(f, nb, bytes);
}

THINWIRE_CLONES void unpack_bytes(const std::uint8_t* bytes, std::size_t nb, unsigned fw,
                                  std::uint32_t* f) noexcept {
  if (fw == 2) return unpack_bytes_t<2>(bytes, nb, f);
  if (fw == 4) return unpack_bytes_t<4>(bytes, nb, f);
  unpack_bytes_t<8>(bytes, nb, f);
}

namespace {

// Packs 64/FW fields per 64-bit word: one BitWriter call per word instead of one per field.
template <unsigned FW>
void put_fields_fixed(BitWriter& w, const std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPer = 64 / FW;
  std::size_t i = 0;
  for (; i + kPer <= n; i += kPer) {
    std::uint64_t word = 0;
    for (std::size_t t = 0; t < kPer; ++t) word |= std::uint64_t{fields[i + t]} << (t * FW);
    w.put(word, static_cast<unsigned>(kPer * FW));
  }
  for (; i < n; ++i) w.put(fields[i], FW);
}

template <unsigned FW>
void get_fields_fixed(BitReader& r, std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPer = 64 / FW;
  constexpr std::uint64_t kMask = (std::uint64_t{1} << FW) - 1;
  std::size_t i = 0;
  for (; i + kPer <= n; i += kPer) {
    const std::uint64_t word = r.get(static_cast<unsigned>(kPer * FW));
    for (std::size_t t = 0; t < kPer; ++t) {
      fields[i + t] = static_cast<std::uint32_t>((word >> (t * FW)) & kMask);
    }
  }
  for (; i < n; ++i) fields[i] = static_cast<std::uint32_t>(r.get(FW));
}

// Widths that divide 8: pack whole bytes in a vectorizable loop, then hand the bytes to the
// writer 64 bits at a time.
template <unsigned FW>
void put_fields_bytes(BitWriter& w, const std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPerByte = 8 / FW;
  std::uint8_t bytes[kQsgdChunk];
  std::size_t done = 0;
  while (done < n) {
    const std::size_t nb = std::min(kQsgdChunk, (n - done) / kPerByte);
    if (nb == 0) break;
    pack_bytes(fields + done, nb, FW, bytes);
    put_bytes(w, bytes, nb);
    done += nb * kPerByte;
  }
  for (; done < n; ++done) w.put(fields[done], FW);
}

template <unsigned FW>
void get_fields_bytes(BitReader& r, std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPerByte = 8 / FW;
  std::uint8_t bytes[kQsgdChunk];
  std::size_t done = 0;
  while (done < n) {
    const std::size_t nb = std::min(kQsgdChunk, (n - done) / kPerByte);
    if (nb == 0) break;
    get_bytes(r, bytes, nb);
    unpack_bytes(bytes, nb, FW, fields + done);
    done += nb * kPerByte;
  }
  for (; done < n; ++done) fields[done] = static_cast<std::uint32_t>(r.get(FW));
}

// Dispatch on the field width to a specialisation; widths 2..21 cover s in [1, 2^20].
template <unsigned FW = 2>
void put_dispatch(BitWriter& w, const std::uint32_t* fields, std::size_t n, unsigned bits) {
  if constexpr (FW > 21) {
    for (std::size_t i = 0; i < n; ++i) w.put(fields[i], bits);
  } else {
    if constexpr (8 % FW == 0) {
      if (bits == FW) return put_fields_bytes<FW>(w, fields, n);
    } else {
      if (bits == FW) return put_fields_fixed<FW>(w, fields, n);
    }
    put_dispatch<FW + 1>(w, fields, n, bits);
  }
}

template <unsigned FW = 2>
void get_dispatch(BitReader& r, std::uint32_t* fields, std::size_t n, unsigned bits) {
  if constexpr (FW > 21) {
    for (std::size_t i = 0; i < n; ++i) fields[i] = static_cast<std::uint32_t>(r.get(bits));
  } else {
    if constexpr (8 % FW == 0) {
      if (bits == FW) return get_fields_bytes<FW>(r, fields, n);
    } else {
      if (bits == FW) return get_fields_fixed<FW>(r, fields, n);
    }
    get_dispatch<FW + 1>(r, fields, n, bits);
  }
}

}  // namespace

void put_fields(BitWriter& w, const std::uint32_t* fields, std::size_t n, unsigned field_bits) {
  put_dispatch(w, fields, n, field_bits);
}

void get_fields(BitReader& r, std::uint32_t* fields, std::size_t n, unsigned field_bits) {
  get_dispatch(r, fields, n, field_bits);
}

}  // namespace thinwire::codec::kernels
