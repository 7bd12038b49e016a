// Gossip topologies (SPEC §4, seed 002): who talks to whom, the Metropolis–Hastings mixing matrix
// and its spectral gap.
//
// Spec strings (core/spec.hpp), for a world of M ranks:
//   ring                 i ~ i±1 mod M
//   torus[:rows=R]       R×C grid with wrap-around, R·C = M; default R = the largest divisor of
//                        M not above √M (a prime M gives 1×M, i.e. the ring)
//   hypercube            i ~ i xor 2^b; M must be a power of two
//   complete             every pair
//   regular:d=D[,seed=S] random D-regular graph, M·D even, D < M: pairing model (random stubs
//                        paired one edge at a time, rejecting loops and repeated edges, restarting
//                        when stuck or, for D >= 2, disconnected: approximately uniform, after
//                        Steger & Wormald 1999), keyed by RngKey(S, 0, 0, kTopology); after 200
//                        failed restarts, the circulant graph i ~ i±1..±⌊D/2⌋ (and i + M/2 for
//                        odd D). S defaults to the seed passed to parse().
//   star                 rank 0 ~ every other rank
// Neighbour lists are sorted, without the rank itself and without repeats (a 2-wide torus or a
// 2-rank ring has single edges).
//
// Mixing: W_ij = 1/(1 + max(deg_i, deg_j)) for every edge, W_ii = 1 − Σ_{j≠i} W_ij, 0 elsewhere
// (Metropolis–Hastings; Xiao & Boyd 2004): symmetric and doubly stochastic for any graph, with
// W_ii ≥ 1/(1 + deg_i) > 0. Spectral gap δ = 1 − max(|λ_2|, |λ_M|) for the eigenvalues
// 1 = λ_1 ≥ λ_2 ≥ … ≥ λ_M of W (Eigen's SelfAdjointEigenSolver): one gossip round shrinks the
// disagreement ‖x − x̄‖ by at least the factor 1 − δ. Closed forms: complete W = J/M, δ = 1;
// ring (M ≥ 3) δ = 1 − max_{k≥1} |1 + 2cos(2πk/M)|/3; hypercube of dimension n δ = 2/(n + 1);
// a disconnected graph δ = 0; M = 1 δ = 1.
//
// Exchange schedule: the edges are coloured greedily in sorted order (each edge takes the
// smallest colour free at both ends, at most 2·maxdeg − 1 colours) and in round c every rank
// exchanges with its partner along its colour-c edge. Each round is a set of disjoint pairwise
// exchanges, so gossip cannot deadlock on any transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace thinwire::collective {

class Topology {
 public:
  // Parses a spec above for a world of `size` ranks. Throws InvalidArgument naming the spec and
  // the parameter (unknown name or key, hypercube of a non-power of two, rows not dividing M,
  // odd M·D, D >= M).
  [[nodiscard]] static Topology parse(std::string_view spec, int size, std::uint64_t seed = 0);

  [[nodiscard]] static Topology ring(int size);
  [[nodiscard]] static Topology torus(int size, int rows = 0);  // rows = 0: near square
  [[nodiscard]] static Topology hypercube(int size);
  [[nodiscard]] static Topology complete(int size);
  [[nodiscard]] static Topology random_regular(int size, int degree, std::uint64_t seed);
  [[nodiscard]] static Topology star(int size);
  // Any simple undirected graph; throws InvalidArgument for loops, repeats or ranks out of range.
  [[nodiscard]] static Topology from_edges(int size, std::vector<std::pair<int, int>> edges,
                                           std::string spec = "custom");

  [[nodiscard]] int size() const noexcept { return size_; }
  // Canonical spec with every parameter spelled out, e.g. "torus:rows=2,cols=4".
  [[nodiscard]] const std::string& spec() const noexcept { return spec_; }
  [[nodiscard]] std::span<const int> neighbors(int rank) const;
  [[nodiscard]] int degree(int rank) const { return static_cast<int>(neighbors(rank).size()); }
  [[nodiscard]] int max_degree() const noexcept;
  // Undirected edges (i < j), sorted.
  [[nodiscard]] const std::vector<std::pair<int, int>>& edges() const noexcept { return edges_; }
  [[nodiscard]] bool connected() const;

  // Number of exchange rounds, and rank's partner in each (-1 where it sits a round out).
  [[nodiscard]] int schedule_rounds() const noexcept { return rounds_; }
  [[nodiscard]] std::span<const int> schedule(int rank) const;

 private:
  Topology(int size, std::vector<std::pair<int, int>> edges, std::string spec);
  void check_rank(int rank) const;

  int size_ = 0;
  std::string spec_;
  std::vector<std::pair<int, int>> edges_;
  std::vector<std::vector<int>> neighbors_;
  int rounds_ = 0;
  std::vector<std::vector<int>> schedule_;  // [rank][round] -> partner or -1
};

// Dense symmetric M×M matrix, row-major.
class MixingMatrix {
 public:
  MixingMatrix() = default;
  explicit MixingMatrix(int size) : size_(size), w_(static_cast<std::size_t>(size) * size, 0.0) {}

  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] double operator()(int i, int j) const noexcept { return w_[index(i, j)]; }
  [[nodiscard]] double& operator()(int i, int j) noexcept { return w_[index(i, j)]; }

 private:
  [[nodiscard]] std::size_t index(int i, int j) const noexcept {
    return static_cast<std::size_t>(i) * static_cast<std::size_t>(size_) +
           static_cast<std::size_t>(j);
  }
  int size_ = 0;
  std::vector<double> w_;
};

[[nodiscard]] MixingMatrix metropolis_hastings_weights(const Topology& topology);
// 1 − (second largest eigenvalue magnitude); W must be symmetric (only its lower triangle is read).
[[nodiscard]] double spectral_gap(const MixingMatrix& w);

}  // namespace thinwire::collective
