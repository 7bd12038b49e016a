#include "sparse_coding.hpp"
#include "kernels/targets.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace thinwire::codec::sparse {
namespace {

// Indices per block of put_all: the codes of a block are computed first, then concatenated.
constexpr std::size_t kCodeBlock = 256;

// codes[j] and widths[j] = EliasDelta::word of the gap before indices[j], for j in [1, n): the
// gaps indices[j] - indices[j - 1] of a strictly increasing run, so each in [1, 2^32).
void delta_codes_scalar(const std::uint32_t* indices, std::size_t n, std::uint64_t* codes,
                        std::uint64_t* widths) noexcept {
  for (std::size_t j = 1; j < n; ++j) {
    unsigned width = 0;
    codes[j] = EliasDelta::word(std::uint64_t{indices[j]} - indices[j - 1], width);
    widths[j] = width;
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// All-lanes masks on the zero-masking forms: GCC 12's unmasked forms of these start from an
// "undefined" register and trip -Wmaybe-uninitialized (as in packed_kernels.cpp).
constexpr __mmask8 kAll8 = 0xFF;
constexpr __mmask16 kAll16 = 0xFFFF;

// The same, eight gaps per step (bit lengths by vplzcntq, AVX-512CD).
__attribute__((target("avx512f,avx512cd"))) void delta_codes_avx512(
    const std::uint32_t* indices, std::size_t n, std::uint64_t* codes,
    std::uint64_t* widths) noexcept {
  const __m512i one = _mm512_set1_epi64(1);
  const __m512i c63 = _mm512_set1_epi64(63);
  std::size_t j = 1;
  for (; j + 8 <= n; j += 8) {
    const __m512i cur = _mm512_maskz_cvtepu32_epi64(
        kAll8, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(indices + j)));
    const __m512i prev = _mm512_maskz_cvtepu32_epi64(
        kAll8, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(indices + j - 1)));
    const __m512i gap = _mm512_sub_epi64(cur, prev);
    // len = bit_width(gap) in [1, 32]; the gamma code of len has len_low = bit_width(len) - 1
    // zeros, a one, and len's low len_low bits; then gap's low len - 1 bits.
    const __m512i len_m1 = _mm512_sub_epi64(c63, _mm512_maskz_lzcnt_epi64(kAll8, gap));
    const __m512i len = _mm512_add_epi64(len_m1, one);
    const __m512i len_low = _mm512_sub_epi64(c63, _mm512_maskz_lzcnt_epi64(kAll8, len));
    const __m512i top = _mm512_maskz_sllv_epi64(kAll8, one, len_low);
    const __m512i gamma = _mm512_or_si512(
        top, _mm512_maskz_sllv_epi64(kAll8, _mm512_and_si512(len, _mm512_sub_epi64(top, one)),
                                     _mm512_add_epi64(len_low, one)));
    const __m512i gamma_width = _mm512_add_epi64(_mm512_add_epi64(len_low, len_low), one);
    const __m512i low =
        _mm512_and_si512(gap, _mm512_sub_epi64(_mm512_maskz_sllv_epi64(kAll8, one, len_m1), one));
    _mm512_storeu_si512(codes + j,
                        _mm512_or_si512(gamma, _mm512_maskz_sllv_epi64(kAll8, low, gamma_width)));
    _mm512_storeu_si512(widths + j, _mm512_add_epi64(gamma_width, len_m1));
  }
  delta_codes_scalar(indices + j - 1, n - j + 1, codes + j - 1, widths + j - 1);
}

bool has_avx512cd() noexcept { return kernels::avx512_target(); }
#endif

void delta_codes(const std::uint32_t* indices, std::size_t n, std::uint64_t* codes,
                 std::uint64_t* widths) noexcept {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (has_avx512cd()) {
    delta_codes_avx512(indices, n, codes, widths);
    return;
  }
#endif
  delta_codes_scalar(indices, n, codes, widths);
}

}  // namespace

void require_indexable(std::size_t d, std::string_view codec) {
  if (d > kMaxElements) {
    throw InvalidArgument(std::string(codec) + ": vectors of " + std::to_string(d) +
                          " elements exceed the 2^32 - 1 that 32-bit indices address");
  }
}

std::uint64_t index_bits_bound(bool fixed_width, std::uint64_t k, std::uint64_t d) {
  if (k == 0) return 0;
  if (fixed_width) return k * fixed_index_width(d);
  // Three bounds from the header comment; all are true, the smallest is kept.
  std::uint64_t bound = std::min(2 * d, k * EliasDelta::bits(std::max<std::uint64_t>(d, 1)));
  const double x = static_cast<double>(d) / static_cast<double>(k);
  if (x >= 1.0) {
    const double log_x = std::log2(x);
    const double jensen = static_cast<double>(k) * (log_x + 2.0 * std::log2(log_x + 1.0) + 1.0);
    // The relative slack covers the rounding of log2 and the products (errors ~1e-15).
    const double padded = std::ceil(jensen * (1.0 + 1e-9)) + 1.0;
    if (padded < static_cast<double>(bound)) bound = static_cast<std::uint64_t>(padded);
  }
  return bound;
}

std::uint64_t index_bits_bound_any_count(bool fixed_width, std::uint64_t d) {
  return fixed_width ? d * fixed_index_width(d) : 2 * d;
}

// Most words hold few bits, so a loop per bit would mispredict on most words; instead two
// candidates per word are written unconditionally (one past the word's last bit is garbage that
// the next word overwrites) and the count advances by the popcount, with a loop only for the
// rarer words that hold more. Bit 63 is forced on for the candidates: that moves no real
// position, and keeps the compiler from branching on an empty word (where countr_zero would be
// 64).
std::size_t list_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                          std::uint32_t* out) noexcept {
  constexpr std::uint64_t kTop = std::uint64_t{1} << 63;
  std::size_t m = 0;
  for (std::size_t w = 0; w < n; ++w, base += 64) {
    std::uint64_t bits = words[w];
    const auto count = static_cast<std::size_t>(std::popcount(bits));
    out[m] = base + static_cast<std::uint32_t>(std::countr_zero(bits | kTop));
    bits &= bits - 1;
    out[m + 1] = base + static_cast<std::uint32_t>(std::countr_zero(bits | kTop));
    if (count > 2) [[unlikely]] {
      bits &= bits - 1;
      for (std::size_t r = m + 2; bits != 0; bits &= bits - 1, ++r) {
        out[r] = base + static_cast<std::uint32_t>(std::countr_zero(bits));
      }
    }
    m += count;
  }
  return m;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
namespace {

// Eight words per step: the lowest four set bits of each word as candidates (by vplzcntq of the
// isolated lowest bit), interleaved into word order and compressed by the mask of those that
// exist. A group with a word of more than four bits goes to the scalar loop; with at most one
// bit per word on average that is rare (0.4 % of words at 0.64 bits per word).
__attribute__((target("avx512f,avx512cd,bmi2,popcnt"))) std::size_t list_set_bits_avx512(
    const std::uint64_t* words, std::size_t n, std::uint32_t base, std::uint32_t* out) noexcept {
  constexpr int kCandidates = 4;
  // Candidate c of word w (lane w of vector c) goes to element 4w + c: words 0-3 from the first
  // pair of vectors, 4-7 from the second.
  const __m512i order_low =
      _mm512_setr_epi32(0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
  const __m512i order_high = _mm512_add_epi32(order_low, _mm512_set1_epi32(4));
  const __m512i c63 = _mm512_set1_epi64(63);
  const __m512i one = _mm512_set1_epi64(1);
  __m512i lane_base = _mm512_add_epi64(_mm512_set1_epi64(base),
                                       _mm512_setr_epi64(0, 64, 128, 192, 256, 320, 384, 448));
  std::size_t m = 0;
  std::size_t w = 0;
  for (; w + 8 <= n; w += 8, base += 512) {
    __m512i x = _mm512_loadu_si512(words + w);
    __m256i positions[kCandidates];
    std::uint32_t mask = 0;
    for (int c = 0; c < kCandidates; ++c) {
      const __mmask8 exists = _mm512_test_epi64_mask(x, x);
      const __m512i lowest = _mm512_and_si512(x, _mm512_sub_epi64(_mm512_setzero_si512(), x));
      const __m512i bit = _mm512_sub_epi64(c63, _mm512_maskz_lzcnt_epi64(kAll8, lowest));
      positions[c] = _mm512_maskz_cvtepi64_epi32(kAll8, _mm512_add_epi64(lane_base, bit));
      mask |= _pdep_u32(exists, 0x11111111U << c);
      x = _mm512_and_si512(x, _mm512_sub_epi64(x, one));
    }
    lane_base = _mm512_add_epi64(lane_base, _mm512_set1_epi64(512));
    if (_mm512_test_epi64_mask(x, x) != 0) [[unlikely]] {
      m += list_set_bits(words + w, 8, base, out + m);
      continue;
    }
    const __m512i first =
        _mm512_maskz_inserti64x4(kAll8, _mm512_castsi256_si512(positions[0]), positions[1], 1);
    const __m512i second =
        _mm512_maskz_inserti64x4(kAll8, _mm512_castsi256_si512(positions[2]), positions[3], 1);
    const auto low_mask = static_cast<__mmask16>(mask);
    const auto high_mask = static_cast<__mmask16>(mask >> 16);
    _mm512_storeu_si512(
        out + m, _mm512_maskz_compress_epi32(
                     low_mask, _mm512_maskz_permutex2var_epi32(kAll16, first, order_low, second)));
    m += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(low_mask)));
    _mm512_storeu_si512(
        out + m, _mm512_maskz_compress_epi32(high_mask, _mm512_maskz_permutex2var_epi32(
                                                            kAll16, first, order_high, second)));
    m += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(high_mask)));
  }
  return m + list_set_bits(words + w, n - w, base, out + m);
}

}  // namespace
#endif

std::size_t list_sparse_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                                 std::uint32_t* out, std::size_t set_bits) noexcept {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (kernels::avx512_target() && set_bits <= n) return list_set_bits_avx512(words, n, base, out);
#endif
  static_cast<void>(set_bits);
  return list_set_bits(words, n, base, out);
}

void IndexWriter::put_all(BitWriter& w, std::span<const std::uint32_t> indices) {
  if (fixed_width_) {
    for (const std::uint32_t i : indices) w.put(i, width_);
    return;
  }
  std::uint64_t codes[kCodeBlock];
  std::uint64_t widths[kCodeBlock];
  std::uint64_t words[(EliasDelta::kMaxWordBits * kCodeBlock) / 64 + 1];
  for (std::size_t b = 0; b < indices.size(); b += kCodeBlock) {
    const std::size_t n = std::min(kCodeBlock, indices.size() - b);
    unsigned width = 0;
    codes[0] = EliasDelta::word(indices[b] - next_ + 1, width);
    widths[0] = width;
    delta_codes(indices.data() + b, n, codes, widths);
    next_ = std::uint64_t{indices[b + n - 1]} + 1;
    GapCodeStream stream(words);
    for (std::size_t j = 0; j < n; ++j) stream.put_code(codes[j], static_cast<unsigned>(widths[j]));
    const std::uint64_t bits = stream.finish();
    w.put_words(words, bits / 64);
    w.put(words[bits / 64], static_cast<unsigned>(bits % 64));
  }
}

void IndexReader::fail(std::uint64_t index) const {
  throw CorruptMessage(
      std::string(codec_) + ": index " + std::to_string(index) +
      (index >= d_ ? " out of range for " + std::to_string(d_) + " elements"
                   : " does not increase (previous was " + std::to_string(next_ - 1) + ")"));
}

void IndexReader::fail_gap(std::uint64_t gap) const {
  throw CorruptMessage(std::string(codec_) + ": index gap " + std::to_string(gap) +
                       " leads past the " + std::to_string(d_) + " elements");
}

template <typename Index>
void IndexReader::get_all_impl(BitReader& r, std::span<Index> out) {
  std::size_t j = 0;
  if (!fixed_width_) {
    // Gaps of valid indices are below 2^32: EliasDelta::from_word reads them from a 57-bit window,
    // several per load, while a whole code still fits in what is left of it. The loop runs only
    // while 64 bits remain, so the window lies inside the buffer. A code from_word does not read,
    // or a gap past the end, goes to get() below, which reports it.
    constexpr unsigned kWindowBits = 57;
    // Locals, not the members: stores to out could alias them and force a reload per gap.
    const std::uint64_t d = d_;
    std::uint64_t next = next_;
    bool fast = true;
    while (fast && j < out.size() && r.remaining() >= 64) {
      std::uint64_t window = r.peek57();
      unsigned used = 0;
      while (used <= kWindowBits - EliasDelta::kMaxWordBits && j < out.size()) {
        unsigned width = 0;
        const std::uint64_t gap = EliasDelta::from_word(window, width);
        if (gap == 0 || gap > d - next) {
          fast = false;
          break;
        }
        next += gap;
        out[j++] = static_cast<Index>(next - 1);
        window >>= width;
        used += width;
      }
      r.skip(used);
    }
    next_ = next;
  }
  for (; j < out.size(); ++j) out[j] = static_cast<Index>(get(r));
}

void IndexReader::get_all(BitReader& r, std::span<std::uint32_t> out) { get_all_impl(r, out); }
void IndexReader::get_all(BitReader& r, std::span<std::uint64_t> out) { get_all_impl(r, out); }

std::uint64_t get_count(BitReader& r, std::uint64_t d, std::string_view codec) {
  const std::uint64_t count = EliasDelta::get(r) - 1;
  if (count > d) {
    throw CorruptMessage(std::string(codec) + ": message keeps " + std::to_string(count) + " of " +
                         std::to_string(d) + " elements");
  }
  return count;
}

float get_finite_f32(BitReader& r, std::string_view codec) {
  const auto x = std::bit_cast<float>(static_cast<std::uint32_t>(r.get(32)));
  if (!std::isfinite(x)) throw CorruptMessage(std::string(codec) + ": non-finite value in payload");
  return x;
}

void get_finite_f32s(BitReader& r, std::span<float> out, std::string_view codec) {
  // One load per value while 64 bits remain; the rest, and a non-finite value (for its message),
  // through get_finite_f32.
  constexpr std::uint32_t kExponent = 0x7F800000;
  std::size_t j = 0;
  for (; j < out.size() && r.remaining() >= 64; ++j) {
    const auto bits = static_cast<std::uint32_t>(r.peek57());
    if ((bits & kExponent) == kExponent) break;
    out[j] = std::bit_cast<float>(bits);
    r.skip(32);
  }
  for (; j < out.size(); ++j) out[j] = get_finite_f32(r, codec);
}

void finish_payload(BitReader& r, std::string_view codec) {
  const std::uint64_t left = r.remaining();
  if (left >= 8 || r.get(static_cast<unsigned>(left)) != 0) {
    throw CorruptMessage(std::string(codec) + ": " + std::to_string(left) +
                         " bits of trailing data after the payload");
  }
}

std::string count_param_problem(double k) {
  if (!std::isfinite(k) || k <= 0.0) {
    return "must be a count >= 1 or a fraction in (0, 1), got " + format_number(k);
  }
  if (k >= 1.0 && (k != std::floor(k) || k > static_cast<double>(kMaxElements))) {
    return "a count must be an integer in [1, 2^32 - 1], got " + format_number(k);
  }
  return {};
}

double parse_count_param(Spec& spec, std::string_view codec) {
  if (!spec.has("k")) {
    throw InvalidArgument(std::string(codec) + ": missing parameter k (e.g. " + std::string(codec) +
                          ":k=0.01 or " + std::string(codec) + ":k=100)");
  }
  const double k = spec.get_double("k", 0.0);
  if (std::string problem = count_param_problem(k); !problem.empty()) {
    throw InvalidArgument(std::string(codec) + ": k " + problem);
  }
  return k;
}

double read_count_param(ParamReader& params, std::string_view codec) {
  const double k = params.get_f64();
  if (std::string problem = count_param_problem(k); !problem.empty()) {
    throw CorruptMessage(std::string(codec) + ": message parameter k " + problem);
  }
  return k;
}

std::size_t kept_count(double k, std::size_t d) noexcept {
  if (d == 0) return 0;
  if (k >= 1.0) return static_cast<std::size_t>(std::min(k, static_cast<double>(d)));
  const double kept = std::round(k * static_cast<double>(d));
  return kept < 1.0 ? 1 : std::min(d, static_cast<std::size_t>(kept));
}

std::string format_number(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9.0e15) {
    return std::to_string(static_cast<std::int64_t>(x));
  }
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, result.ptr);
}

}  // namespace thinwire::codec::sparse
