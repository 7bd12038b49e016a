#include "sparse_coding.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>

#include "kernels/sparse.hpp"

namespace thinwire::codec::sparse {
namespace {

// Indices per block of put_all: the codes of a block are computed first, then concatenated.
constexpr std::size_t kCodeBlock = 256;

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

std::size_t list_sparse_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                                 std::uint32_t* out, std::size_t set_bits) noexcept {
  // The vector lister files a vector of words per step only while no word holds more than four
  // bits; on a denser bitmap the scalar loop is the faster.
  if (set_bits <= n) return kernels::list_sparse_set_bits(words, n, base, out);
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
    kernels::delta_codes(indices.data() + b, n, codes, widths);
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
