// Pieces shared by the sparsifying codecs (topk, randk, wangni, threshold); internal, not
// installed.
//
// Index coding. Kept indices are sent in ascending order, either
//   - as Elias-delta codes of the gaps g_0 = i_0 + 1, g_j = i_j - i_{j-1} (every gap is >= 1), or
//   - in fixed width ceil(log2 d) bits each.
// Size bounds (used by max_encoded_bytes, which must be a true upper bound):
//   - Elias-delta spends bits(g) = floor(log2 g) + 2·floor(log2(floor(log2 g) + 1)) + 1 bits on a
//     gap g, and bits(g) <= 2·g for every g >= 1 (equality at g = 2), so k gaps that sum to at most
//     d cost at most 2·d bits whatever k is.
//   - bits(g) <= f(g) = log2 g + 2·log2(log2 g + 1) + 1, and f is concave on [1, inf), so by
//     Jensen k gaps summing to at most d cost at most k·f(d/k) bits: about log2(d/k) + 2 bits
//     per index, the bound that matters when k << d.
//   - trivially, every gap is at most d, so at most k·bits(d).
//
// Counts that depend on the data (threshold, wangni) are sent as Elias-delta(count + 1).
// Decoders read through BitReader (bounds-checked) and validate everything: indices strictly
// increasing and < d, counts <= d, no trailing bytes, padding bits zero, values finite.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/message.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec::sparse {

// Sparse codecs address elements with 32-bit indices.
inline constexpr std::uint64_t kMaxElements = 0xFFFFFFFFULL;

// Throws InvalidArgument if d elements cannot be addressed with 32-bit indices.
void require_indexable(std::size_t d, std::string_view codec);

// ceil(log2 d): the width of a fixed-width index (0 for d <= 1, where the only index is 0).
[[nodiscard]] constexpr unsigned fixed_index_width(std::uint64_t d) noexcept {
  return d <= 1 ? 0U : static_cast<unsigned>(std::bit_width(d - 1));
}

// Upper bound on the bits of k ascending indices in [0, d).
[[nodiscard]] std::uint64_t index_bits_bound(bool fixed_width, std::uint64_t k, std::uint64_t d);
// Upper bound on the bits of any number (<= d) of ascending indices in [0, d).
[[nodiscard]] std::uint64_t index_bits_bound_any_count(bool fixed_width, std::uint64_t d);

// Elias-delta codes of index gaps (the bits IndexWriter writes) appended to a buffer of words,
// from bit 0, without branches: each code is or-ed into a 64-bit accumulator that is stored every
// time, and the store position advances by a word when it fills, so the only dependency chain is
// a few cycles per code. The buffer needs room for EliasDelta::kMaxWordBits (42) bits per code and
// one word more.
class GapCodeStream {
 public:
  explicit GapCodeStream(std::uint64_t* words) noexcept : words_(words) {}

  // Appends a code of `width` <= EliasDelta::kMaxWordBits bits.
  void put_code(std::uint64_t code, unsigned width) noexcept {
    acc_ |= code << used_;
    words_[w_] = acc_;
    const unsigned total = used_ + width;
    // When the word is full (full = 1), what is left of the code starts the next one; a width
    // <= 42 means used_ >= 22 then, so the shift is in range. Masks rather than a condition,
    // which the compiler would turn into an unpredictable branch.
    const std::uint64_t full = total >> 6;
    const std::uint64_t stay = full - 1;  // all ones unless full
    acc_ = (acc_ & stay) | ((code >> ((64 - used_) & 63)) & ~stay);
    w_ += full;
    used_ = total & 63;
  }

  // Appends the code of the gap to `index`, which must exceed the previous one (if any).
  void put_index(std::uint32_t index) noexcept {
    unsigned width = 0;
    const std::uint64_t code = EliasDelta::word(index + 1 - next_, width);
    next_ = std::uint64_t{index} + 1;
    put_code(code, width);
  }

  // Stores the last partial word; returns the number of bits written.
  std::uint64_t finish() noexcept {
    words_[w_] = acc_;
    return 64 * std::uint64_t{w_} + used_;
  }

 private:
  std::uint64_t* words_;
  std::uint64_t acc_ = 0;
  unsigned used_ = 0;  // bits of acc_ in use, < 64
  std::size_t w_ = 0;
  std::uint64_t next_ = 0;  // one past the previous index
};

// Writes strictly increasing indices in [0, d); the caller guarantees the order.
class IndexWriter {
 public:
  IndexWriter(bool fixed_width, std::uint64_t d) noexcept
      : fixed_width_(fixed_width), width_(fixed_index_width(d)) {}

  void put(BitWriter& w, std::uint64_t index) {
    if (fixed_width_) {
      w.put(index, width_);
    } else {
      EliasDelta::put(w, index - next_ + 1);
      next_ = index + 1;
    }
  }

  // Writes the same bits as indices.size() calls of put(). Elias-delta codes are computed a
  // block at a time (a vector of them per step: kernels::delta_codes) and concatenated without
  // branches.
  void put_all(BitWriter& w, std::span<const std::uint32_t> indices);

 private:
  bool fixed_width_;
  unsigned width_;
  std::uint64_t next_ = 0;  // smallest index the next put may name
};

// Reads what IndexWriter wrote; throws CorruptMessage for an index >= d or one that does not
// increase.
class IndexReader {
 public:
  IndexReader(bool fixed_width, std::uint64_t d, std::string_view codec) noexcept
      : fixed_width_(fixed_width), width_(fixed_index_width(d)), d_(d), codec_(codec) {}

  std::uint64_t get(BitReader& r) {
    std::uint64_t index = 0;
    if (fixed_width_) {
      index = r.get(width_);
      if (index >= d_ || index < next_) fail(index);
    } else {
      const std::uint64_t gap = EliasDelta::get(r);  // >= 1 by construction of the code
      if (gap > d_ - next_) fail_gap(gap);
      index = next_ + gap - 1;
    }
    next_ = index + 1;
    return index;
  }

  // Fills `out` as out.size() calls of get() would: the same indices, and the same exception
  // at the same index for a bad code. Elias-delta gaps are decoded from a 64-bit window, several
  // per load, while the input lasts; anything unusual goes to get() for its message.
  void get_all(BitReader& r, std::span<std::uint32_t> out);
  void get_all(BitReader& r, std::span<std::uint64_t> out);

 private:
  template <typename Index>
  void get_all_impl(BitReader& r, std::span<Index> out);

  [[noreturn]] void fail(std::uint64_t index) const;
  [[noreturn]] void fail_gap(std::uint64_t gap) const;

  bool fixed_width_;
  unsigned width_;
  std::uint64_t d_;
  std::uint64_t next_ = 0;
  std::string_view codec_;
};

// Bitmaps of elements: bit b of words[w] is element 64w + b.
//
// list_set_bits writes base + the positions of the set bits of words[0, n) to out, ascending, and
// returns their number; out needs room for that number + kListSlack.
// list_sparse_set_bits does the same for bulk work, a vector of words per step where the target
// has it (kernels::list_sparse_set_bits) and the bitmap is sparse (set_bits, the number of set
// bits or a bound on it, at most n).
inline constexpr std::size_t kListSlack = 16;
std::size_t list_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                          std::uint32_t* out) noexcept;
std::size_t list_sparse_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                                 std::uint32_t* out, std::size_t set_bits) noexcept;

// A data-dependent count in [0, d], as Elias-delta(count + 1).
inline void put_count(BitWriter& w, std::uint64_t count) { EliasDelta::put(w, count + 1); }
[[nodiscard]] std::uint64_t get_count(BitReader& r, std::uint64_t d, std::string_view codec);
[[nodiscard]] constexpr std::uint64_t count_bits_bound(std::uint64_t d) noexcept {
  return EliasDelta::bits(d + 1);
}

inline void put_f32(BitWriter& w, float x) { w.put(std::bit_cast<std::uint32_t>(x), 32); }
// Reads a float32 and throws CorruptMessage if it is not finite (no encoder writes one).
[[nodiscard]] float get_finite_f32(BitReader& r, std::string_view codec);
// Reads out.size() float32s, as that many get_finite_f32 calls would.
void get_finite_f32s(BitReader& r, std::span<float> out, std::string_view codec);

// The end of a payload: fewer than 8 bits may remain and they must be the zero padding that
// BitWriter::finish writes; anything else is trailing garbage (CorruptMessage).
void finish_payload(BitReader& r, std::string_view codec);

// Writes (overwrite: zeros elsewhere) or adds values[j] at out[indices[j]]. The decoders have
// already checked that indices are in range and strictly increasing.
template <typename Index>
void scatter(std::span<const Index> indices, std::span<const float> values, std::span<float> out,
             DecodeMode mode) {
  if (mode == DecodeMode::kOverwrite) {
    // One pass in address order: the zeros before each kept element, then the element. Filling
    // all of out first and scattering after would miss the cache on every kept element's line
    // once out is larger than the cache.
    float* const base = out.data();
    std::size_t filled = 0;
    for (std::size_t j = 0; j < indices.size(); ++j) {
      const auto i = static_cast<std::size_t>(indices[j]);
      std::fill(base + filled, base + i, 0.0f);
      base[i] = values[j];
      filled = i + 1;
    }
    std::fill(base + filled, base + out.size(), 0.0f);
  } else {
    for (std::size_t j = 0; j < indices.size(); ++j) out[indices[j]] += values[j];
  }
}

// kHeaderBytes + params + payload bits rounded up to bytes.
[[nodiscard]] constexpr std::size_t message_bytes(std::size_t params_bytes,
                                                  std::uint64_t payload_bits) noexcept {
  return kHeaderBytes + params_bytes + static_cast<std::size_t>((payload_bits + 7) / 8);
}

// The k parameter of topk and randk: K >= 1 is a count (an integer), 0 < K < 1 a fraction of d.
// Returns an empty string when K is acceptable, else what is wrong with it.
[[nodiscard]] std::string count_param_problem(double k);
// Reads the required key "k" of a spec; throws InvalidArgument naming the codec.
[[nodiscard]] double parse_count_param(Spec& spec, std::string_view codec);
// Reads k from message params; throws CorruptMessage if it is not acceptable.
[[nodiscard]] double read_count_param(ParamReader& params, std::string_view codec);
// The number of elements kept out of d: min(K, d) for a count, max(1, round(K·d)) capped at d for
// a fraction, and 0 for d = 0.
[[nodiscard]] std::size_t kept_count(double k, std::size_t d) noexcept;

// A number for a canonical spec string: integers in plain decimal, anything else in the shortest
// form that parses back to the same double.
[[nodiscard]] std::string format_number(double x);

}  // namespace thinwire::codec::sparse
