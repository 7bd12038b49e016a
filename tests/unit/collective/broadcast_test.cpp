// Broadcast and the parameter-server building blocks: closed forms with identity over the sweep,
// one encoding for lossy codecs, traffic counts, the downlink replica, argument errors.
#include "thinwire/collective/broadcast.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <memory>
#include <string>
#include <tuple>

#include "collective_test_support.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/parameter_server.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective {
namespace {

using testing::expect_same_on_all_ranks;
using testing::gather_all;
using testing::gaussian;
using testing::ramp;

using SweepParam = std::tuple<int, std::size_t>;
class BroadcastSweepTest : public ::testing::TestWithParam<SweepParam> {};

TEST_P(BroadcastSweepTest, EveryRootReachesEveryRankExactly) {
  const auto [m, d] = GetParam();
  const codec::IdentityCodec identity;
  for (int root = 0; root < m; ++root) {
    test::run_world(m, [&, m = m, d = d](comm::Transport& t) {
      std::vector<float> x = ramp(t.rank(), d);
      const Result result = broadcast(t, x, identity, {.root = root});
      EXPECT_EQ(x, ramp(root, d)) << "rank " << t.rank() << " root " << root;
      // A binomial tree: at most ⌈log2 M⌉ sends per rank, M − 1 in all.
      EXPECT_LE(result.messages_sent,
                static_cast<std::uint64_t>(std::bit_width(static_cast<unsigned>(m - 1))));
      EXPECT_EQ(result.bytes_sent, result.messages_sent * (codec::kHeaderBytes + 4 * d));
      std::vector<float> count = {static_cast<float>(result.messages_sent)};
      double total = 0;
      for (const auto& c : gather_all(t, count)) total += c[0];
      EXPECT_EQ(total, m - 1);
    });
  }
}

TEST_P(BroadcastSweepTest, LossyCodecsDeliverTheRootsOneEncoding) {
  const auto [m, d] = GetParam();
  const auto codec = codec::make_codec("qsgd:s=4");
  const int root = m - 1;
  test::run_world(m, [&, d = d](comm::Transport& t) {
    std::vector<float> x = gaussian(3, t.rank(), d);
    std::vector<float> expected(d);
    codec::decode(
        codec->encode(gaussian(3, root, d),
                      {.seed = 5, .rank = static_cast<std::uint32_t>(root), .iteration = 1}),
        expected, codec::DecodeMode::kOverwrite);
    (void)broadcast(t, x, *codec, {.root = root, .seed = 5, .iteration = 1});
    EXPECT_EQ(x, expected);
    expect_same_on_all_ranks(t, x);
  });
}

TEST_P(BroadcastSweepTest, PsGatherAveragesOnTheServer) {
  const auto [m, d] = GetParam();
  const codec::IdentityCodec identity;
  for (const bool server_is_worker : {true, false}) {
    if (!server_is_worker && m == 1) continue;
    test::run_world(m, [&, m = m, d = d](comm::Transport& t) {
      std::vector<float> g = ramp(t.rank(), d);
      const Result result =
          ps_gather_average(t, g, identity, {.server_is_worker = server_is_worker});
      if (t.rank() != kServerRank) {
        EXPECT_EQ(g, ramp(t.rank(), d));  // workers keep their gradient
        EXPECT_EQ(result.messages_sent, 1u);
        EXPECT_EQ(result.bytes_sent, codec::kHeaderBytes + 4 * d);
        return;
      }
      EXPECT_EQ(result.messages_sent, 0u);
      const int first = server_is_worker ? 0 : 1;
      const int workers = m - first;
      for (std::size_t i = 0; i < d; ++i) {
        float sum = 0;
        for (int r = first; r < m; ++r) sum += static_cast<float>(r) + static_cast<float>(i);
        const float want = sum / static_cast<float>(workers);
        if (g[i] != want) {  // no ASSERT inside a world: see support/world.hpp
          ADD_FAILURE() << "element " << i << ": " << g[i] << " != " << want;
          break;
        }
      }
    });
  }
}

TEST_P(BroadcastSweepTest, PsGatherEqualsTheAllgatherBitForBit) {
  const auto [m, d] = GetParam();
  const auto codec = codec::make_codec("qsgd:s=4,bucket=8");
  test::run_world(m, [&, d = d](comm::Transport& t) {
    std::vector<float> ps = gaussian(4, t.rank(), d);
    std::vector<float> all = ps;
    (void)ps_gather_average(t, ps, *codec, {.seed = 3, .iteration = 8});
    (void)allreduce_allgather(t, all, *codec, {.seed = 3, .iteration = 8});
    if (t.rank() == kServerRank) {
      EXPECT_EQ(ps, all);
    }
  });
}

TEST_P(BroadcastSweepTest, PsModelDownlinkKeepsIdenticalReplicas) {
  const auto [m, d] = GetParam();
  for (const char* spec : {"identity", "topk:k=0.2", "qsgd:s=8"}) {
    const auto downlink = codec::make_codec(spec);
    test::run_world(m, [&, d = d](comm::Transport& t) {
      PsDownlinkState state;
      // The server's model moves every round; workers' inputs are junk that must be replaced.
      std::vector<float> model =
          t.rank() == kServerRank ? gaussian(6, 0, d) : std::vector<float>(d, -1.0f);
      for (int round = 0; round < 5; ++round) {
        if (t.rank() == kServerRank && round > 0) {
          const std::vector<float> step = gaussian(7 + static_cast<std::uint64_t>(round), 0, d);
          for (std::size_t i = 0; i < d; ++i) model[i] -= 0.1f * step[i];
        }
        const std::vector<float> server_model = model;
        const Result result = ps_broadcast_model(t, model, *downlink, state,
                                                 {.iteration = static_cast<std::uint64_t>(round)});
        EXPECT_EQ(state.rounds, static_cast<std::uint64_t>(round) + 1);
        expect_same_on_all_ranks(t, state.replica);
        if (t.rank() == kServerRank) {
          EXPECT_EQ(model, server_model);  // the server's model is read only
          EXPECT_EQ(result.messages_sent, static_cast<std::uint64_t>(t.size() - 1));
          // The first round and a lossless codec deliver the model exactly.
          if (round == 0 || std::string(spec) == "identity") {
            EXPECT_EQ(state.replica, model);
          }
        } else {
          EXPECT_EQ(model, state.replica);
          EXPECT_EQ(result.messages_sent, 0u);
        }
      }
    });
  }
}

std::string sweep_name(const ::testing::TestParamInfo<SweepParam>& info) {
  return "M" + std::to_string(std::get<0>(info.param)) + "_d" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sweep, BroadcastSweepTest,
                         ::testing::Combine(::testing::ValuesIn(testing::kWorldSizes),
                                            ::testing::ValuesIn(testing::kLengths)),
                         sweep_name);

// With the model held still, a top-k downlink's residual model − replica contracts by the factor
// √(1 − k/d) per round (parameter_server.hpp), so the replica converges to the model.
TEST(PsDownlinkTest, CompressedDeltasConvergeToAStillModel) {
  const auto topk = codec::make_codec("topk:k=0.25");
  constexpr std::size_t d = 40;
  test::run_world(3, [&](comm::Transport& t) {
    PsDownlinkState state;
    const std::vector<float> target = gaussian(9, 0, d);
    std::vector<float> model = target;
    (void)ps_broadcast_model(t, model, *codec::make_codec("identity"), state);
    // Move the server's model once, then keep it still.
    if (t.rank() == kServerRank) {
      for (std::size_t i = 0; i < d; ++i) model[i] = 2 * target[i];
    }
    double previous = 1e30;
    for (int round = 0; round < 30; ++round) {
      (void)ps_broadcast_model(t, model, *topk, state);
      if (t.rank() != kServerRank) continue;
      double residual = 0;
      for (std::size_t i = 0; i < d; ++i) {
        residual += (model[i] - state.replica[i]) * (model[i] - state.replica[i]);
      }
      residual = std::sqrt(residual);
      EXPECT_LE(residual, previous * std::sqrt(0.75) + 1e-6) << "round " << round;
      previous = residual;
    }
    if (t.rank() == kServerRank) {
      EXPECT_LT(previous, 1e-3 * testing::norm(target));
    }
  });
}

TEST(PsGatherTest, UplinkErrorFeedbackTelescopes) {
  const std::shared_ptr<const codec::Codec> topk = codec::make_codec("topk:k=0.1");
  constexpr std::size_t d = 30;
  constexpr int rounds = 10;
  test::run_world(4, [&](comm::Transport& t) {
    codec::ErrorFeedback ef(topk, d);
    const std::vector<float> g0 = gaussian(10, t.rank(), d);
    std::vector<double> total(d, 0.0);
    for (int round = 0; round < rounds; ++round) {
      std::vector<float> g = g0;
      (void)ps_gather_average(t, g, *topk, {.error_feedback = &ef});
      for (std::size_t i = 0; i < d; ++i) total[i] += g[i];
    }
    const auto residuals = gather_all(t, ef.residual());
    const auto inputs = gather_all(t, g0);
    if (t.rank() != kServerRank) return;
    for (std::size_t i = 0; i < d; ++i) {
      double e = 0;
      double mean = 0;
      for (int r = 0; r < 4; ++r) {
        e += residuals[static_cast<std::size_t>(r)][i];
        mean += inputs[static_cast<std::size_t>(r)][i];
      }
      EXPECT_NEAR(total[i] + e / 4, rounds * mean / 4, 1e-4 * rounds);
    }
  });
}

TEST(BroadcastTest, ArgumentErrors) {
  if (test::kMpiWorld) GTEST_SKIP() << "a failing rank aborts an MPI job";
  const codec::IdentityCodec identity;
  test::run_world(1, [&](comm::Transport& t) {
    std::vector<float> x(3, 1.0f);
    EXPECT_THROW((void)broadcast(t, x, identity, {.root = 1}), InvalidArgument);
    EXPECT_THROW((void)broadcast(t, x, identity, {.root = -1}), InvalidArgument);
    EXPECT_THROW((void)ps_gather_average(t, x, identity, {.server_is_worker = false}),
                 InvalidArgument);
    PsDownlinkState state;
    (void)ps_broadcast_model(t, x, identity, state);
    std::vector<float> longer(4, 1.0f);
    EXPECT_THROW((void)ps_broadcast_model(t, longer, identity, state), InvalidArgument);
  });
}

}  // namespace
}  // namespace thinwire::collective
