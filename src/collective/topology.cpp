#include "thinwire/collective/topology.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <set>

#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::collective {
namespace {

using Edge = std::pair<int, int>;

// Collects undirected edges, dropping loops and repeats (a 2-wide torus or a 2-rank ring names the
// same edge twice).
class EdgeSet {
 public:
  void add(int i, int j) {
    if (i != j) edges_.insert({std::min(i, j), std::max(i, j)});
  }
  [[nodiscard]] std::vector<Edge> take() const { return {edges_.begin(), edges_.end()}; }

 private:
  std::set<Edge> edges_;
};

void check_size(int size, std::string_view what) {
  if (size < 1) {
    throw InvalidArgument(std::string(what) + ": world size must be at least 1, got " +
                          std::to_string(size));
  }
}

// Attempts per pairing of the random regular graph before we give up on it; restarts before the
// circulant fallback.
constexpr int kPairTries = 64;
constexpr int kRegularRestarts = 200;

bool is_connected(int size, const std::vector<std::vector<int>>& neighbors) {
  std::vector<char> seen(static_cast<std::size_t>(size), 0);
  std::vector<int> stack{0};
  seen[0] = 1;
  int count = 1;
  while (!stack.empty()) {
    const int v = stack.back();
    stack.pop_back();
    for (int u : neighbors[static_cast<std::size_t>(v)]) {
      if (seen[static_cast<std::size_t>(u)] == 0) {
        seen[static_cast<std::size_t>(u)] = 1;
        ++count;
        stack.push_back(u);
      }
    }
  }
  return count == size;
}

// One run of the pairing model: repeatedly draw two random free stubs and join them unless that
// makes a loop or a repeated edge. Returns nothing when no valid pair turns up (a restart).
std::optional<std::vector<Edge>> try_pairing(int size, int degree, RngKey key) {
  std::vector<int> stubs;
  stubs.reserve(static_cast<std::size_t>(size) * static_cast<std::size_t>(degree));
  for (int v = 0; v < size; ++v) stubs.insert(stubs.end(), static_cast<std::size_t>(degree), v);
  std::vector<std::vector<int>> adjacent(static_cast<std::size_t>(size));
  std::vector<Edge> edges;
  RngStream rng(key);
  const auto remove_stub = [&stubs](std::size_t at) {
    stubs[at] = stubs.back();
    stubs.pop_back();
  };
  while (!stubs.empty()) {
    bool placed = false;
    for (int t = 0; t < kPairTries && !placed; ++t) {
      std::size_t a = rng.next_below(stubs.size());
      std::size_t b = rng.next_below(stubs.size());
      const int u = stubs[a];
      const int v = stubs[b];
      const auto& adj_u = adjacent[static_cast<std::size_t>(u)];
      if (u == v || std::find(adj_u.begin(), adj_u.end(), v) != adj_u.end()) continue;
      adjacent[static_cast<std::size_t>(u)].push_back(v);
      adjacent[static_cast<std::size_t>(v)].push_back(u);
      edges.emplace_back(std::min(u, v), std::max(u, v));
      if (a < b) std::swap(a, b);  // remove the later index first so the earlier stays valid
      remove_stub(a);
      remove_stub(b);
      placed = true;
    }
    if (!placed) return std::nullopt;
  }
  if (degree >= 2 && !is_connected(size, adjacent)) return std::nullopt;
  return edges;
}

}  // namespace

Topology::Topology(int size, std::vector<Edge> edges, std::string spec)
    : size_(size), spec_(std::move(spec)), edges_(std::move(edges)) {
  check_size(size, spec_);
  for (Edge& e : edges_) {
    if (e.first < 0 || e.first >= size || e.second < 0 || e.second >= size || e.first == e.second) {
      throw InvalidArgument(spec_ + ": edge (" + std::to_string(e.first) + ", " +
                            std::to_string(e.second) + ") is not an edge between two ranks of " +
                            std::to_string(size));
    }
    if (e.first > e.second) std::swap(e.first, e.second);
  }
  std::sort(edges_.begin(), edges_.end());
  if (std::adjacent_find(edges_.begin(), edges_.end()) != edges_.end()) {
    throw InvalidArgument(spec_ + ": repeated edge");
  }
  neighbors_.assign(static_cast<std::size_t>(size), {});
  for (const auto& [i, j] : edges_) {
    neighbors_[static_cast<std::size_t>(i)].push_back(j);
    neighbors_[static_cast<std::size_t>(j)].push_back(i);
  }
  for (auto& list : neighbors_) std::sort(list.begin(), list.end());

  // Greedy edge colouring in sorted edge order; colour c is exchange round c.
  std::vector<std::vector<int>> partner(static_cast<std::size_t>(size));
  const auto free_at = [&partner](int v, std::size_t c) {
    const auto& p = partner[static_cast<std::size_t>(v)];
    return c >= p.size() || p[c] < 0;
  };
  for (const auto& [i, j] : edges_) {
    std::size_t c = 0;
    while (!free_at(i, c) || !free_at(j, c)) ++c;
    for (const auto& [v, u] : {Edge{i, j}, Edge{j, i}}) {
      auto& p = partner[static_cast<std::size_t>(v)];
      if (p.size() <= c) p.resize(c + 1, -1);
      p[c] = u;
    }
    rounds_ = std::max(rounds_, static_cast<int>(c) + 1);
  }
  for (auto& p : partner) p.resize(static_cast<std::size_t>(rounds_), -1);
  schedule_ = std::move(partner);
}

Topology Topology::parse(std::string_view text, int size, std::uint64_t seed) {
  Spec spec = Spec::parse(text);
  const std::string& name = spec.name();
  std::optional<Topology> result;
  if (name == "ring") {
    result = ring(size);
  } else if (name == "torus") {
    result = torus(size, static_cast<int>(spec.get_int("rows", 0)));
  } else if (name == "hypercube") {
    result = hypercube(size);
  } else if (name == "complete") {
    result = complete(size);
  } else if (name == "regular") {
    if (!spec.has("d")) throw InvalidArgument("topology regular: parameter 'd' is required");
    const std::int64_t d = spec.get_int("d", 0);
    if (d < 0 || d >= size) {
      throw InvalidArgument("topology regular: d must be in [0, " + std::to_string(size - 1) +
                            "], got " + std::to_string(d));
    }
    result = random_regular(size, static_cast<int>(d), spec.get_uint("seed", seed));
  } else if (name == "star") {
    result = star(size);
  } else {
    throw InvalidArgument("unknown topology '" + name +
                          "' (known: ring, torus, hypercube, complete, regular, star)");
  }
  spec.finish();
  return *std::move(result);
}

Topology Topology::ring(int size) {
  check_size(size, "topology ring");
  EdgeSet edges;
  for (int i = 0; i < size; ++i) edges.add(i, (i + 1) % size);
  return Topology(size, edges.take(), "ring");
}

Topology Topology::torus(int size, int rows) {
  check_size(size, "topology torus");
  if (rows == 0) {
    for (int r = 1; r * r <= size; ++r) {
      if (size % r == 0) rows = r;
    }
  }
  if (rows < 1 || size % rows != 0) {
    throw InvalidArgument("topology torus: rows must be a positive divisor of the world size " +
                          std::to_string(size) + ", got " + std::to_string(rows));
  }
  const int cols = size / rows;
  EdgeSet edges;
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j) {
      edges.add(i * cols + j, i * cols + (j + 1) % cols);
      edges.add(i * cols + j, ((i + 1) % rows) * cols + j);
    }
  }
  return Topology(size, edges.take(), "torus:rows=" + std::to_string(rows));
}

Topology Topology::hypercube(int size) {
  check_size(size, "topology hypercube");
  if (!std::has_single_bit(static_cast<unsigned>(size))) {
    throw InvalidArgument("topology hypercube: the world size must be a power of two, got " +
                          std::to_string(size));
  }
  EdgeSet edges;
  for (int i = 0; i < size; ++i) {
    for (int bit = 1; bit < size; bit <<= 1) edges.add(i, i ^ bit);
  }
  return Topology(size, edges.take(), "hypercube");
}

Topology Topology::complete(int size) {
  check_size(size, "topology complete");
  EdgeSet edges;
  for (int i = 0; i < size; ++i) {
    for (int j = i + 1; j < size; ++j) edges.add(i, j);
  }
  return Topology(size, edges.take(), "complete");
}

Topology Topology::random_regular(int size, int degree, std::uint64_t seed) {
  check_size(size, "topology regular");
  if (degree < 0 || degree >= size) {
    throw InvalidArgument("topology regular: d must be in [0, " + std::to_string(size - 1) +
                          "] for a world of " + std::to_string(size) + ", got " +
                          std::to_string(degree));
  }
  if ((static_cast<std::int64_t>(size) * degree) % 2 != 0) {
    throw InvalidArgument("topology regular: M·d must be even, got M = " + std::to_string(size) +
                          ", d = " + std::to_string(degree));
  }
  std::string spec = "regular:d=" + std::to_string(degree) + ",seed=" + std::to_string(seed);
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kTopology);
  for (int attempt = 0; attempt < kRegularRestarts; ++attempt) {
    if (auto edges = try_pairing(size, degree, key.derive(static_cast<std::uint64_t>(attempt)))) {
      return Topology(size, *std::move(edges), std::move(spec));
    }
  }
  // Circulant fallback: offsets 1..⌊d/2⌋ both ways (all distinct since ⌊d/2⌋ < M/2), and the
  // opposite rank for odd d (M is even then).
  EdgeSet edges;
  for (int i = 0; i < size; ++i) {
    for (int o = 1; o <= degree / 2; ++o) edges.add(i, (i + o) % size);
    if (degree % 2 == 1) edges.add(i, (i + size / 2) % size);
  }
  return Topology(size, edges.take(), std::move(spec));
}

Topology Topology::star(int size) {
  check_size(size, "topology star");
  EdgeSet edges;
  for (int i = 1; i < size; ++i) edges.add(0, i);
  return Topology(size, edges.take(), "star");
}

Topology Topology::from_edges(int size, std::vector<Edge> edges, std::string spec) {
  return Topology(size, std::move(edges), std::move(spec));
}

void Topology::check_rank(int rank) const {
  if (rank < 0 || rank >= size_) {
    throw InvalidArgument(spec_ + ": rank " + std::to_string(rank) + " is outside a world of " +
                          std::to_string(size_));
  }
}

std::span<const int> Topology::neighbors(int rank) const {
  check_rank(rank);
  return neighbors_[static_cast<std::size_t>(rank)];
}

int Topology::max_degree() const noexcept {
  std::size_t best = 0;
  for (const auto& list : neighbors_) best = std::max(best, list.size());
  return static_cast<int>(best);
}

bool Topology::connected() const { return is_connected(size_, neighbors_); }

std::span<const int> Topology::schedule(int rank) const {
  check_rank(rank);
  return schedule_[static_cast<std::size_t>(rank)];
}

MixingMatrix metropolis_hastings_weights(const Topology& topology) {
  const int m = topology.size();
  MixingMatrix w(m);
  for (const auto& [i, j] : topology.edges()) {
    const double weight = 1.0 / (1.0 + std::max(topology.degree(i), topology.degree(j)));
    w(i, j) = weight;
    w(j, i) = weight;
  }
  for (int i = 0; i < m; ++i) {
    double off = 0;
    for (int j : topology.neighbors(i)) off += w(i, j);
    w(i, i) = 1.0 - off;
  }
  return w;
}

double spectral_gap(const MixingMatrix& w) {
  const int m = w.size();
  if (m <= 1) return 1.0;
  Eigen::MatrixXd a(m, m);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j <= i; ++j) {
      a(i, j) = w(i, j);
      a(j, i) = w(i, j);
    }
  }
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(a, Eigen::EigenvaluesOnly);
  if (solver.info() != Eigen::Success) {
    throw InvalidArgument("spectral_gap: the eigenvalue solver did not converge");
  }
  const Eigen::VectorXd& ev = solver.eigenvalues();  // ascending; ev(m-1) = 1 for a mixing matrix
  const double second = std::max(std::abs(ev(m - 2)), std::abs(ev(0)));
  return std::clamp(1.0 - second, 0.0, 1.0);
}

}  // namespace thinwire::collective
