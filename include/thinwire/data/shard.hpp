// Splitting a data set across M workers. A shard is a sorted list of row indices; the shards of
// one call partition {0, ..., n-1} exactly (every row in exactly one shard).
//
//   iid                      seeded shuffle, then M contiguous pieces of the shuffle whose sizes
//                            differ by at most one (the first n mod M shards get the extra row).
//   dirichlet:alpha=A[,min=N] non-iid by label (Hsu, Qi, Brown 2019, "Measuring the effects of
//                            non-identical data distribution..."): for every class c, draw
//                            proportions p ~ Dirichlet(A, ..., A) over the M workers and give
//                            worker m a contiguous piece of size ≈ p_m · n_c of the shuffled rows
//                            of class c. Small A concentrates each class on few workers (A → ∞ is
//                            iid). Draws are repeated with fresh sub-streams until every shard has
//                            at least N rows (default 1); after 1000 failures it throws.
//
// All randomness is counter-based from (seed, RngPurpose::kData): same inputs, same shards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "thinwire/core/rng.hpp"
#include "thinwire/data/dataset.hpp"

namespace thinwire::data {

using Shard = std::vector<std::size_t>;

[[nodiscard]] std::vector<Shard> shard_iid(std::size_t rows, std::size_t workers,
                                           std::uint64_t seed);

// Needs a data set with classes. Throws InvalidArgument for alpha <= 0 or when no draw gives
// every worker `min_size` rows.
[[nodiscard]] std::vector<Shard> shard_dirichlet(const Dataset& data, std::size_t workers,
                                                 double alpha, std::uint64_t seed,
                                                 std::size_t min_size = 1);

// "iid" or "dirichlet:alpha=A[,min=N]" (see above). Errors name the scheme and parameter.
[[nodiscard]] std::vector<Shard> make_shards(const Dataset& data, std::size_t workers,
                                             std::string_view scheme, std::uint64_t seed);

// Gamma(shape, 1) by Marsaglia & Tsang, "A simple method for generating gamma variables" (2000):
// for shape a >= 1, d = a - 1/3, c = 1/sqrt(9d), x ~ N(0,1), v = (1 + c x)^3, accept d·v when
// log U < x²/2 + d - d·v + d·log v. For a < 1, Gamma(a) = Gamma(a + 1) · U^{1/a}.
[[nodiscard]] double sample_gamma(RngStream& rng, double shape);
// log of a Gamma(shape, 1) draw; unlike log(sample_gamma) it does not underflow for tiny shapes
// (U^{1/a} is 0 in double for a = 0.01 and U < 1e-3).
[[nodiscard]] double sample_log_gamma(RngStream& rng, double shape);
// Symmetric Dirichlet(alpha, ..., alpha) of out.size() components (normalized Gammas, summed in
// log space).
void sample_dirichlet(RngStream& rng, double alpha, std::span<double> out);

}  // namespace thinwire::data
