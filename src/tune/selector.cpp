#include "thinwire/tune/selector.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <utility>

#include "thinwire/codec/select.hpp"
#include "thinwire/codec/wangni.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/tune/bits_model.hpp"
#include "thinwire/tune/rho.hpp"

namespace thinwire::tune {
namespace {

constexpr unsigned kBinShift = 20;  // 11-bit bins: exponent and 3 mantissa bits
constexpr std::size_t kBins = std::size_t{1} << (31 - kBinShift);
constexpr std::size_t kMaxSortedBin = 4096;
// Step 5 scores every k up to this many packets beyond the best message's.
constexpr std::uint64_t kPacketReach = 2;
constexpr std::uint64_t kHeaderBits = 8 * (32 + 10);  // message header + topk params

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

Choice select_topk(std::span<const float> g, const CostModel& cost, const SelectorOptions& options,
                   const Objective& objective) {
  const std::size_t d = g.size();
  std::vector<std::uint32_t> scratch;
  if (d == 0) return evaluate_topk(g, 0, 0.0, cost, options, scratch, objective);
  const double total = squared_norm(g);

  // Step 1: histogram.
  std::array<std::uint32_t, kBins> count{};
  std::array<double, kBins> mass{};
  for (const float x : g) {
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
  for (std::size_t b = kBins; b-- > 0;) {
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

  // Step 3: exact ρ inside the winning bin.
  if (count[best_bin] > 1 && count[best_bin] <= kMaxSortedBin) {
    std::vector<std::pair<float, std::uint32_t>> members;
    members.reserve(count[best_bin]);
    for (std::size_t i = 0; i < d; ++i) {
      if ((magnitude_key(g[i]) >> kBinShift) == best_bin) {
        members.emplace_back(std::fabs(g[i]), static_cast<std::uint32_t>(i));
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
    const Choice c = evaluate_topk(g, k, total, cost, options, scratch, objective);
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
    codec::select_top_k(g, k_hi, scratch);
    std::vector<std::uint32_t> order(scratch.begin(), scratch.end());
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      const float ax = std::fabs(g[x]);
      const float ay = std::fabs(g[y]);
      return ax != ay ? ax > ay : x < y;
    });
    const bool fixed = options.index == codec::IndexCoding::kFixed;
    const std::uint64_t width = d <= 1 ? 0 : static_cast<std::uint64_t>(std::bit_width(d - 1));
    std::set<std::uint64_t> kept{0};  // index + 1; 0 is the virtual start
    std::uint64_t index_bits = 0;
    double kept_mass = 0.0;
    for (std::size_t k = 1; k <= order.size(); ++k) {
      const std::uint64_t x = std::uint64_t{order[k - 1]} + 1;
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
      kept_mass += static_cast<double>(g[x - 1]) * static_cast<double>(g[x - 1]);
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
  // Ratio 2: each candidate costs O(d·log d) (the expected gap lengths), see bits_model.hpp.
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

Choice select_qsgd(std::span<const float> g, const CostModel& cost, const SelectorOptions& options,
                   const Objective& objective) {
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
