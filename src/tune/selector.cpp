#include "thinwire/tune/selector.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "scan_kernels.hpp"
#include "thinwire/codec/message_size.hpp"
#include "thinwire/codec/select.hpp"
#include "thinwire/codec/wangni.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/tune/rho.hpp"

namespace thinwire::tune {

// Message sizes are the codec layer's (codec/message_size.hpp).
using codec::qsgd_message_bits;
using codec::qsgd_packed_message_bits;
using codec::randk_message_bits;
using codec::terngrad_message_bits;
using codec::topk_message_bits;
using codec::topk_qsgd_message_bits;
using codec::wangni_message_bits_at_cap;
namespace {

constexpr unsigned kBinShift = 20;  // 11-bit bins: exponent and 3 mantissa bits
constexpr std::size_t kBins = std::size_t{1} << (31 - kBinShift);
constexpr std::size_t kMaxSortedBin = 4096;
// Step 5 scores every k up to this many packets beyond the best message's.
constexpr std::uint64_t kPacketReach = 2;
// Message header and top-k params, as the codec writes them.
constexpr std::uint64_t kHeaderBits = 8 * (codec::kHeaderBytes + codec::TopKCodec::kParamsBytes);
// Large top-k searches: the blocks of 64 elements in the sample histogram, and how many bins
// (eighths of an octave) below the estimated best bin the gathered elements reach.
constexpr std::size_t kTopKSampleBlocks = 1024;
constexpr std::size_t kGatherBins = 8;

std::uint32_t magnitude_key(float x) noexcept {
  return std::bit_cast<std::uint32_t>(x) & 0x7FFFFFFFU;
}

// Estimated top-k message bits for k of d (step 2 of the selector).
double estimated_topk_bits(std::size_t k, std::size_t d, codec::IndexCoding index) noexcept {
  const auto kk = static_cast<double>(k);
  double per_index = 0.0;
  if (index == codec::IndexCoding::kFixed) {
    per_index = d <= 1 ? 0.0 : static_cast<double>(std::bit_width(d - 1));
  } else {
    const double x = static_cast<double>(d) / std::max(kk, 1.0);
    const double l = std::log2(x);
    per_index = l + 2.0 * std::log2(l + 1.0) + 1.0;
  }
  return static_cast<double>(kHeaderBits) + kk * (32.0 + per_index) + 3.5;
}

constexpr double kNoScore = -std::numeric_limits<double>::infinity();

Choice finish_choice(Choice c, const CostModel& cost, const Objective& objective) {
  c.cost = objective.price(cost, c.bits);
  c.score = objective.score(c.rho, c.err, c.cost);
  return c;
}

// E‖v − Q(v)‖² of an unbiased codec from its ρ = ‖v‖²/(‖v‖² + Var).
double unbiased_error(double rho, double squared_norm) noexcept {
  return rho > 0.0 ? squared_norm * (1.0 / rho - 1.0) : std::numeric_limits<double>::infinity();
}

// Geometric grid of counts in [1, n]: 1, x, x², ... and n (ratio x = √2: 1, 2, 3, 4, 6, 8, ...).
std::vector<std::size_t> count_grid(std::size_t n, double ratio = std::sqrt(2.0)) {
  std::vector<std::size_t> grid;
  for (double x = 1.0; x < static_cast<double>(n); x *= ratio) {
    const auto k = static_cast<std::size_t>(std::llround(x));
    if (grid.empty() || grid.back() != k) grid.push_back(k);
  }
  if (n > 0 && (grid.empty() || grid.back() != n)) grid.push_back(n);
  return grid;
}

// Largest k in [lo, hi] with bits_of(k) <= limit, given bits_of(lo) <= limit and bits_of
// non-decreasing.
template <typename BitsOf>
std::size_t largest_fitting(std::size_t lo, std::size_t hi, double limit, BitsOf bits_of) {
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo + 1) / 2;
    if (bits_of(mid) <= limit) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// QSGD, packed coding: s = scan::scan_level(j) = 2^(j+1) − 1 for j < kQsgdLevelSteps (1 .. 511),
// the levels that fill their packed fields (the bits of 1 .. 256 with less variance).
constexpr std::size_t kQsgdLevelSteps = scan::kLevelSteps;
// Blocks of 64 elements whose rounding variance is evaluated per bucket setting (16384 elements).
constexpr std::size_t kQsgdSampleBlocks = 256;
// The relative tolerance of the sampled variance (tests/unit/tune/fast_select_test.cpp): the
// runner-up is scored exactly too where, within it, it could beat the best estimate.
constexpr double kQsgdTolerance = 0.08;

// One bucket setting of the QSGD search: its scales and the estimated variance at every s.
struct QsgdSetting {
  std::uint32_t bucket = 0;            // as in the spec (0: whole vector)
  std::size_t length = 0;              // elements per bucket
  std::vector<float> scale;            // per bucket, as the encoder computes it up to rounding
  std::uint64_t buckets = 0;           // bucket count
  std::uint64_t nonzero_elements = 0;  // elements in buckets with a non-zero scale
  std::array<double, kQsgdLevelSteps> variance{};  // estimated E‖Q − v‖² at s = scan_level(j)
};

struct QsgdScan {
  double total = 0.0;  // squared_norm(g) (from fp32 block sums for sampled vectors)
  std::vector<QsgdSetting> settings;
};

// Σ f(1 − f) at s = scan_level(j) for a run of elements in double (level_sums for scales whose
// inverse overflows fp32).
void level_sums_double(std::span<const float> u, double scale, double* out) {
  for (std::size_t j = 0; j < kQsgdLevelSteps; ++j) {
    const double s = scan::scan_level(j);
    double sum = 0.0;
    for (const float x : u) {
      const double sr = std::min(static_cast<double>(std::fabs(x)) / scale * s, s);
      const double f = sr - std::floor(sr);
      sum += f * (1.0 - f);
    }
    out[j] += sum;
  }
}

// Systematic sampling of m units with probability proportional to size (zero-size units are
// never drawn; they contribute nothing): units of size at least the interval are taken with weight
// 1 (found in up to four rounds, each removing them from the rest), the others at the points
// (j + ½)·interval of the running size with weight interval/size. All units when there are at
// most m.
void pps_sample(std::span<const double> size, std::size_t m,
                std::vector<std::pair<std::size_t, double>>& out) {
  out.clear();
  const std::size_t n = size.size();
  if (n <= m) {
    for (std::size_t b = 0; b < n; ++b) {
      if (size[b] > 0.0) out.emplace_back(b, 1.0);
    }
    return;
  }
  thread_local std::vector<char> certain;
  certain.assign(n, 0);
  // Σ size and max size over four interleaved partials (no serial chain of additions).
  double part[4] = {0.0, 0.0, 0.0, 0.0};
  double top[4] = {0.0, 0.0, 0.0, 0.0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (std::size_t t = 0; t < 4; ++t) {
      part[t] += size[i + t];
      top[t] = std::max(top[t], size[i + t]);
    }
  }
  for (; i < n; ++i) {
    part[0] += size[i];
    top[0] = std::max(top[0], size[i]);
  }
  double rest = (part[0] + part[1]) + (part[2] + part[3]);
  const double largest = std::max(std::max(top[0], top[1]), std::max(top[2], top[3]));
  std::size_t rest_m = m;
  for (int round = 0; round < 4 && rest_m > 0 && largest >= rest / static_cast<double>(m);
       ++round) {
    const double interval = rest / static_cast<double>(rest_m);
    bool changed = false;
    for (std::size_t b = 0; b < n && rest_m > 0; ++b) {
      if (!certain[b] && size[b] > 0.0 && size[b] >= interval) {
        certain[b] = 1;
        --rest_m;
        changed = true;
      }
    }
    if (!changed) break;
    rest = 0.0;
    for (std::size_t b = 0; b < n; ++b) rest += certain[b] ? 0.0 : size[b];
  }
  const double interval = rest_m > 0 ? rest / static_cast<double>(rest_m) : 0.0;
  thread_local std::vector<double> rest_size;  // size with the certain units zeroed (if any)
  std::span<const double> walk = size;
  if (rest_m < m) {
    rest_size.assign(size.begin(), size.end());
    for (std::size_t b = 0; b < n; ++b) {
      if (certain[b]) {
        out.emplace_back(b, 1.0);
        rest_size[b] = 0.0;
      }
    }
    walk = rest_size;
  }
  if (!(interval > 0.0)) return;
  // The walk: sums of 16 units (independent, vectorized), then the running total over those, and
  // unit by unit only inside the groups that hold a sampling point.
  constexpr std::size_t kGroup = 16;
  double running = 0.0;
  double next = 0.5 * interval;
  for (std::size_t first = 0; first < n; first += kGroup) {
    const std::size_t last = std::min(n, first + kGroup);
    // The group's sum over four partial sums (short dependency chains).
    double g0 = 0.0, g1 = 0.0, g2 = 0.0, g3 = 0.0;
    std::size_t u = first;
    for (; u + 4 <= last; u += 4) {
      g0 += walk[u];
      g1 += walk[u + 1];
      g2 += walk[u + 2];
      g3 += walk[u + 3];
    }
    for (; u < last; ++u) g0 += walk[u];
    const double group = (g0 + g1) + (g2 + g3);
    if (running + group <= next) {
      running += group;
      continue;
    }
    for (std::size_t b = first; b < last; ++b) {
      running += walk[b];
      if (running > next && walk[b] > 0.0) {
        out.emplace_back(b, std::max(1.0, interval / walk[b]));
        while (next < running) next += interval;
      }
    }
  }
  std::sort(out.begin(), out.end());
}

// Σ sumsq[b] and max max_key[b] over blocks [first, last), four independent partial sums.
std::pair<double, std::uint32_t> block_range_stats(const float* sumsq, const std::uint32_t* max_key,
                                                   std::size_t first, std::size_t last) noexcept {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  std::uint32_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  std::size_t b = first;
  for (; b + 4 <= last; b += 4) {
    s0 += static_cast<double>(sumsq[b]);
    s1 += static_cast<double>(sumsq[b + 1]);
    s2 += static_cast<double>(sumsq[b + 2]);
    s3 += static_cast<double>(sumsq[b + 3]);
    m0 = std::max(m0, max_key[b]);
    m1 = std::max(m1, max_key[b + 1]);
    m2 = std::max(m2, max_key[b + 2]);
    m3 = std::max(m3, max_key[b + 3]);
  }
  for (; b < last; ++b) {
    s0 += static_cast<double>(sumsq[b]);
    m0 = std::max(m0, max_key[b]);
  }
  return {(s0 + s1) + (s2 + s3), std::max(std::max(m0, m1), std::max(m2, m3))};
}

// The scan of select_qsgd: block statistics, scales of every bucket setting, sampled variance.
QsgdScan scan_qsgd(std::span<const float> g, const codec::QsgdParams& configured) {
  const std::size_t d = g.size();
  const std::size_t nblocks = scan::block_count(d);
  // Per-thread buffers reused across decisions: at 1M elements each array is 64-128 KiB, which
  // malloc would map and fault in afresh at every call.
  thread_local std::vector<float> block_sq;
  thread_local std::vector<std::uint32_t> block_max;
  thread_local std::vector<float> block_l1;
  thread_local std::vector<double> size;
  block_sq.resize(nblocks);
  block_max.resize(nblocks);
  block_l1.resize(nblocks);
  size.resize(nblocks);
  scan::block_stats_fp32(g.data(), d, block_sq.data(), block_max.data(), block_l1.data());
  QsgdScan out;
  if (nblocks <= kQsgdSampleBlocks) {
    out.total = squared_norm(g);  // exact: these vectors are scored with rho_qsgd's numbers
  } else {
    out.total = block_range_stats(block_sq.data(), block_max.data(), 0, nblocks).first;
  }
  const bool max_norm = configured.norm == codec::QsgdParams::Norm::kMax;

  // Bucket settings: the configured one, 64, 256, 1024 and whole (each effective length once).
  const auto length = [&](std::uint32_t b) {
    return b == 0 || b >= d ? d : static_cast<std::size_t>(b);
  };
  for (const std::uint32_t bucket : {configured.bucket, 64u, 256u, 1024u, 0u}) {
    const std::size_t len = length(bucket);
    if (std::any_of(out.settings.begin(), out.settings.end(),
                    [&](const QsgdSetting& s) { return s.length == len; })) {
      continue;
    }
    QsgdSetting s;
    s.bucket = bucket;
    s.length = len;
    s.buckets = (d + len - 1) / len;
    s.scale.resize(s.buckets);
    if (len == scan::kBlock) {  // one block per bucket: a loop the compiler vectorizes
      if (max_norm) {
        for (std::size_t k = 0; k < s.buckets; ++k) s.scale[k] = std::bit_cast<float>(block_max[k]);
      } else {
        scan::square_roots(block_sq.data(), s.buckets, s.scale.data());
      }
      std::size_t nonzero = 0;  // buckets with a non-zero scale, the last one counted apart
      for (std::size_t k = 0; k + 1 < s.buckets; ++k) nonzero += s.scale[k] != 0.0f ? 1 : 0;
      s.nonzero_elements = nonzero * len;
      if (s.scale[s.buckets - 1] != 0.0f) s.nonzero_elements += d - (s.buckets - 1) * len;
      out.settings.push_back(std::move(s));
      continue;
    }
    for (std::size_t k = 0; k < s.buckets; ++k) {
      const std::size_t first = k * len;
      const std::size_t n = std::min(len, d - first);
      double sq = 0.0;
      std::uint32_t mx = 0;
      if (first % scan::kBlock == 0 && (n % scan::kBlock == 0 || first + n == d)) {
        // Whole blocks: the scale from the block statistics.
        std::tie(sq, mx) = block_range_stats(block_sq.data(), block_max.data(),
                                             first / scan::kBlock, scan::block_count(first + n));
      } else {
        const std::span<const float> u = g.subspan(first, n);
        if (max_norm) {
          for (const float x : u) {
            mx = std::max(mx, scan::magnitude_key_of(std::bit_cast<std::uint32_t>(x)));
          }
        } else {
          sq = scan::blocked_squared_norm(u.data(), n);
        }
      }
      s.scale[k] = max_norm ? std::bit_cast<float>(mx) : static_cast<float>(std::sqrt(sq));
      if (s.scale[k] != 0.0f) s.nonzero_elements += n;
    }
    out.settings.push_back(std::move(s));
  }

  // Per setting, a sample of kQsgdSampleBlocks blocks drawn systematically with probability
  // proportional to size_b = (largest bucket scale over the block)·‖x_b‖₁: the block's variance
  // at s is at most Σ scale·|x_i|/s = size_b/s (f(1 − f) <= s·r), and about that where s·r ≪ 1,
  // so the weights stay bounded where one bucket's scale dwarfs its other elements. Blocks of size
  // at least the sampling interval are taken whole (weight 1), the others with weight
  // interval/size_b.
  thread_local std::vector<std::pair<std::size_t, double>> sample;  // block, weight
  for (QsgdSetting& s : out.settings) {
    std::fill(size.begin(), size.end(), 0.0);
    if (s.length == scan::kBlock) {
      for (std::size_t b = 0; b < nblocks; ++b) {
        size[b] = static_cast<double>(s.scale[b]) * static_cast<double>(block_l1[b]);
      }
    }
    for (std::size_t k = 0; k < s.buckets && s.length != scan::kBlock; ++k) {
      const std::size_t first = k * s.length;
      const std::size_t last = std::min(d, first + s.length) - 1;
      const auto scale = static_cast<double>(s.scale[k]);
      for (std::size_t b = first / scan::kBlock; b <= last / scan::kBlock; ++b) {
        size[b] = std::max(size[b], scale * static_cast<double>(block_l1[b]));
      }
    }
    pps_sample(size, kQsgdSampleBlocks, sample);
    for (const auto& [b, weight] : sample) {
      const std::size_t end = std::min(d, (b + 1) * scan::kBlock);
      for (std::size_t pos = b * scan::kBlock; pos < end;) {
        const std::size_t k = pos / s.length;
        const std::size_t run_end = std::min(end, (k + 1) * s.length);
        const double scale = s.scale[k];
        if (scale > 0.0) {
          std::array<double, kQsgdLevelSteps> sums{};
          const std::span<const float> u = g.subspan(pos, run_end - pos);
          const double inv = 1.0 / scale;
          if (inv < 0x1.0p100) {
            scan::level_sums(u.data(), u.size(), static_cast<float>(inv), sums.data());
          } else {
            level_sums_double(u, scale, sums.data());
          }
          for (std::size_t j = 0; j < kQsgdLevelSteps; ++j) {
            const double step = scale / static_cast<double>(scan::scan_level(j));
            s.variance[j] += weight * step * step * sums[j];
          }
        }
        pos = run_end;
      }
    }
  }
  return out;
}
}  // namespace

Family parse_family(std::string_view name) {
  if (name == "topk") return Family::kTopK;
  if (name == "randk") return Family::kRandK;
  if (name == "wangni") return Family::kWangni;
  if (name == "qsgd") return Family::kQsgd;
  if (name == "terngrad") return Family::kTernGrad;
  if (name == "topk_qsgd") return Family::kTopKQsgd;
  throw InvalidArgument("tuner: unknown codec family '" + std::string(name) +
                        "' (expected topk, randk, wangni, qsgd, terngrad or topk_qsgd)");
}

std::string_view family_name(Family f) noexcept {
  switch (f) {
    case Family::kTopK:
      return "topk";
    case Family::kRandK:
      return "randk";
    case Family::kWangni:
      return "wangni";
    case Family::kQsgd:
      return "qsgd";
    case Family::kTernGrad:
      return "terngrad";
    case Family::kTopKQsgd:
      return "topk_qsgd";
  }
  return "?";
}

double score_of(double rho, double cost) noexcept { return cost > 0.0 ? rho / cost : 0.0; }

double Objective::price(const CostModel& cost, double bits) const noexcept {
  return copies * cost.cost(static_cast<std::uint64_t>(std::llround(bits))) + fixed;
}

double Objective::score(double rho, double err, double price) const noexcept {
  const double delta = step_model ? signal - penalty * err : rho;
  if (!(delta > 0.0)) return std::isnan(delta) ? kNoScore : delta;
  return price > 0.0 ? delta / price : delta;
}

std::string Choice::codec_spec(const SelectorOptions& options) const {
  const std::string index =
      options.index == codec::IndexCoding::kFixed ? ",index=fixed" : ",index=elias";
  codec::QsgdParams q = options.qsgd;
  q.levels = levels;
  switch (family) {
    case Family::kTopK:
      return "topk:k=" + std::to_string(k) + index;
    case Family::kRandK:
      return "randk:k=" + std::to_string(k);
    case Family::kWangni: {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.17g", density);
      return std::string("wangni:density=") + buffer;
    }
    case Family::kQsgd:
      q.bucket = bucket;
      return "qsgd:" + codec::qsgd_params_spec(q);
    case Family::kTernGrad:
      return "terngrad:bucket=" + std::to_string(bucket);
    case Family::kTopKQsgd:
      return "topk:k=" + std::to_string(k) + index + ",values=qsgd," + codec::qsgd_params_spec(q);
  }
  return "";
}

Choice evaluate_topk(std::span<const float> g, std::size_t k, double total, const CostModel& cost,
                     const SelectorOptions& options, std::vector<std::uint32_t>& scratch,
                     const Objective& objective) {
  codec::select_top_k(g, k, scratch);
  double kept = 0.0;
  for (const std::uint32_t i : scratch)
    kept += static_cast<double>(g[i]) * static_cast<double>(g[i]);
  Choice c;
  c.family = Family::kTopK;
  c.k = scratch.size();
  c.rho = rho_topk(kept, total);
  c.err = std::max(0.0, total - kept);
  c.bits = static_cast<double>(topk_message_bits(scratch, g.size(), options.index));
  return finish_choice(c, cost, objective);
}

namespace {

// The elements a top-k search looks at: all of g (index empty), or every element of g whose
// magnitude key is at least lowest_bin << kBinShift, `values` in index order and index[j] the
// position of values[j] in g. For every k up to values.size() the top k of g lie in the set.
struct TopKCandidates {
  std::span<const float> values;
  std::span<const std::uint32_t> index;
  std::size_t d = 0;  // g.size()
  std::size_t lowest_bin = 0;
  [[nodiscard]] bool complete() const noexcept { return values.size() == d; }
};

// Exact score of the top k of the candidates (k <= values.size()); `scratch` receives their
// positions in g, ascending.
Choice evaluate_candidates(const TopKCandidates& set, std::size_t k, double total,
                           const CostModel& cost, const SelectorOptions& options,
                           std::vector<std::uint32_t>& scratch, const Objective& objective) {
  codec::select_top_k(set.values, k, scratch);
  double kept = 0.0;
  for (std::uint32_t& i : scratch) {
    kept += static_cast<double>(set.values[i]) * static_cast<double>(set.values[i]);
    if (!set.index.empty()) i = set.index[i];  // increasing: stays ascending
  }
  Choice c;
  c.family = Family::kTopK;
  c.k = scratch.size();
  c.rho = rho_topk(kept, total);
  c.err = std::max(0.0, total - kept);
  c.bits = static_cast<double>(topk_message_bits(scratch, set.d, options.index));
  return finish_choice(c, cost, objective);
}

// Steps 2-5 of the selector (selector.hpp) over a candidate set; nullopt where the set may not
// hold the best k (the best estimate lies in its lowest bin, or the exact steps need more
// elements than it has).
std::optional<Choice> select_topk_in(const TopKCandidates& set, double total, const CostModel& cost,
                                     const SelectorOptions& options, const Objective& objective) {
  const std::size_t d = set.d;
  const std::size_t n = set.values.size();
  std::vector<std::uint32_t> scratch;

  // Step 1: histogram.
  std::array<std::uint32_t, kBins> count{};
  std::array<double, kBins> mass{};
  for (const float x : set.values) {
    const std::uint32_t b = magnitude_key(x) >> kBinShift;
    ++count[b];
    mass[b] += static_cast<double>(x) * static_cast<double>(x);
  }

  // Step 2: scan bins from the top with estimated bits.
  const auto estimate = [&](std::size_t k, double kept) {
    return objective.score(
        rho_topk(kept, total), std::max(0.0, total - kept),
        objective.price(cost, std::floor(estimated_topk_bits(k, d, options.index))));
  };
  double best_score = kNoScore;
  std::size_t best_k = 1;
  std::size_t best_bin = kBins - 1;
  std::size_t above = 0;  // elements in bins above the current one
  double above_mass = 0.0;
  std::size_t best_above = 0;
  double best_above_mass = 0.0;
  for (std::size_t b = kBins; b-- > set.lowest_bin;) {
    const std::uint32_t c = count[b];
    if (c == 0) continue;
    for (std::size_t j = 1;; j = std::min<std::size_t>(c, 2 * j)) {
      const double kept = above_mass + mass[b] * static_cast<double>(j) / c;
      const double s = estimate(above + j, kept);
      if (s > best_score) {
        best_score = s;
        best_k = above + j;
        best_bin = b;
        best_above = above;
        best_above_mass = above_mass;
      }
      if (j == c) break;
    }
    above += c;
    above_mass += mass[b];
  }
  if (!set.complete() && (n == 0 || best_bin <= set.lowest_bin)) return std::nullopt;

  // Step 3: exact ρ inside the winning bin.
  if (count[best_bin] > 1 && count[best_bin] <= kMaxSortedBin) {
    std::vector<std::pair<float, std::uint32_t>> members;
    members.reserve(count[best_bin]);
    for (std::size_t i = 0; i < n; ++i) {
      if ((magnitude_key(set.values[i]) >> kBinShift) == best_bin) {
        members.emplace_back(std::fabs(set.values[i]), static_cast<std::uint32_t>(i));
      }
    }
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    double kept = best_above_mass;
    best_score = kNoScore;
    for (std::size_t j = 0; j < members.size(); ++j) {
      kept += static_cast<double>(members[j].first) * static_cast<double>(members[j].first);
      const double s = estimate(best_above + j + 1, kept);
      if (s > best_score) {
        best_score = s;
        best_k = best_above + j + 1;
      }
    }
  }

  // Step 4: exact scores around the estimate.
  Choice best;
  best.score = kNoScore;
  for (const double f : {0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0}) {
    const auto k = std::clamp<std::size_t>(
        static_cast<std::size_t>(std::llround(f * static_cast<double>(best_k))), 1, d);
    if (k > n) return std::nullopt;
    const Choice c = evaluate_candidates(set, k, total, cost, options, scratch, objective);
    if (c.score > best.score || (c.score == best.score && c.k < best.k)) best = c;
  }

  // Step 5: under a packet-based cost the score is a step function of the size, highest at the
  // largest k that fits a given number of packets. Every k up to the end of the packet count
  // kPacketReach above the best one is scored exactly, in one pass over the top k_hi elements in
  // selection order (each element costs at least 33 bits, 32 for its value and 1 for its index,
  // which bounds k_hi), keeping the Elias gap total up to date as indices are inserted.
  const std::uint64_t packet_bits = cost.fill_bits(1);
  if (packet_bits > 1) {
    const std::uint64_t packets =
        cost.fill_bits(static_cast<std::uint64_t>(best.bits)) / packet_bits;
    const std::uint64_t limit = (packets + kPacketReach) * packet_bits;
    const std::size_t k_hi = std::min<std::size_t>(
        d, limit <= kHeaderBits ? 1 : static_cast<std::size_t>((limit - kHeaderBits) / 33 + 1));
    if (k_hi > n) return std::nullopt;
    codec::select_top_k(set.values, k_hi, scratch);
    std::vector<std::uint32_t> order(scratch.begin(), scratch.end());
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      const float ax = std::fabs(set.values[x]);
      const float ay = std::fabs(set.values[y]);
      return ax != ay ? ax > ay : x < y;
    });
    const bool fixed = options.index == codec::IndexCoding::kFixed;
    const std::uint64_t width = d <= 1 ? 0 : static_cast<std::uint64_t>(std::bit_width(d - 1));
    std::set<std::uint64_t> kept{0};  // index + 1; 0 is the virtual start
    std::uint64_t index_bits = 0;
    double kept_mass = 0.0;
    for (std::size_t k = 1; k <= order.size(); ++k) {
      const std::uint32_t position = order[k - 1];
      const std::uint64_t x = std::uint64_t{set.index.empty() ? position : set.index[position]} + 1;
      if (fixed) {
        index_bits += width;
      } else {
        const auto next = kept.upper_bound(x);
        const std::uint64_t prev = *std::prev(next);
        index_bits += EliasDelta::bits(x - prev);
        if (next != kept.end()) {
          index_bits += EliasDelta::bits(*next - x);
          index_bits -= EliasDelta::bits(*next - prev);
        }
        kept.insert(x);
      }
      const auto v = static_cast<double>(set.values[position]);
      kept_mass += v * v;
      Choice c;
      c.family = Family::kTopK;
      c.k = k;
      c.rho = rho_topk(kept_mass, total);
      c.err = std::max(0.0, total - kept_mass);
      c.bits = static_cast<double>(kHeaderBits + (index_bits + 32 * k + 7) / 8 * 8);
      c = finish_choice(c, cost, objective);
      // Equal scores (a zero vector, or k inside one packet): the fuller message, same cost.
      if (c.score > best.score || (c.score == best.score && c.k > best.k)) best = c;
    }
  }
  return best;
}

}  // namespace

Choice select_topk_full(std::span<const float> g, const CostModel& cost,
                        const SelectorOptions& options, const Objective& objective) {
  std::vector<std::uint32_t> scratch;
  if (g.empty()) return evaluate_topk(g, 0, 0.0, cost, options, scratch, objective);
  const TopKCandidates all{.values = g, .index = {}, .d = g.size(), .lowest_bin = 0};
  return *select_topk_in(all, squared_norm(g), cost, options, objective);
}

Choice select_topk(std::span<const float> g, const CostModel& cost, const SelectorOptions& options,
                   const Objective& objective) {
  const std::size_t d = g.size();
  std::vector<std::uint32_t> scratch;
  if (d == 0) return evaluate_topk(g, 0, 0.0, cost, options, scratch, objective);
  const TopKCandidates all{.values = g, .index = {}, .d = d, .lowest_bin = 0};
  if (d <= kTopKSampleBlocks * scan::kBlock) {
    return *select_topk_in(all, squared_norm(g), cost, options, objective);
  }

  // Large vectors (docs/tuning.md, "Cost of a decision"): block statistics (‖g‖² and the largest
  // key of every 64 elements) in one pass; the step-2 scan on the histogram of an even sample of
  // blocks (scaled up) estimates the best k and its bin; every element down to kGatherOctaves
  // octaves below that bin is gathered from the blocks whose largest key reaches it, and steps
  // 1-5 run on the gathered elements, which hold the top k of g for every k they can reach.
  // Where they cannot (the best k would lie below them), the search runs on all of g.
  const std::size_t nblocks = scan::block_count(d);
  std::vector<double> block_sq(nblocks);
  std::vector<std::uint32_t> block_max(nblocks);
  scan::block_stats(g.data(), d, block_sq.data(), block_max.data());
  double total = 0.0;
  for (const double x : block_sq) total += x;  // = squared_norm(g), the same order

  const std::size_t stride = nblocks / kTopKSampleBlocks;
  std::array<double, kBins> count{};
  std::array<double, kBins> mass{};
  const auto weight =
      static_cast<double>(d) / static_cast<double>(kTopKSampleBlocks * scan::kBlock);
  for (std::size_t j = 0; j < kTopKSampleBlocks; ++j) {
    const std::size_t first = (j * stride + stride / 2) * scan::kBlock;
    for (std::size_t i = first; i < std::min(d, first + scan::kBlock); ++i) {
      const std::uint32_t b = magnitude_key(g[i]) >> kBinShift;
      count[b] += weight;
      mass[b] += weight * static_cast<double>(g[i]) * static_cast<double>(g[i]);
    }
  }
  double best_score = kNoScore;
  std::size_t best_bin = 0;
  double above = 0.0;
  double above_mass = 0.0;
  for (std::size_t b = kBins; b-- > 0;) {
    if (count[b] == 0.0) continue;
    for (const double f : {0.25, 0.5, 1.0}) {
      const double k = std::max(1.0, above + f * count[b]);
      const double kept = std::min(total, above_mass + f * mass[b]);
      const double s = objective.score(
          rho_topk(kept, total), std::max(0.0, total - kept),
          objective.price(cost, std::floor(estimated_topk_bits(static_cast<std::size_t>(k), d,
                                                               options.index))));
      if (s > best_score) {
        best_score = s;
        best_bin = b;
      }
    }
    above += count[b];
    above_mass += mass[b];
  }
  const std::size_t lowest = best_bin > kGatherBins ? best_bin - kGatherBins : 0;
  if (lowest > 0) {
    const std::uint32_t threshold = static_cast<std::uint32_t>(lowest) << kBinShift;
    // Room for every element of the blocks that reach the threshold, filled without branches.
    std::size_t reaching = 0;
    for (std::size_t b = 0; b < nblocks; ++b) reaching += block_max[b] >= threshold ? 1 : 0;
    const std::unique_ptr<float[]> values(new float[reaching * scan::kBlock]);
    const std::unique_ptr<std::uint32_t[]> index(new std::uint32_t[reaching * scan::kBlock]);
    std::size_t n = 0;
    for (std::size_t b = 0; b < nblocks; ++b) {
      if (block_max[b] < threshold) continue;
      for (std::size_t i = b * scan::kBlock; i < std::min(d, (b + 1) * scan::kBlock); ++i) {
        values[n] = g[i];
        index[n] = static_cast<std::uint32_t>(i);
        n += magnitude_key(g[i]) >= threshold ? 1 : 0;
      }
    }
    const TopKCandidates set{.values = std::span<const float>(values.get(), n),
                             .index = std::span<const std::uint32_t>(index.get(), n),
                             .d = d,
                             .lowest_bin = lowest};
    if (auto c = select_topk_in(set, total, cost, options, objective)) return *c;
  }
  return *select_topk_in(all, total, cost, options, objective);
}

Choice select_randk(std::size_t d, const CostModel& cost, const Objective& objective,
                    double squared_norm) {
  Choice best;
  best.family = Family::kRandK;
  best.score = kNoScore;
  if (d == 0) return finish_choice(best, cost, objective);
  for (const std::size_t k : count_grid(d)) {
    Choice c;
    c.family = Family::kRandK;
    c.k = k;
    c.rho = rho_randk(k, d);
    c.err = unbiased_error(c.rho, squared_norm);
    c.bits = randk_message_bits(d, k, false);
    c = finish_choice(c, cost, objective);
    if (c.score > best.score) best = c;
  }
  const double limit = static_cast<double>(cost.fill_bits(static_cast<std::uint64_t>(best.bits)));
  if (limit > best.bits) {
    const auto hi =
        std::min<std::size_t>(d, best.k + static_cast<std::size_t>((limit - best.bits) / 32.0) + 1);
    const std::size_t k = largest_fitting(
        best.k, hi, limit, [&](std::size_t kk) { return randk_message_bits(d, kk, false); });
    best.k = k;
    best.rho = rho_randk(k, d);
    best.err = unbiased_error(best.rho, squared_norm);
    best.bits = randk_message_bits(d, k, false);
    best = finish_choice(best, cost, objective);
  }
  return best;
}

Choice select_wangni(std::span<const float> g, const CostModel& cost, const Objective& objective) {
  const std::size_t d = g.size();
  Choice best;
  best.family = Family::kWangni;
  best.density = 1.0;
  best.score = kNoScore;
  if (d == 0) return finish_choice(best, cost, objective);
  const double total = squared_norm(g);
  std::vector<double> scratch;
  // Ratio 2: each candidate costs O(d·log d) (the expected gap lengths), see
  // codec/message_size.hpp.
  for (const std::size_t k : count_grid(d, 2.0)) {
    Choice c;
    c.family = Family::kWangni;
    c.density = static_cast<double>(k) / static_cast<double>(d);
    const float cap = codec::wangni_cap(g, c.density);
    c.rho = rho_wangni_at_cap(g, cap);
    c.err = unbiased_error(c.rho, total);
    c.bits = wangni_message_bits_at_cap(g, cap, scratch);
    c = finish_choice(c, cost, objective);
    if (c.score > best.score) best = c;
  }
  return best;
}

namespace {

// Every (bucket, s) scored exactly (expected Elias bits: O(d·log d) per candidate).
Choice select_qsgd_grid(std::span<const float> g, const CostModel& cost,
                        const SelectorOptions& options, const Objective& objective) {
  Choice best;
  best.family = Family::kQsgd;
  best.score = kNoScore;
  const double total = squared_norm(g);
  std::vector<double> scratch;
  // s on powers of two; the bucket as configured, and smaller or larger where that helps (a
  // bucket costs a 32-bit scale and lowers the variance, min(B/s², √B/s)·‖u‖² per bucket).
  // Buckets of the same effective length (B >= d is one bucket) are scored once.
  const auto length = [&](std::uint32_t b) {
    return b == 0 || b >= g.size() ? g.size() : static_cast<std::size_t>(b);
  };
  std::vector<std::size_t> seen;
  for (const std::uint32_t bucket : {options.qsgd.bucket, 64u, 256u, 1024u, 0u}) {
    if (std::find(seen.begin(), seen.end(), length(bucket)) != seen.end()) continue;
    seen.push_back(length(bucket));
    for (std::uint32_t s = 1; s <= 256; s *= 2) {
      codec::QsgdParams p = options.qsgd;
      p.levels = s;
      p.bucket = bucket;
      Choice c;
      c.family = Family::kQsgd;
      c.levels = s;
      c.bucket = bucket;
      c.rho = rho_qsgd(g, p);
      c.err = unbiased_error(c.rho, total);
      c.bits = qsgd_message_bits(g, p, scratch);
      c = finish_choice(c, cost, objective);
      if (c.score > best.score) best = c;
    }
  }
  return best;
}

}  // namespace

// QSGD (docs/tuning.md, "Cost of a decision"): one pass of per-block statistics gives every
// bucket scale and the exact packed bits of every candidate; the variance of every (bucket, s) is
// estimated from a sample of blocks (all of them for vectors of at most kQsgdSampleBlocks blocks);
// where another candidate could beat the best estimate within the estimate's tolerance, both are
// scored exactly (qsgd_variance), else the estimate stands (vectors sampled whole are always
// scored exactly). Elias coding keeps the exact grid.
Choice select_qsgd(std::span<const float> g, const CostModel& cost, const SelectorOptions& options,
                   const Objective& objective) {
  const std::size_t d = g.size();
  if (d == 0 || options.qsgd.coding == codec::QsgdParams::Coding::kElias) {
    return select_qsgd_grid(g, cost, options, objective);
  }
  const QsgdScan scan = scan_qsgd(g, options.qsgd);
  // A non-finite element (or squares beyond fp32): the exact grid, which reports it as the
  // encoder would (qsgd_variance's scales).
  if (!std::isfinite(scan.total)) return select_qsgd_grid(g, cost, options, objective);
  const double total = scan.total;
  // Every candidate scored with the estimated variance V, and with V·(1 ∓ tolerance).
  struct Scored {
    Choice c;
    double optimistic = 0.0;
    double pessimistic = 0.0;
  };
  std::vector<Scored> scored;
  for (const QsgdSetting& setting : scan.settings) {
    for (std::size_t j = 0; j < kQsgdLevelSteps; ++j) {
      Choice c;
      c.family = Family::kQsgd;
      c.levels = scan::scan_level(j);
      c.bucket = setting.bucket;
      c.bits = static_cast<double>(
          qsgd_packed_message_bits(setting.buckets, setting.nonzero_elements, c.levels));
      const double price = objective.price(cost, c.bits);
      const auto score_at = [&](double variance) {
        const double rho = total > 0.0 ? total / (total + variance) : 1.0;
        return objective.score(rho, unbiased_error(rho, total), price);
      };
      c.rho = total > 0.0 ? total / (total + setting.variance[j]) : 1.0;
      c.err = unbiased_error(c.rho, total);
      c = finish_choice(c, cost, objective);
      scored.push_back({.c = c,
                        .optimistic = score_at(setting.variance[j] * (1.0 - kQsgdTolerance)),
                        .pessimistic = score_at(setting.variance[j] * (1.0 + kQsgdTolerance))});
    }
  }
  // The best estimate, and the best other candidate that could beat it within the tolerance.
  std::size_t first = 0;
  for (std::size_t i = 1; i < scored.size(); ++i) {
    if (scored[i].c.score > scored[first].c.score) first = i;
  }
  std::size_t second = scored.size();
  for (std::size_t i = 0; i < scored.size(); ++i) {
    if (i == first || scored[i].optimistic < scored[first].pessimistic) continue;
    if (second == scored.size() || scored[i].c.score > scored[second].c.score) second = i;
  }
  // Exact scores (rho_qsgd without its second pass for ‖g‖²: total is squared_norm(g)). Vectors
  // sampled whole: codec::qsgd_variance(s), two candidates of one bucket setting in one pass.
  // Longer ones: the same formula in fp32 with the scales of the block statistics (the encoder's
  // up to one fp32 rounding), one pass per candidate, relative error below 1e-6.
  const auto finish_exact = [&](Choice c, double variance) {
    c.rho = total > 0.0 ? total / (total + variance) : 1.0;
    c.err = unbiased_error(c.rho, total);
    return finish_choice(c, cost, objective);
  };
  const bool sampled = scan::block_count(d) > kQsgdSampleBlocks;
  std::vector<float> inv;
  std::vector<double> sums;
  const auto fast_variance = [&](const Choice& c) {
    const QsgdSetting* setting = nullptr;
    for (const QsgdSetting& x : scan.settings) {
      if (x.bucket == c.bucket) setting = &x;
    }
    const auto s = static_cast<double>(c.levels);
    inv.assign(setting->buckets, 0.0f);
    for (std::size_t k = 0; k < setting->buckets; ++k) {
      const auto scale = static_cast<double>(setting->scale[k]);
      if (scale == 0.0) continue;
      if (!(s / scale < 0x1.0p100)) {  // tiny scales: the double formula
        codec::QsgdParams p = options.qsgd;
        p.bucket = c.bucket;
        p.levels = c.levels;
        return codec::qsgd_variance(g, p);
      }
      inv[k] = static_cast<float>(s / scale);
    }
    sums.resize(setting->buckets);
    scan::bucket_variance_sums(g.data(), d, setting->length, inv.data(), static_cast<float>(s),
                               sums.data());
    double variance = 0.0;
    for (std::size_t k = 0; k < setting->buckets; ++k) {
      const double step = static_cast<double>(setting->scale[k]) / s;
      variance += step * step * sums[k];
    }
    return variance;
  };
  std::array<double, 2> variance{};
  const bool has_second = second < scored.size();
  if (sampled && !has_second) {
    // No other candidate can beat the best estimate within the tolerance: the exact variance
    // would not change the decision, and the estimate (within kQsgdTolerance) is reported.
    return scored[first].c;
  }
  if (sampled) {
    variance[0] = fast_variance(scored[first].c);
    if (has_second) variance[1] = fast_variance(scored[second].c);
  } else {
    codec::QsgdParams p = options.qsgd;
    p.bucket = scored[first].c.bucket;
    std::array<std::uint32_t, 2> levels = {scored[first].c.levels, 0};
    const bool shared = has_second && scored[second].c.bucket == p.bucket;
    if (shared) levels[1] = scored[second].c.levels;
    codec::qsgd_variances(g, p, std::span(levels.data(), shared ? 2 : 1), variance);
    if (has_second && !shared) {
      p.bucket = scored[second].c.bucket;
      p.levels = scored[second].c.levels;
      variance[1] = codec::qsgd_variance(g, p);
    }
  }
  Choice best = finish_exact(scored[first].c, variance[0]);
  if (has_second) {
    const Choice c = finish_exact(scored[second].c, variance[1]);
    if (c.score > best.score) best = c;
  }
  return best;
}

std::vector<QsgdEstimate> estimate_qsgd(std::span<const float> g,
                                        const codec::QsgdParams& configured) {
  std::vector<QsgdEstimate> out;
  if (g.empty()) return out;
  const QsgdScan scan = scan_qsgd(g, configured);
  for (const QsgdSetting& setting : scan.settings) {
    for (std::size_t j = 0; j < kQsgdLevelSteps; ++j) {
      const std::uint32_t s = scan::scan_level(j);
      out.push_back({.bucket = setting.bucket,
                     .levels = s,
                     .variance = setting.variance[j],
                     .bits = static_cast<double>(
                         qsgd_packed_message_bits(setting.buckets, setting.nonzero_elements, s))});
    }
  }
  return out;
}

Choice select_terngrad(std::span<const float> g, const CostModel& cost,
                       const Objective& objective) {
  Choice best;
  best.family = Family::kTernGrad;
  best.score = kNoScore;
  const double total = squared_norm(g);
  for (const std::uint32_t bucket : {0u, 16u, 64u, 256u, 1024u, 4096u}) {
    const codec::TernGradParams p{.bucket = bucket, .clip = 0.0};
    Choice c;
    c.family = Family::kTernGrad;
    c.bucket = bucket;
    c.rho = rho_terngrad(g, p);
    c.err = unbiased_error(c.rho, total);
    c.bits = static_cast<double>(terngrad_message_bits(g, p));
    c = finish_choice(c, cost, objective);
    if (c.score > best.score) best = c;
  }
  return best;
}

Choice select_topk_qsgd(std::span<const float> g, const CostModel& cost,
                        const SelectorOptions& options, const Objective& objective) {
  const std::size_t d = g.size();
  Choice best;
  best.family = Family::kTopKQsgd;
  best.score = kNoScore;
  const double total = squared_norm(g);
  std::vector<std::uint32_t> kept;
  std::vector<float> values;
  for (const std::size_t k : count_grid(d)) {
    codec::select_top_k(g, k, kept);
    values.clear();
    double kept_sq = 0.0;
    for (const std::uint32_t i : kept) {
      values.push_back(g[i]);
      kept_sq += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    }
    for (std::uint32_t s = 1; s <= 256; s *= 2) {
      codec::QsgdParams p = options.qsgd;
      p.levels = s;
      Choice c;
      c.family = Family::kTopKQsgd;
      c.k = k;
      c.levels = s;
      c.bucket = p.bucket;
      c.rho = rho_topk_qsgd(values, total, p);
      // ρ = S²/(‖g‖²·(S + Var)) with S = ‖top_k(g)‖²; what is not sent: ‖g‖² − S + Var.
      c.err = c.rho > 0.0 && total > 0.0
                  ? std::max(0.0, total - 2.0 * kept_sq + kept_sq * kept_sq / (c.rho * total))
                  : total;
      c.bits = topk_qsgd_message_bits(kept, values, d, options.index, p);
      c = finish_choice(c, cost, objective);
      if (c.score > best.score) best = c;
    }
  }
  return best;
}

Choice select_level(Family family, std::span<const float> g, const CostModel& cost,
                    const SelectorOptions& options, const Objective& objective) {
  switch (family) {
    case Family::kTopK:
      return select_topk(g, cost, options, objective);
    case Family::kRandK:
      return select_randk(g.size(), cost, objective, objective.step_model ? squared_norm(g) : 0.0);
    case Family::kWangni:
      return select_wangni(g, cost, objective);
    case Family::kQsgd:
      return select_qsgd(g, cost, options, objective);
    case Family::kTernGrad:
      return select_terngrad(g, cost, objective);
    case Family::kTopKQsgd:
      return select_topk_qsgd(g, cost, options, objective);
  }
  throw InvalidArgument("tuner: unknown codec family");
}

}  // namespace thinwire::tune
