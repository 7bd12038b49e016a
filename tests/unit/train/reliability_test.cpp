// Issue 22 in the library: counts that would overflow are refused when parsed, a TOML key of
// 100,000 parts is an error rather than a stack overflow, ranks that resolved different settings
// refuse to train together, and --on-nonfinite skip never ends with a non-finite model under any
// algorithm.
#include <gtest/gtest.h>

#include <cmath>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "thinwire/comm/threads.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/engine.hpp"

namespace thinwire::train {
namespace {

std::string error_of(const auto& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Reliability, CountsAreBoundedWhenParsed) {
  TrainConfig c;
  const std::string e = error_of([&] { set_config_field(c, "batch-size", "9223372036854775807"); });
  EXPECT_NE(e.find("--batch-size: must be in [0, 2^40]"), std::string::npos) << e;
  EXPECT_NO_THROW(set_config_field(c, "batch-size", "1099511627776"));
  EXPECT_NO_THROW(set_config_field(c, "seed", "9223372036854775807"));
  EXPECT_THROW(set_config_field(c, "iterations", "1099511627777"), InvalidArgument);
  EXPECT_THROW(set_config_field(c, "seed", "-1"), InvalidArgument);
}

TEST(Reliability, HugeBatchIsOneStepPerEpoch) {
  TrainConfig c;
  c.problem = "logistic";
  c.data = "synthetic:n=64,d=4";
  c.batch_size = std::uint64_t{1} << 40;
  c.iterations = 2;
  const TrainSetup setup = prepare(c, 4);
  EXPECT_EQ(setup.steps_per_epoch, 1u);
  EXPECT_EQ(train_threads(setup).iterations, 2u);
}

TEST(Reliability, DeepDottedKeyIsAnError) {
  std::string text = "a";
  for (int i = 0; i < 100000; ++i) text += ".a";
  text += " = 1\n";
  TrainConfig c;
  const std::string e = error_of([&] { apply_toml(c, text, "deep.toml"); });
  EXPECT_NE(e.find("deep.toml:1: nested too deeply"), std::string::npos) << e;
  // Dots inside strings and comments do not count.
  EXPECT_NO_THROW(apply_toml(
      c, "data = \"" + std::string(200, '.') + "\" # " + std::string(200, '.') + "\n", "ok.toml"));
}

// Two thread "ranks" whose setups differ in one setting, as MPI ranks started with different
// flags would: rank 0 names the setting and the rank.
TEST(Reliability, RanksWithDifferentSettingsRefuseToTrain) {
  TrainConfig c;
  c.problem = "logistic";
  c.data = "synthetic:n=64,d=4";
  c.iterations = 3;
  c.batch_size = 8;
  const TrainSetup a = prepare(c, 2);
  c.lr = a.config.lr * 2;
  const TrainSetup b = prepare(c, 2);
  comm::ThreadsWorld data({.size = 2, .link = std::nullopt});
  comm::ThreadsWorld control({.size = 2, .link = std::nullopt, .count_compute = false});
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      errors[static_cast<std::size_t>(r)] = error_of([&] {
        try {
          (void)run_worker(r == 0 ? a : b, data.transport(r), control.transport(r), nullptr);
        } catch (const std::exception& e) {
          data.fail(r, e.what());
          control.fail(r, e.what());
          throw;
        }
      });
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_NE(errors[0].find("--lr is 0.05 on rank 0 but 0.1"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("on rank 1"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1], "(no error)");
}

struct Algo {
  const char* name;
  AlgorithmKind algorithm;
  const char* sync;
  const char* codec;
  std::uint64_t local_steps;
};

class SkipKeepsModelFinite : public ::testing::TestWithParam<Algo> {};

// A step size of 1e30 on least squares overflows within a few steps; with skip every such step is
// rolled back, so the run ends with the finite model it had before.
TEST_P(SkipKeepsModelFinite, UnderEveryAlgorithm) {
  const Algo& v = GetParam();
  TrainConfig c;
  c.problem = "least-squares";
  c.data = "synthetic:n=64,d=4,task=least-squares,seed=2";
  c.algorithm = v.algorithm;
  c.sync = v.sync;
  c.codec = v.codec;
  c.local_steps = v.local_steps;
  c.lr = 1e30;
  c.batch_size = 8;
  c.iterations = 12;
  c.on_nonfinite = NonFinitePolicy::kSkip;
  const TrainSummary s = train_threads(prepare(c, 2));
  ASSERT_FALSE(s.model.empty());
  for (float x : s.model) ASSERT_TRUE(std::isfinite(x)) << v.name;
  EXPECT_GT(s.skipped, 0u);
  c.on_nonfinite = NonFinitePolicy::kError;
  const std::string e = error_of([&] { (void)train_threads(prepare(c, 2)); });
  EXPECT_NE(e.find("iteration"), std::string::npos) << e;
  EXPECT_NE(e.find("rank"), std::string::npos) << e;
}

const Algo kAlgos[] = {
    {"sgd_ring", AlgorithmKind::kSgd, "ring", "identity", 1},
    {"sgd_allgather_qsgd", AlgorithmKind::kSgd, "allgather", "qsgd:s=4", 1},
    {"sgd_ps", AlgorithmKind::kSgd, "ps", "qsgd:s=4", 1},
    {"sgd_ef", AlgorithmKind::kSgd, "ring", "topk:k=0.5+ef", 1},
    {"local_sgd", AlgorithmKind::kLocalSgd, "ring", "", 2},
    {"qlocal_sgd", AlgorithmKind::kQlocalSgd, "ring", "qsgd:s=4", 2},
    {"choco", AlgorithmKind::kChoco, "gossip", "qsgd:s=4", 1},
};

INSTANTIATE_TEST_SUITE_P(Train, SkipKeepsModelFinite, ::testing::ValuesIn(kAlgos),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace thinwire::train
