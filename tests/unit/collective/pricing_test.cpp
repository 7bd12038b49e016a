// pricing.hpp against what the collectives really send: iteration_cost under a cost model that is
// linear in the message count and bits (bits, linear) equals Σ C over the messages a counting
// transport saw on every rank, for messages of different sizes on different ranks.
#include "thinwire/collective/pricing.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "collective_test_support.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/parameter_server.hpp"
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

}  // namespace
}  // namespace thinwire::collective
