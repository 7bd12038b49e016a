// pricing.hpp against what the collectives really send: iteration_cost under a cost model that is
// linear in the message count and bits (bits, linear) equals Σ C over the messages a counting
// transport saw on every rank, for messages of different sizes on different ranks; and the
// uncompressed estimates' seconds equal the simulated clock of the identity collectives.
#include "thinwire/collective/pricing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "collective_test_support.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/gossip.hpp"
#include "thinwire/collective/parameter_server.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/comm/counting.hpp"
#include "thinwire/comm/threads.hpp"

namespace thinwire::collective {
namespace {

constexpr std::size_t kD = 300;
constexpr int kRanks = 4;

// Rank r's vector and its codec: top-k keeps a rank-dependent number of elements, so the message
// sizes differ between ranks (top-k is deterministic: the size does not depend on the context).
std::vector<float> vector_of(int rank) { return testing::gaussian(17, rank, kD); }
std::unique_ptr<codec::Codec> codec_of(int rank) {
  return codec::make_codec("topk:k=" + std::to_string(5 + 40 * rank));
}

std::vector<std::uint64_t> message_bytes() {
  std::vector<std::uint64_t> bytes;
  for (int r = 0; r < kRanks; ++r) bytes.push_back(codec_of(r)->encode(vector_of(r)).size());
  return bytes;
}

struct Sent {
  std::array<comm::TrafficStats, kRanks> stats{};
  // Σ C over every message under the linear model: α per message plus bits/β.
  [[nodiscard]] double cost(double alpha, double bits_per_second) const {
    double total = 0;
    for (const auto& s : stats) {
      total += alpha * static_cast<double>(s.messages_sent) +
               8.0 * static_cast<double>(s.bytes_sent) / bits_per_second;
    }
    return total;
  }
};

template <typename Body>
Sent run_counted(const Body& body) {
  Sent sent;
  comm::ThreadsWorldOptions options;
  options.size = kRanks;
  comm::run_threads_world(options, [&](comm::Transport& inner) {
    comm::CountingTransport counted(inner);
    body(counted);
    sent.stats[static_cast<std::size_t>(inner.rank())] = counted.stats();
  });
  return sent;
}

TEST(PricingTest, AllgatherIterationCostIsWhatTheRanksSend) {
  const Sent sent = run_counted([](comm::Transport& t) {
    std::vector<float> v = vector_of(t.rank());
    (void)allreduce(t, v, *codec_of(t.rank()), {.algorithm = AllreduceAlgorithm::kAllgather});
  });
  const auto shape = allreduce_shape(AllreduceAlgorithm::kAllgather, kRanks);
  const auto bits = tune::make_cost_model("bits");
  EXPECT_DOUBLE_EQ(iteration_cost(shape, message_bytes(), *bits), sent.cost(0.0, 1.0));
  const auto linear = tune::make_cost_model("linear:latency=50us,bandwidth=1Gbit");
  EXPECT_NEAR(iteration_cost(shape, message_bytes(), *linear), sent.cost(50e-6, 1e9), 1e-15);
}

TEST(PricingTest, ParameterServerIterationCostCountsTheDownlink) {
  const auto identity = codec::make_codec("identity");
  const Sent sent = run_counted([&](comm::Transport& t) {
    std::vector<float> g = vector_of(t.rank());
    (void)ps_gather_average(t, g, *codec_of(t.rank()), {});
    std::vector<float> model(kD, 0.5f);
    PsDownlinkState state;
    (void)ps_broadcast_model(t, model, *identity, state, {});
  });
  const IterationShape shape{.pattern = Pattern::kParameterServer,
                             .size = kRanks,
                             .downlink_bytes = identity->max_encoded_bytes(kD)};
  const auto bits = tune::make_cost_model("bits");
  EXPECT_DOUBLE_EQ(iteration_cost(shape, message_bytes(), *bits), sent.cost(0.0, 1.0));
  const auto linear = tune::make_cost_model("linear:latency=50us,bandwidth=1Gbit");
  EXPECT_NEAR(iteration_cost(shape, message_bytes(), *linear), sent.cost(50e-6, 1e9), 1e-15);
  // The server's own message is never sent: its level is free, its share of the downlink not.
  const RankPrice server = rank_price(shape, kServerRank, *bits);
  EXPECT_EQ(server.copies, 0.0);
  EXPECT_DOUBLE_EQ(server.fixed,
                   (kRanks - 1) * 8.0 * static_cast<double>(shape.downlink_bytes) / kRanks);
}

TEST(PricingTest, RingSendsEachRanksChunkTwiceAroundTheRing) {
  const auto bits = tune::make_cost_model("bits");
  const RankPrice p = rank_price(allreduce_shape(AllreduceAlgorithm::kRing, kRanks), 2, *bits);
  EXPECT_EQ(p.copies, 2.0 * (kRanks - 1));
  EXPECT_EQ(p.fixed, 0.0);
  // With the identity codec every chunk has its size on every hop, so the estimate is exact.
  const auto identity = codec::make_codec("identity");
  const Sent sent = run_counted([&](comm::Transport& t) {
    std::vector<float> v = vector_of(t.rank());
    (void)allreduce(t, v, *identity, {.algorithm = AllreduceAlgorithm::kRing});
  });
  std::vector<std::uint64_t> chunks;
  for (int r = 0; r < kRanks; ++r) {
    chunks.push_back(uncompressed_message_bytes(balanced_chunk(kD, kRanks, r).size));
  }
  EXPECT_DOUBLE_EQ(
      iteration_cost(allreduce_shape(AllreduceAlgorithm::kRing, kRanks), chunks, *bits),
      sent.cost(0.0, 1.0));
}

TEST(PricingTest, UncompressedEstimatesMatchTheIdentityCollectives) {
  const auto identity = codec::make_codec("identity");
  const comm::LinkModel link = comm::LinkModel::parse("bandwidth=1Gbit,latency=50us");
  for (const auto algorithm : {AllreduceAlgorithm::kAllgather, AllreduceAlgorithm::kRing}) {
    const Sent sent = run_counted([&](comm::Transport& t) {
      std::vector<float> v = vector_of(t.rank());
      (void)allreduce(t, v, *identity, {.algorithm = algorithm});
    });
    for (int r = 0; r < kRanks; ++r) {
      EXPECT_EQ(uncompressed_allreduce(algorithm, kD, r, kRanks, link).bytes,
                sent.stats[static_cast<std::size_t>(r)].bytes_sent)
          << "rank " << r;
    }
  }
  EXPECT_EQ(uncompressed_parameter_server(kD, 1, kRanks, link).bytes,
            identity->max_encoded_bytes(kD));
  EXPECT_EQ(uncompressed_parameter_server(kD, kServerRank, kRanks, link).bytes,
            (kRanks - 1) * identity->max_encoded_bytes(kD));
}

TEST(PricingTest, GossipSendsEachRanksMessageToEachNeighbour) {
  // A star: the centre has M − 1 neighbours, the leaves one, so the copies differ by rank too.
  const Topology star = Topology::star(kRanks);
  const MixingMatrix weights = metropolis_hastings_weights(star);
  std::array<std::uint64_t, kRanks> sizes{};
  const Sent sent = run_counted([&](comm::Transport& t) {
    std::vector<float> x = vector_of(t.rank());
    ChocoState state;
    const auto codec = codec_of(t.rank());
    sizes[static_cast<std::size_t>(t.rank())] = codec->encode(x).size();  // x − y = x at first
    (void)choco_gossip(t, x, star, weights, *codec, state);
  });
  const auto bits = tune::make_cost_model("bits");
  const auto linear = tune::make_cost_model("linear:latency=50us,bandwidth=1Gbit");
  double bits_total = 0.0;
  double linear_total = 0.0;
  for (int r = 0; r < kRanks; ++r) {
    const IterationShape shape{
        .pattern = Pattern::kGossip, .size = kRanks, .degree = star.degree(r)};
    const auto bytes = sizes[static_cast<std::size_t>(r)];
    const RankPrice pb = rank_price(shape, r, *bits);
    bits_total += pb.copies * bits->cost(8 * bytes) + pb.fixed;
    const RankPrice pl = rank_price(shape, r, *linear);
    linear_total += pl.copies * linear->cost(8 * bytes) + pl.fixed;
  }
  EXPECT_DOUBLE_EQ(bits_total, sent.cost(0.0, 1.0));
  EXPECT_NEAR(linear_total, sent.cost(50e-6, 1e9), 1e-15);
}

TEST(PricingTest, SharedRandkIsARingOverTheSampledValues) {
  constexpr std::size_t kK = 37;
  const auto randk = codec::make_codec("randk:k=" + std::to_string(kK) + ",shared_seed=5");
  const Sent sent = run_counted([&](comm::Transport& t) {
    std::vector<float> v = vector_of(t.rank());
    (void)allreduce(t, v, *randk, {.algorithm = AllreduceAlgorithm::kSharedRandk});
  });
  // The ring's chunks of the k values, each an identity message.
  std::vector<std::uint64_t> chunks;
  for (int r = 0; r < kRanks; ++r) {
    chunks.push_back(uncompressed_message_bytes(balanced_chunk(kK, kRanks, r).size));
  }
  const auto shape = allreduce_shape(AllreduceAlgorithm::kSharedRandk, kRanks);
  const auto bits = tune::make_cost_model("bits");
  EXPECT_DOUBLE_EQ(iteration_cost(shape, chunks, *bits), sent.cost(0.0, 1.0));
  const auto linear = tune::make_cost_model("linear:latency=50us,bandwidth=1Gbit");
  EXPECT_NEAR(iteration_cost(shape, chunks, *linear), sent.cost(50e-6, 1e9), 1e-15);
}

// The uncompressed estimates' seconds are the critical path the simulated clock measures: the
// latest rank's clock advances by them in the identity collective (compute time left out), and no
// rank's by more.
TEST(PricingTest, UncompressedSecondsAreTheSimulatedClock) {
  constexpr std::size_t kLong = 100003;  // chunks of different lengths, messages of many packets
  const comm::LinkModel link = comm::LinkModel::parse("bandwidth=100Mbit,latency=50us");
  const auto identity = codec::make_codec("identity");
  comm::ThreadsWorldOptions options;
  options.size = kRanks;
  options.link = link;
  options.count_compute = false;
  const auto expect_clock = [&](const char* what, const auto& body, const auto& expected) {
    std::array<double, kRanks> elapsed{};
    comm::run_threads_world(options, [&](comm::Transport& t) {
      const double start = t.clock_seconds();
      body(t);
      elapsed[static_cast<std::size_t>(t.rank())] = t.clock_seconds() - start;
    });
    double latest = 0.0;
    for (int r = 0; r < kRanks; ++r) {
      latest = std::max(latest, elapsed[static_cast<std::size_t>(r)]);
      EXPECT_EQ(expected(r), expected(0)) << what << ": the estimate is the iteration's";
    }
    EXPECT_NEAR(latest, expected(0), 1e-9 * expected(0)) << what;
  };
  for (const auto algorithm : {AllreduceAlgorithm::kAllgather, AllreduceAlgorithm::kRing}) {
    expect_clock(
        algorithm == AllreduceAlgorithm::kRing ? "ring" : "allgather",
        [&](comm::Transport& t) {
          std::vector<float> v(kLong, static_cast<float>(t.rank()));
          (void)allreduce(t, v, *identity, {.algorithm = algorithm});
        },
        [&](int rank) {
          return uncompressed_allreduce(algorithm, kLong, rank, kRanks, link).seconds;
        });
  }
  expect_clock(
      "parameter server",
      [&](comm::Transport& t) {
        std::vector<float> g(kLong, 1.0f);
        (void)ps_gather_average(t, g, *identity, {});
        std::vector<float> model(kLong, 0.5f);
        PsDownlinkState state;
        (void)ps_broadcast_model(t, model, *identity, state, {});
      },
      [&](int rank) { return uncompressed_parameter_server(kLong, rank, kRanks, link).seconds; });
  const Topology ring = Topology::ring(kRanks);
  const MixingMatrix weights = metropolis_hastings_weights(ring);
  expect_clock(
      "gossip",
      [&](comm::Transport& t) {
        std::vector<float> x(kLong, static_cast<float>(t.rank()));
        (void)gossip_average(t, x, ring, weights);
      },
      [&](int rank) {
        return uncompressed_gossip(kLong, ring.degree(rank), ring.schedule_rounds(), link).seconds;
      });
}

}  // namespace
}  // namespace thinwire::collective
