// Topologies: structure of each graph, spec parsing and its errors, Metropolis–Hastings weights
// (symmetric, doubly stochastic), spectral gaps against closed forms, the exchange schedule.
#include "thinwire/collective/topology.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <numbers>
#include <set>
#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire::collective {
namespace {

// Every topology spec that is valid for a world of m ranks.
std::vector<std::string> specs_for(int m) {
  std::vector<std::string> specs = {"ring", "torus", "complete", "star"};
  if (std::has_single_bit(static_cast<unsigned>(m))) specs.emplace_back("hypercube");
  if (m % 2 == 0 && m > 2) specs.emplace_back("torus:rows=2");
  if (m > 3 && m % 2 == 0) specs.emplace_back("regular:d=3");
  if (m > 2) specs.emplace_back("regular:d=2");
  if (m > 4) specs.emplace_back("regular:d=4,seed=9");
  return specs;
}

constexpr int kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 16};

TEST(TopologyTest, GraphsAreSimpleAndSymmetric) {
  for (const int m : kSizes) {
    for (const std::string& spec : specs_for(m)) {
      const Topology t = Topology::parse(spec, m, 1);
      ASSERT_EQ(t.size(), m);
      std::size_t degree_sum = 0;
      for (int i = 0; i < m; ++i) {
        const auto nb = t.neighbors(i);
        degree_sum += nb.size();
        EXPECT_TRUE(std::is_sorted(nb.begin(), nb.end())) << spec;
        EXPECT_EQ(std::set<int>(nb.begin(), nb.end()).size(), nb.size()) << spec;
        for (const int j : nb) {
          EXPECT_NE(i, j) << spec;
          const auto back = t.neighbors(j);
          EXPECT_TRUE(std::binary_search(back.begin(), back.end(), i)) << spec;
        }
      }
      EXPECT_EQ(degree_sum, 2 * t.edges().size()) << spec;
      EXPECT_TRUE(t.connected()) << spec << " M = " << m;
      // The canonical spec parses back to the same graph.
      EXPECT_EQ(Topology::parse(t.spec(), m).edges(), t.edges()) << spec;
    }
  }
}

TEST(TopologyTest, DegreesMatchTheDefinitions) {
  EXPECT_EQ(Topology::ring(7).degree(3), 2);
  EXPECT_EQ(Topology::ring(2).degree(0), 1);
  EXPECT_EQ(Topology::ring(1).degree(0), 0);
  EXPECT_EQ(Topology::complete(7).degree(6), 6);
  EXPECT_EQ(Topology::hypercube(16).degree(5), 4);
  EXPECT_EQ(Topology::star(6).degree(0), 5);
  EXPECT_EQ(Topology::star(6).degree(4), 1);
  EXPECT_EQ(Topology::torus(12).spec(), "torus:rows=3");  // 3×4, the near-square split
  EXPECT_EQ(Topology::torus(12).degree(0), 4);
  EXPECT_EQ(Topology::torus(8, 2).degree(0), 3);         // 2 rows: up and down are the same rank
  EXPECT_EQ(Topology::torus(7).spec(), "torus:rows=1");  // prime: the ring
  EXPECT_EQ(Topology::torus(7).edges(), Topology::ring(7).edges());
  for (const int m : {6, 8, 10, 20, 31}) {
    for (const int d : {2, 3, 4, 5}) {
      if ((m * d) % 2 != 0 || d >= m) continue;
      const Topology t = Topology::random_regular(m, d, 4);
      for (int i = 0; i < m; ++i) EXPECT_EQ(t.degree(i), d) << "M = " << m << " d = " << d;
      EXPECT_TRUE(t.connected());
    }
  }
}

TEST(TopologyTest, RandomRegularIsAFunctionOfTheSeed) {
  EXPECT_EQ(Topology::random_regular(20, 3, 5).edges(), Topology::random_regular(20, 3, 5).edges());
  EXPECT_NE(Topology::random_regular(20, 3, 5).edges(), Topology::random_regular(20, 3, 6).edges());
  EXPECT_EQ(Topology::parse("regular:d=3", 20, 5).edges(),
            Topology::parse("regular:d=3,seed=5", 20, 99).edges());
}

TEST(TopologyTest, SpecErrorsNameTheProblem) {
  const auto fails = [](const std::string& spec, int m, const std::string& needle) {
    try {
      (void)Topology::parse(spec, m);
      ADD_FAILURE() << spec << " parsed";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  fails("hypercube", 6, "power of two");
  fails("torus:rows=4", 6, "rows");
  fails("regular:d=3", 7, "even");
  fails("regular:d=7", 7, "d must be");
  fails("regular", 8, "'d'");
  fails("mesh", 4, "unknown topology");
  fails("ring:width=2", 4, "width");
  fails("ring", 0, "at least 1");
  EXPECT_THROW((void)Topology::from_edges(3, {{0, 0}}), InvalidArgument);
  EXPECT_THROW((void)Topology::from_edges(3, {{0, 1}, {1, 0}}), InvalidArgument);
  EXPECT_THROW((void)Topology::from_edges(3, {{0, 3}}), InvalidArgument);
  EXPECT_THROW((void)Topology::ring(3).neighbors(3), InvalidArgument);
}

TEST(MixingTest, MetropolisHastingsIsSymmetricAndDoublyStochastic) {
  for (const int m : kSizes) {
    for (const std::string& spec : specs_for(m)) {
      const Topology t = Topology::parse(spec, m, 2);
      const MixingMatrix w = metropolis_hastings_weights(t);
      for (int i = 0; i < m; ++i) {
        double row = 0;
        for (int j = 0; j < m; ++j) {
          EXPECT_EQ(w(i, j), w(j, i)) << spec;
          EXPECT_GE(w(i, j), 0.0) << spec;
          row += w(i, j);
          const auto nb = t.neighbors(i);
          if (i != j && !std::binary_search(nb.begin(), nb.end(), j)) {
            EXPECT_EQ(w(i, j), 0.0);
          }
        }
        EXPECT_NEAR(row, 1.0, 1e-12) << spec;  // columns too, by symmetry
        EXPECT_GE(w(i, i), 1.0 / (1 + t.degree(i)) - 1e-12) << spec;
      }
      const double gap = spectral_gap(w);
      EXPECT_GT(gap, 0.0) << spec << " M = " << m;  // connected
      EXPECT_LE(gap, 1.0) << spec;
    }
  }
}

TEST(MixingTest, SpectralGapsMatchClosedForms) {
  for (const int m : kSizes) {
    // Complete graph: W = J/M, eigenvalues 1 and 0.
    EXPECT_NEAR(spectral_gap(metropolis_hastings_weights(Topology::complete(m))), 1.0, 1e-9);
    // Ring: W = (I + A)/3, eigenvalues (1 + 2cos(2πk/M))/3.
    if (m >= 3) {
      double second = 0;
      for (int k = 1; k < m; ++k) {
        second = std::max(second, std::abs(1 + 2 * std::cos(2 * std::numbers::pi * k / m)) / 3);
      }
      EXPECT_NEAR(spectral_gap(metropolis_hastings_weights(Topology::ring(m))), 1 - second, 1e-9)
          << "M = " << m;
    }
    // Hypercube of dimension n: W = (I + A)/(n + 1), A's eigenvalues n − 2j: δ = 2/(n + 1).
    if (m >= 2 && std::has_single_bit(static_cast<unsigned>(m))) {
      const int n = std::countr_zero(static_cast<unsigned>(m));
      EXPECT_NEAR(spectral_gap(metropolis_hastings_weights(Topology::hypercube(m))), 2.0 / (n + 1),
                  1e-9);
    }
    // Star: eigenvalues 1, 1 − 1/M (M − 2 times, leaf vectors summing to zero) and 0 (trace).
    if (m >= 3) {
      EXPECT_NEAR(spectral_gap(metropolis_hastings_weights(Topology::star(m))), 1.0 / m, 1e-9);
    }
  }
  EXPECT_EQ(spectral_gap(metropolis_hastings_weights(Topology::ring(1))), 1.0);
  // Two components: λ_2 = 1.
  const Topology split = Topology::from_edges(4, {{0, 1}, {2, 3}});
  EXPECT_FALSE(split.connected());
  EXPECT_NEAR(spectral_gap(metropolis_hastings_weights(split)), 0.0, 1e-12);
}

TEST(ScheduleTest, RoundsArePerfectPairingsCoveringEveryEdgeOnce) {
  for (const int m : kSizes) {
    for (const std::string& spec : specs_for(m)) {
      const Topology t = Topology::parse(spec, m, 3);
      std::multiset<std::pair<int, int>> seen;
      for (int i = 0; i < m; ++i) {
        ASSERT_EQ(t.schedule(i).size(), static_cast<std::size_t>(t.schedule_rounds()));
        for (int c = 0; c < t.schedule_rounds(); ++c) {
          const int p = t.schedule(i)[static_cast<std::size_t>(c)];
          if (p < 0) continue;
          EXPECT_EQ(t.schedule(p)[static_cast<std::size_t>(c)], i) << spec;
          if (i < p) seen.insert({i, p});
        }
      }
      EXPECT_EQ(std::vector(seen.begin(), seen.end()), t.edges()) << spec;
      EXPECT_LE(t.schedule_rounds(), std::max(0, 2 * t.max_degree() - 1)) << spec;
    }
  }
}

}  // namespace
}  // namespace thinwire::collective
