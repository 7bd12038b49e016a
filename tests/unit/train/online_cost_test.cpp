// `--cost auto` on the threads backend (issue 19): the estimate comes from the simulated link, so
// it equals the link model exactly and a run is deterministic (same bits, losses and levels on a
// rerun) and resumes bit for bit; the price the rule forms in seconds equals the simulated
// clock's time of the iteration's collective.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/pricing.hpp"
#include "thinwire/comm/threads.hpp"
#include "thinwire/train/engine.hpp"
#include "thinwire/train/metrics.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/online_link.hpp"

// Private to the train library (src/train); the test target adds that directory.
#include "link_timer.hpp"
#include "support/scratch_dir.hpp"

namespace thinwire::train {
namespace {

namespace fs = std::filesystem;

constexpr double kLatency = 1e-3;
constexpr double kBandwidth = 10e6;

TrainConfig auto_config(const std::string& sync, const std::string& codec) {
  TrainConfig c;
  c.problem = "logistic:lambda=1e-3";
  c.data = "synthetic:n=400,d=256,seed=5";
  c.workers = 4;
  c.algorithm = AlgorithmKind::kSgd;
  c.sync = sync;
  c.codec = codec;
  c.tuner = "dynamic";
  c.cost = "auto:window=16";
  c.link = "bandwidth=10Mbit,latency=1ms";
  c.lr = 0.5;
  c.batch_size = 0;
  c.iterations = 30;
  c.log_every = 1;
  c.seed = 3;
  return c;
}

TrainSummary run(const TrainConfig& config) {
  return train_threads(prepare(config, static_cast<int>(config.workers)));
}

// Records without what the host's clock measures (the simulated clock counts measured compute).
std::vector<nlohmann::json> timeless(const fs::path& metrics) {
  std::vector<nlohmann::json> lines = read_metrics(metrics);
  for (nlohmann::json& line : lines) {
    for (const char* key : {"sim_s", "wall_s", "comm_s", "iter_s"}) line.erase(key);
    if (line.contains("config")) line["config"].erase("metrics");
  }
  return lines;
}

class AutoCostThreads : public ::testing::TestWithParam<const char*> {};

TEST_P(AutoCostThreads, IsDeterministicAndEstimatesTheSimulatedLink) {
  const test::ScratchDir scratch;
  const fs::path dir = scratch.path();
  TrainConfig c = auto_config(GetParam(), "topk:k=0.3");
  c.metrics = (dir / "a.jsonl").string();
  const TrainSummary a = run(c);
  c.metrics = (dir / "b.jsonl").string();
  const TrainSummary b = run(c);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.bits, b.bits);
  EXPECT_EQ(a.cost, b.cost);
  const std::vector<nlohmann::json> ra = timeless(dir / "a.jsonl");
  EXPECT_EQ(ra, timeless(dir / "b.jsonl"));

  // The samples are the simulated link's times: the fit is the link, α exactly, β once two
  // distinct message sizes were seen (the dynamic level varies them). The parameter server's
  // rank 0, whose metrics these are, only sends the model message, always of one size.
  const nlohmann::json& last = ra.back();
  EXPECT_GT(last["pred_iter_s"].get<double>(), 0.0);
  EXPECT_EQ(last["compute_est_s"].get<double>(), 0.0);  // threads: never the host's clock
  std::set<double> levels;
  for (std::size_t i = 1; i < ra.size(); ++i) levels.insert(ra[i]["theta"].get<double>());
  EXPECT_GT(levels.size(), 1u);
  if (std::string(GetParam()) != "ps") {
    EXPECT_NEAR(last["link_latency_s"].get<double>(), kLatency, 1e-12);
    EXPECT_NEAR(last["link_bandwidth_bps"].get<double>(), kBandwidth, kBandwidth * 1e-9);
  }
}

TEST_P(AutoCostThreads, ResumedRunIsBitIdentical) {
  const test::ScratchDir scratch;
  const fs::path dir = scratch.path();
  TrainConfig c = auto_config(GetParam(), "topk:k=0.3+ef");
  c.metrics = (dir / "whole.jsonl").string();
  const TrainSummary whole = run(c);
  c.metrics = (dir / "parts.jsonl").string();
  c.checkpoint = (dir / "ckpt").string();
  c.iterations = 13;
  (void)run(c);
  c.iterations = 30;
  c.resume = true;
  const TrainSummary resumed = run(c);
  EXPECT_EQ(resumed.model, whole.model);
  EXPECT_EQ(resumed.bits, whole.bits);
  EXPECT_EQ(resumed.cost, whole.cost);
  const std::vector<nlohmann::json> a = timeless(dir / "whole.jsonl");
  const std::vector<nlohmann::json> b = timeless(dir / "parts.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 1; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Train, AutoCostThreads, ::testing::Values("allgather", "ring", "ps"));

// The rule's price under a time cost (collective::rank_seconds with C the link's α + b/β) is the
// time the simulated clock gives the collective when every rank sends a message of one size.
TEST(AutoCostPrice, EqualsTheSimulatedClockOfTheCollective) {
  const comm::LinkModel link = comm::LinkModel::parse("bandwidth=10Mbit,latency=1ms");
  const tune::LinearCost seconds(link.latency_s, link.bandwidth_bits_per_s);
  const auto codec = codec::make_codec("identity");
  for (const auto algorithm :
       {collective::AllreduceAlgorithm::kAllgather, collective::AllreduceAlgorithm::kRing}) {
    for (const int m : {2, 3, 4}) {
      const std::size_t d = 3600;  // divisible by every m: ring chunks of one size
      std::vector<double> clock(static_cast<std::size_t>(m));
      comm::run_threads_world({.size = m, .link = link, .count_compute = false},
                              [&](comm::Transport& t) {
                                std::vector<float> v(d, static_cast<float>(t.rank() + 1));
                                (void)collective::allreduce(t, v, *codec, {.algorithm = algorithm});
                                clock[static_cast<std::size_t>(t.rank())] = t.clock_seconds();
                              });
      const collective::IterationShape shape = collective::allreduce_shape(algorithm, m);
      const collective::RankPrice price = collective::rank_seconds(shape, 0, seconds);
      const std::size_t n = algorithm == collective::AllreduceAlgorithm::kRing ? d / m : d;
      const double bits = 8.0 * static_cast<double>(codec->max_encoded_bytes(n));
      const double predicted =
          price.copies * seconds.cost(static_cast<std::uint64_t>(bits)) + price.fixed;
      for (const double c : clock) EXPECT_NEAR(c, predicted, 1e-12) << m;
    }
  }
}

TEST(AutoCostPrice, ParameterServerWaitsForEveryDownlink) {
  const tune::LinearCost seconds(1e-3, 1e7);
  const collective::IterationShape shape{
      .pattern = collective::Pattern::kParameterServer, .size = 4, .downlink_bytes = 1000};
  const collective::RankPrice worker = collective::rank_seconds(shape, 1, seconds);
  EXPECT_EQ(worker.copies, 1.0);
  EXPECT_DOUBLE_EQ(worker.fixed, 3.0 * seconds.cost(8000));
  EXPECT_EQ(collective::rank_seconds(shape, 0, seconds).copies, 0.0);
  // Under a cost that is summed over ranks the same downlink is shared.
  EXPECT_DOUBLE_EQ(collective::rank_price(shape, 1, seconds).fixed, 3.0 * seconds.cost(8000) / 4);
}

}  // namespace
}  // namespace thinwire::train

namespace thinwire::train {
namespace {

// Measured mode (MPI's): every exchange after the first of a step is a sample (bits received,
// seconds); the first one, which absorbs the slowest rank's compute, only reports its duration
// and size for the fixed time. Run here over an in-process world without a link model (wall
// time), which is all LinkTimer sees of MPI.
TEST(LinkTimer, MeasuredModeSamplesEveryExchangeButTheFirstOfAStep) {
  std::vector<std::size_t> samples(2);
  std::vector<double> first_bits(2);
  comm::run_threads_world({.size = 2}, [&](comm::Transport& t) {
    tune::OnlineLink link({.window = 16});
    LinkTimer timer(t);
    timer.set_estimator(&link, std::nullopt);
    const int peer = 1 - t.rank();
    for (int step = 0; step < 2; ++step) {
      timer.begin_step();
      for (std::size_t bytes : {100, 200, 300}) {
        const std::vector<std::byte> out(bytes + static_cast<std::size_t>(t.rank()));
        (void)timer.exchange(peer, out, peer);
      }
    }
    samples[static_cast<std::size_t>(t.rank())] = link.samples();
    first_bits[static_cast<std::size_t>(t.rank())] = timer.first_call_bits();
    EXPECT_GE(timer.blocked_seconds(), timer.first_call_seconds());
  });
  EXPECT_EQ(samples, (std::vector<std::size_t>{4, 4}));  // 2 steps × (3 − 1) exchanges
  EXPECT_EQ(first_bits[0], 8.0 * 101);                   // what rank 1 sent first
  EXPECT_EQ(first_bits[1], 8.0 * 100);
}

// Simulated mode (threads): every message sent is a sample of the link model's time, the first
// included; the host's clock plays no part.
TEST(LinkTimer, SimulatedModeSamplesEveryMessageSentAtTheLinkModelsTime) {
  const comm::LinkModel model = comm::LinkModel::parse("bandwidth=10Mbit,latency=1ms");
  comm::run_threads_world({.size = 2, .link = model, .count_compute = false},
                          [&](comm::Transport& t) {
                            tune::OnlineLink link({.window = 16, .min_spread = 0.0});
                            LinkTimer timer(t);
                            timer.set_estimator(&link, model);
                            timer.begin_step();
                            const int peer = 1 - t.rank();
                            for (std::size_t bytes : {1000, 3000, 9000}) {
                              const std::vector<std::byte> out(bytes);
                              (void)timer.exchange(peer, out, peer);
                            }
                            EXPECT_EQ(link.samples(), 3u);
                            link.refit();
                            EXPECT_NEAR(link.latency_s(), 1e-3, 1e-12);
                            EXPECT_NEAR(link.bandwidth_bits_per_s(), 1e7, 1e-2);
                          });
}

}  // namespace
}  // namespace thinwire::train
