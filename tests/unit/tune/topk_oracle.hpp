// The full-sort top-k oracle of the selector tests (selector_test.cpp, fast_select_test.cpp):
// every k in [1, d], exact ρ and exact Elias-delta index bits, scored ρ/C(bits).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <set>
#include <span>
#include <vector>

#include "thinwire/core/bit_io.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/rho.hpp"
#include "thinwire/tune/selector.hpp"

namespace thinwire::tune::testing {

// The full-sort oracle: every k in [1, d], exact ρ (prefix sums in the selection order) and exact
// Elias-delta bits (gap sum kept up to date as indices are inserted into an ordered set).
inline Choice oracle_topk(std::span<const float> g, const CostModel& cost) {
  const std::size_t d = g.size();
  std::vector<std::uint32_t> order(d);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    const float x = std::fabs(g[a]);
    const float y = std::fabs(g[b]);
    return x != y ? x > y : a < b;
  });
  const double total = squared_norm(g);
  std::set<std::uint64_t> kept;  // index + 1; 0 is the virtual start
  kept.insert(0);
  std::uint64_t gap_bits = 0;
  double kept_mass = 0.0;
  Choice best;
  best.score = -1.0;
  for (std::size_t k = 1; k <= d; ++k) {
    const std::uint64_t x = std::uint64_t{order[k - 1]} + 1;
    const auto next = kept.upper_bound(x);
    const std::uint64_t prev = *std::prev(next);
    gap_bits += EliasDelta::bits(x - prev);
    if (next != kept.end()) {
      gap_bits += EliasDelta::bits(*next - x);
      gap_bits -= EliasDelta::bits(*next - prev);
    }
    kept.insert(x);
    kept_mass += static_cast<double>(g[x - 1]) * static_cast<double>(g[x - 1]);
    const std::uint64_t bits = 8 * (32 + 10) + (gap_bits + 32 * k + 7) / 8 * 8;
    const double score = score_of(rho_topk(kept_mass, total), cost.cost(bits));
    if (score > best.score) {
      best.k = k;
      best.score = score;
      best.bits = static_cast<double>(bits);
    }
  }
  return best;
}

}  // namespace thinwire::tune::testing
