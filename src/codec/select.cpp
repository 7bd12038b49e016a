#include "thinwire/codec/select.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>

#include "kernels/select.hpp"
#include "sparse_coding.hpp"

namespace thinwire::codec {
namespace {

// |v_i| as its IEEE bit pattern with the sign cleared: an unsigned integer whose order is the
// magnitude order (see select.hpp), so selection is a radix problem on 31-bit keys.
inline std::uint32_t magnitude_key(const float* v, std::size_t i) noexcept {
  std::uint32_t bits = 0;
  std::memcpy(&bits, v + i, 4);
  return bits & 0x7FFFFFFFU;
}

// The three radix digits of a 31-bit key: bits 30..20, 19..10, 9..0.
constexpr unsigned kShift[3] = {20, 10, 0};
constexpr std::uint32_t kDigitMask[3] = {0x7FF, 0x3FF, 0x3FF};
constexpr std::size_t kBins = 2048;

// In a histogram, the digit value b at which the running count from the top first reaches
// `need`; `need` becomes the number still wanted from bin b itself.
std::uint32_t find_digit(const std::array<std::uint64_t, kBins>& hist, std::uint64_t& need) {
  for (std::size_t b = kBins; b-- > 0;) {
    if (hist[b] >= need) return static_cast<std::uint32_t>(b);
    need -= hist[b];
  }
  return 0;  // unreachable for need <= total
}

// Exact most-significant-digit radix selection in two passes over v. Pass 1 histograms the top 11
// bits (four sub-histograms, so that runs of equal digits do not serialise on one counter) and
// finds the bin holding the k-th largest key. Pass 2 writes, in ascending order, every index whose
// top digit is above that bin (certainly selected) and copies the elements of the bin itself
// (typically a small fraction) aside; those are refined on the next two digits to the exact
// threshold key, and the selected ones are merged in.
void radix_select(const float* v, std::size_t d, std::uint64_t k, std::vector<std::uint32_t>& out) {
  std::array<std::array<std::uint32_t, kBins>, 4> sub{};
  std::size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    ++sub[0][magnitude_key(v, i) >> kShift[0]];
    ++sub[1][magnitude_key(v, i + 1) >> kShift[0]];
    ++sub[2][magnitude_key(v, i + 2) >> kShift[0]];
    ++sub[3][magnitude_key(v, i + 3) >> kShift[0]];
  }
  for (; i < d; ++i) ++sub[0][magnitude_key(v, i) >> kShift[0]];
  std::array<std::uint64_t, kBins> hist{};
  for (std::size_t b = 0; b < kBins; ++b) {
    hist[b] = std::uint64_t{sub[0][b]} + sub[1][b] + sub[2][b] + sub[3][b];
  }
  std::uint64_t need = k;
  const std::uint32_t top = find_digit(hist, need);

  const auto sure = static_cast<std::size_t>(k - need);  // elements with a larger top digit
  out.resize(static_cast<std::size_t>(k));
  std::vector<std::uint32_t> cand_index(static_cast<std::size_t>(hist[top]));
  std::vector<std::uint32_t> cand_key(cand_index.size());
  std::size_t n = 0;
  std::size_t c = 0;
  for (i = 0; i < d; ++i) {
    const std::uint32_t digit = magnitude_key(v, i) >> kShift[0];
    if (digit > top) {
      out[n++] = static_cast<std::uint32_t>(i);
    } else if (digit == top) {
      cand_index[c] = static_cast<std::uint32_t>(i);
      cand_key[c++] = magnitude_key(v, i);
    }
  }

  // Refine the threshold inside the bin on the two lower digits.
  std::uint32_t prefix = top;
  for (int level = 1; level < 3; ++level) {
    hist.fill(0);
    for (std::uint32_t key : cand_key) {
      if ((key >> kShift[level - 1]) == prefix) ++hist[(key >> kShift[level]) & kDigitMask[level]];
    }
    prefix = (prefix << (kShift[level - 1] - kShift[level])) | find_digit(hist, need);
  }
  // Selected candidates: keys above the threshold, then the first `need` equal to it (ties go to
  // the lower index); both lists are ascending, so a merge keeps the output ascending.
  std::vector<std::uint32_t> picked;
  picked.reserve(static_cast<std::size_t>(k) - sure);
  for (std::size_t j = 0; j < cand_key.size(); ++j) {
    if (cand_key[j] > prefix) {
      picked.push_back(cand_index[j]);
    } else if (cand_key[j] == prefix && need > 0) {
      picked.push_back(cand_index[j]);
      --need;
    }
  }
  std::copy(picked.begin(), picked.end(), out.begin() + static_cast<std::ptrdiff_t>(sure));
  std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(sure), out.end());
}

// Selects the candidates: keys above `threshold`, then the first `need` equal to it (ties go to
// the lower index), appended in index order.
void pick(std::span<const std::uint32_t> index, std::span<const std::uint32_t> key,
          std::uint32_t threshold, std::uint64_t need, std::vector<std::uint32_t>& out) {
  for (std::size_t j = 0; j < key.size(); ++j) {
    if (key[j] > threshold) {
      out.push_back(index[j]);
    } else if (key[j] == threshold && need > 0) {
      out.push_back(index[j]);
      --need;
    }
  }
}

struct FilterCounts {
  std::size_t above = 0;    // keys > hi written to `above`
  std::size_t between = 0;  // keys in [lo, hi] written to index/key
  bool complete = false;    // false: a capacity ran out, counts are partial
};

// The filtering pass, scalar version.
FilterCounts filter_scalar(const float* v, std::size_t d, std::uint32_t lo, std::uint32_t hi,
                           std::uint32_t* above, std::size_t above_cap, std::uint32_t* index,
                           std::uint32_t* key_out, std::size_t between_cap) {
  FilterCounts c;
  for (std::size_t i = 0; i < d; ++i) {
    const std::uint32_t key = magnitude_key(v, i);
    if (key > hi) {
      if (c.above == above_cap) return c;
      above[c.above++] = static_cast<std::uint32_t>(i);
    } else if (key >= lo) {
      if (c.between == between_cap) return c;
      index[c.between] = static_cast<std::uint32_t>(i);
      key_out[c.between++] = key;
    }
  }
  c.complete = true;
  return c;
}

FilterCounts filter(const float* v, std::size_t d, std::uint32_t lo, std::uint32_t hi,
                    std::uint32_t* above, std::size_t above_cap, std::uint32_t* index,
                    std::uint32_t* key_out, std::size_t between_cap) {
  // Whole vectors in the Highway kernel, the rest (less than a vector) in the scalar loop.
  const kernels::FilterProgress p =
      kernels::filter_keys(v, d, lo, hi, above, above_cap, index, key_out, between_cap);
  FilterCounts c{.above = p.above, .between = p.between};
  if (p.stopped) return c;
  const std::size_t i = p.done;
  const FilterCounts tail =
      filter_scalar(v + i, d - i, lo, hi, above + c.above, above_cap - c.above, index + c.between,
                    key_out + c.between, between_cap - c.between);
  for (std::size_t j = 0; j < tail.above; ++j) above[c.above + j] += static_cast<std::uint32_t>(i);
  for (std::size_t j = 0; j < tail.between; ++j) {
    index[c.between + j] += static_cast<std::uint32_t>(i);
  }
  c.above += tail.above;
  c.between += tail.between;
  c.complete = tail.complete;
  return c;
}

// Sample-bracketed exact selection (large d): a strided sample of kSample keys brackets the k-th
// largest key between lo and hi with a margin of 4 binomial standard deviations plus 16 ranks;
// one filtering pass writes the indices above hi (certainly selected) and copies the elements in
// [lo, hi] aside (about 2·margin/kSample of d); the exact threshold among those comes from
// nth_element on their keys. Returns false (nothing written) when the sample's bracket missed,
// which only costs time: the caller then runs the radix selection.
constexpr std::size_t kSample = 32768;

bool bracket_select(const float* v, std::size_t d, std::uint64_t k,
                    std::vector<std::uint32_t>& out) {
  std::vector<std::uint32_t> sample(kSample);
  const std::size_t stride = d / kSample;
  for (std::size_t j = 0; j < kSample; ++j) sample[j] = magnitude_key(v, j * stride + stride / 2);
  const double q = static_cast<double>(k) * kSample / static_cast<double>(d);  // rank in sample
  const double margin = 4.0 * std::sqrt(q) + 16.0;
  const auto rank_hi = static_cast<std::ptrdiff_t>(q - margin);
  const auto rank_lo = static_cast<std::ptrdiff_t>(q + margin);
  if (rank_lo >= static_cast<std::ptrdiff_t>(kSample)) return false;
  std::nth_element(sample.begin(), sample.begin() + rank_lo, sample.end(), std::greater<>());
  const std::uint32_t lo = sample[static_cast<std::size_t>(rank_lo)];
  std::uint32_t hi = 0xFFFFFFFFU;  // above every key: nothing is certain
  if (rank_hi >= 0) {
    std::nth_element(sample.begin(), sample.begin() + rank_hi, sample.begin() + rank_lo,
                     std::greater<>());
    hi = sample[static_cast<std::size_t>(rank_hi)];
  }
  const auto expected =
      static_cast<std::size_t>(2.0 * (margin + 1.0) / kSample * static_cast<double>(d));
  // Past these counts the bracket has certainly (sure > k) or probably (8x the expected
  // candidates) missed; give up early rather than copy half the vector.
  const std::size_t out_cap = static_cast<std::size_t>(k) + 16;
  const std::size_t cand_cap = 8 * expected + 64;
  // Uninitialised scratch: only the written prefix is read.
  const auto cand_index = std::make_unique_for_overwrite<std::uint32_t[]>(cand_cap);
  const auto cand_key = std::make_unique_for_overwrite<std::uint32_t[]>(cand_cap);
  out.resize(out_cap);
  const FilterCounts counts =
      filter(v, d, lo, hi, out.data(), out_cap, cand_index.get(), cand_key.get(), cand_cap);
  if (!counts.complete) {
    out.clear();
    return false;
  }
  out.resize(counts.above);
  const std::span<const std::uint32_t> index_span(cand_index.get(), counts.between);
  const std::span<const std::uint32_t> key_span(cand_key.get(), counts.between);
  const std::size_t sure = out.size();
  if (sure >= k || sure + key_span.size() < k) {
    out.clear();
    return false;
  }
  const std::size_t want = static_cast<std::size_t>(k) - sure;  // in [1, candidates]
  std::vector<std::uint32_t> keys(key_span.begin(), key_span.end());
  std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(want - 1), keys.end(),
                   std::greater<>());
  const std::uint32_t threshold = keys[want - 1];
  const auto above = static_cast<std::size_t>(std::count_if(
      key_span.begin(), key_span.end(), [&](std::uint32_t x) { return x > threshold; }));
  pick(index_span, key_span, threshold, want - above, out);
  std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(sure), out.end());
  return true;
}

}  // namespace

void select_top_k(std::span<const float> v, std::size_t k,
                  std::vector<std::uint32_t>& indices_out) {
  sparse::require_indexable(v.size(), "select_top_k");
  const std::size_t d = v.size();
  k = std::min(k, d);
  indices_out.clear();
  if (k == d) {
    indices_out.resize(d);
    std::iota(indices_out.begin(), indices_out.end(), std::uint32_t{0});
    return;
  }
  if (k == 0) return;
  if (d >= 16 * kSample && bracket_select(v.data(), d, k, indices_out)) return;
  radix_select(v.data(), d, k, indices_out);
}

}  // namespace thinwire::codec
