// Gossip: exact rounds against W·X and the spectral-gap contraction, CHOCO-gossip's conservation
// of the average and convergence to it with a lossy codec.
#include "thinwire/collective/gossip.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <string>

#include "collective_test_support.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective {
namespace {

using testing::gather_all;
using testing::gaussian;

std::vector<std::string> specs_for(int m) {
  std::vector<std::string> specs = {"ring", "torus", "complete", "star"};
  if (std::has_single_bit(static_cast<unsigned>(m))) specs.emplace_back("hypercube");
  if (m > 2) specs.emplace_back("regular:d=2");
  return specs;
}

// ‖X − X̄‖_F over all ranks and the average vector x̄, from every rank's x.
struct Spread {
  double disagreement = 0;
  std::vector<double> average;
};

Spread spread(const std::vector<std::vector<float>>& xs) {
  Spread s;
  const std::size_t d = xs.empty() ? 0 : xs[0].size();
  s.average.assign(d, 0.0);
  for (const auto& x : xs) {
    for (std::size_t i = 0; i < d; ++i) s.average[i] += x[i];
  }
  for (double& a : s.average) a /= static_cast<double>(xs.size());
  for (const auto& x : xs) {
    for (std::size_t i = 0; i < d; ++i) {
      s.disagreement += (x[i] - s.average[i]) * (x[i] - s.average[i]);
    }
  }
  s.disagreement = std::sqrt(s.disagreement);
  return s;
}

class GossipSweepTest : public ::testing::TestWithParam<int> {};

// One round equals Σ_j W_ij x_j (computed here in double from everyone's x), the average is kept
// and the disagreement contracts by (1 − δ) per round; slack: float rounding, 1e-5 relative.
TEST_P(GossipSweepTest, ExactRoundsContractByTheSpectralGap) {
  const int m = GetParam();
  for (const std::size_t d : testing::kLengths) {
    for (const std::string& spec : specs_for(m)) {
      const Topology topology = Topology::parse(spec, m, 1);
      const MixingMatrix w = metropolis_hastings_weights(topology);
      const double gap = spectral_gap(w);
      test::run_world(m, [&](comm::Transport& t) {
        std::vector<float> x = gaussian(40, t.rank(), d);
        const Spread start = spread(gather_all(t, x));
        const auto before = gather_all(t, x);
        const Result result = gossip_average(t, x, topology, w);
        EXPECT_EQ(result.messages_sent, static_cast<std::uint64_t>(topology.degree(t.rank())));
        for (std::size_t i = 0; i < d; ++i) {
          double want = 0;
          for (int j = 0; j < m; ++j)
            want += w(t.rank(), j) * before[static_cast<std::size_t>(j)][i];
          EXPECT_NEAR(x[i], want, 1e-6 * (1 + std::abs(want))) << spec;
        }
        for (int round = 1; round < 12; ++round) (void)gossip_average(t, x, topology, w);
        const Spread end = spread(gather_all(t, x));
        EXPECT_LE(end.disagreement,
                  std::pow(1 - gap, 12) * start.disagreement + 1e-5 * (1 + start.disagreement))
            << spec << " M = " << m << " d = " << d;
        for (std::size_t i = 0; i < d; ++i) {
          EXPECT_NEAR(end.average[i], start.average[i], 1e-5) << spec;
        }
      });
    }
  }
}

// CHOCO with qsgd: the average is kept (up to float rounding) and every rank converges to it.
// γ = 0.4 is well inside the range that works for s = 16 (the theorem's γ is far smaller);
// 150 rounds shrink the disagreement by at least 100× on these graphs.
TEST_P(GossipSweepTest, ChocoWithQsgdReachesConsensusOnTheAverage) {
  const int m = GetParam();
  const auto qsgd = codec::make_codec("qsgd:s=16");
  constexpr std::size_t d = 64;
  for (const std::string& spec : {std::string("ring"), std::string("complete")}) {
    const Topology topology = Topology::parse(spec, m);
    const MixingMatrix w = metropolis_hastings_weights(topology);
    test::run_world(m, [&](comm::Transport& t) {
      std::vector<float> x = gaussian(41, t.rank(), d);
      const Spread start = spread(gather_all(t, x));
      ChocoState state;
      for (int round = 0; round < 150; ++round) {
        const Result result = choco_gossip(
            t, x, topology, w, *qsgd, state,
            {.consensus_step = 0.4, .seed = 2, .iteration = static_cast<std::uint64_t>(round)});
        EXPECT_EQ(result.messages_sent, static_cast<std::uint64_t>(topology.degree(t.rank())));
      }
      const Spread end = spread(gather_all(t, x));
      EXPECT_LE(end.disagreement, 1e-2 * start.disagreement + 1e-6) << spec << " M = " << m;
      for (std::size_t i = 0; i < d; ++i) {
        EXPECT_NEAR(end.average[i], start.average[i], 1e-4) << spec << " element " << i;
      }
      // Public copies agree across ranks: each rank's own copy equals what its neighbours hold.
      const auto own = gather_all(t, state.own_public);
      const auto nb = topology.neighbors(t.rank());
      for (std::size_t k = 0; k < nb.size(); ++k) {
        EXPECT_EQ(state.neighbor_public[k], own[static_cast<std::size_t>(nb[k])]);
      }
    });
  }
}

std::string size_name(const ::testing::TestParamInfo<int>& info) {
  return "M" + std::to_string(info.param);
}

INSTANTIATE_TEST_SUITE_P(Sweep, GossipSweepTest, ::testing::ValuesIn(testing::kWorldSizes),
                         size_name);

TEST(ChocoTest, LosslessWithUnitStepIsOneGossipRound) {
  const codec::IdentityCodec identity;
  const Topology topology = Topology::torus(6);
  const MixingMatrix w = metropolis_hastings_weights(topology);
  test::run_world(6, [&](comm::Transport& t) {
    std::vector<float> choco = gaussian(42, t.rank(), 33);
    std::vector<float> plain = choco;
    ChocoState state;
    (void)choco_gossip(t, choco, topology, w, identity, state);
    (void)gossip_average(t, plain, topology, w);
    for (std::size_t i = 0; i < plain.size(); ++i) EXPECT_NEAR(choco[i], plain[i], 1e-6);
    EXPECT_EQ(state.own_public, gaussian(42, t.rank(), 33));  // y = 0 + (x − 0)
  });
}

TEST(ChocoTest, StateForAnotherShapeIsRejected) {
  if (test::kMpiWorld) GTEST_SKIP() << "a failing rank aborts an MPI job";
  const codec::IdentityCodec identity;
  const Topology ring = Topology::ring(1);
  const MixingMatrix w = metropolis_hastings_weights(ring);
  test::run_world(1, [&](comm::Transport& t) {
    ChocoState state;
    std::vector<float> x(5, 1.0f);
    (void)choco_gossip(t, x, ring, w, identity, state);
    std::vector<float> longer(6, 1.0f);
    EXPECT_THROW((void)choco_gossip(t, longer, ring, w, identity, state), InvalidArgument);
    EXPECT_THROW((void)choco_gossip(t, x, ring, w, identity, state, {.consensus_step = 0.0}),
                 InvalidArgument);
    EXPECT_THROW((void)gossip_average(t, x, Topology::ring(2), w), InvalidArgument);
  });
}

}  // namespace
}  // namespace thinwire::collective
