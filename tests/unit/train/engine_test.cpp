// The engine end to end on small synthetic problems (each run takes milliseconds): every
// algorithm learns, runs are deterministic, a resumed run continues bit for bit, full-batch GD
// reaches a gradient norm below 1e-6, the uncompressed estimate matches what identity messages
// really cost, and non-finite gradients stop the run or are skipped.
#include "thinwire/train/engine.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "support/scratch_dir.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/train/metrics.hpp"

namespace thinwire::train {
namespace {

namespace fs = std::filesystem;

struct Variant {
  const char* name;
  AlgorithmKind algorithm;
  const char* sync;
  const char* codec;
  std::uint64_t local_steps;
  const char* tuner = "fixed";
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

// Every algorithm and synchronization the engine offers, with the codecs they are meant for.
const Variant kVariants[] = {
    {"sgd_allgather_qsgd", AlgorithmKind::kSgd, "allgather", "qsgd:s=4,bucket=16", 1},
    {"sgd_ring_qsgd_ef", AlgorithmKind::kSgd, "ring", "qsgd:s=4,bucket=16+ef", 1},
    {"sgd_ring_topk_ef", AlgorithmKind::kSgd, "ring", "topk:k=0.3+ef", 1},
    {"sgd_ps_qsgd", AlgorithmKind::kSgd, "ps", "qsgd:s=4,bucket=16+ef", 1},
    {"sgd_gossip", AlgorithmKind::kSgd, "gossip", "identity", 1},
    {"local_sgd_ring", AlgorithmKind::kLocalSgd, "ring", "identity", 4},
    {"local_sgd_gossip", AlgorithmKind::kLocalSgd, "gossip", "identity", 3},
    {"qlocal_sgd_allgather", AlgorithmKind::kQlocalSgd, "allgather", "qsgd:s=8,bucket=16+ef", 4},
    {"qlocal_sgd_gossip", AlgorithmKind::kQlocalSgd, "gossip", "qsgd:s=8,bucket=16", 2},
    {"choco", AlgorithmKind::kChoco, "gossip", "qsgd:s=8,bucket=16", 1},
    // Issue 6: the tuner picks the level per iteration (state checkpointed, runs deterministic).
    {"sgd_allgather_topk_ef_dynamic", AlgorithmKind::kSgd, "allgather", "topk:k=0.3+ef", 1,
     "dynamic"},
    {"sgd_allgather_qsgd_dynamic", AlgorithmKind::kSgd, "allgather", "qsgd:s=4,bucket=16", 1,
     "dynamic"},
    {"sgd_allgather_randk_schedule", AlgorithmKind::kSgd, "allgather", "randk:k=0.5", 1,
     "schedule:0=0.6,20=0.3"},
    // Issue 6 in every algorithm: each worker tunes what it sends (gradient, ring chunk, model
    // change, x − y); the variants cover every code path that hands a tuned codec on.
    {"sgd_ps_qsgd_ef_dynamic", AlgorithmKind::kSgd, "ps", "qsgd:s=4,bucket=16+ef", 1, "dynamic"},
    {"sgd_ps_topk_ef_dynamic", AlgorithmKind::kSgd, "ps", "topk:k=0.3+ef", 1, "dynamic"},
    {"sgd_ring_topk_ef_dynamic", AlgorithmKind::kSgd, "ring", "topk:k=0.3+ef", 1, "dynamic"},
    {"sgd_ring_qsgd_dynamic", AlgorithmKind::kSgd, "ring", "qsgd:s=4,bucket=16", 1, "dynamic"},
    {"local_sgd_ring_qsgd_dynamic", AlgorithmKind::kLocalSgd, "ring", "qsgd:s=16,bucket=16", 4,
     "dynamic"},
    {"qlocal_sgd_allgather_topk_ef_dynamic", AlgorithmKind::kQlocalSgd, "allgather",
     "topk:k=0.3+ef", 4, "dynamic"},
    {"qlocal_sgd_ring_qsgd_ef_dynamic", AlgorithmKind::kQlocalSgd, "ring", "qsgd:s=8,bucket=16+ef",
     4, "dynamic"},
    {"qlocal_sgd_gossip_qsgd_dynamic", AlgorithmKind::kQlocalSgd, "gossip", "qsgd:s=8,bucket=16", 2,
     "dynamic"},
    {"choco_topk_dynamic", AlgorithmKind::kChoco, "gossip", "topk:k=0.3", 1, "dynamic"},
    {"choco_qsgd_dynamic", AlgorithmKind::kChoco, "gossip", "qsgd:s=8,bucket=16", 1, "dynamic"},
};

TrainConfig small_config(const Variant& v) {
  TrainConfig c;
  c.problem = "softmax";
  c.data = "synthetic:n=320,d=8,task=softmax,classes=3,seed=3,test_fraction=0.25";
  c.workers = 4;
  c.algorithm = v.algorithm;
  c.sync = v.sync;
  c.codec = v.codec;
  c.local_steps = v.local_steps;
  c.tuner = v.tuner;
  c.topology = "ring";
  c.lr = 0.2;
  c.momentum = 0.5;
  c.batch_size = 16;
  c.iterations = 40;
  c.log_every = 5;
  c.seed = 11;
  return c;
}

TrainSummary run(const TrainConfig& config) {
  const TrainSetup setup = prepare(config, static_cast<int>(config.workers));
  return train_threads(setup);
}

// Records without the two fields that measure time.
std::vector<nlohmann::json> timeless(const fs::path& metrics) {
  std::vector<nlohmann::json> lines = read_metrics(metrics);
  for (nlohmann::json& line : lines) {
    line.erase("sim_s");
    line.erase("wall_s");
    line.erase("comm_s");
    if (line.contains("config")) line["config"].erase("metrics");
  }
  return lines;
}

class EngineVariants : public ::testing::TestWithParam<Variant> {};

TEST_P(EngineVariants, LearnsAndIsDeterministic) {
  const test::ScratchDir scratch;
  const fs::path dir = scratch.path();
  TrainConfig c = small_config(GetParam());
  c.metrics = (dir / "a.jsonl").string();
  const TrainSummary a = run(c);
  c.metrics = (dir / "b.jsonl").string();
  const TrainSummary b = run(c);

  // Softmax regression starts at zero weights, loss ln 3; a tenth less shows it is learning.
  ASSERT_TRUE(std::isfinite(a.final_loss));
  EXPECT_LT(a.final_loss, 0.9 * std::log(3.0));
  ASSERT_TRUE(a.test_accuracy.has_value());
  EXPECT_GT(*a.test_accuracy, 0.5);  // chance is 1/3
  EXPECT_EQ(a.iterations, 40u);
  EXPECT_GT(a.bits, 0u);

  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.bits, b.bits);
  EXPECT_EQ(timeless(dir / "a.jsonl"), timeless(dir / "b.jsonl"));
  // Under the default cost model (bits) the cost of a message is its size: Σ C(bits) = bits.
  EXPECT_EQ(a.cost, static_cast<double>(a.bits));
  for (const nlohmann::json& r : read_metrics(dir / "a.jsonl")) {
    if (r.contains("config")) continue;
    EXPECT_EQ(r["cost"].get<double>(), r["bits"].get<double>()) << r.dump();
  }
}

TEST_P(EngineVariants, ResumedRunIsBitIdentical) {
  const test::ScratchDir scratch;
  const fs::path dir = scratch.path();
  TrainConfig c = small_config(GetParam());
  c.metrics = (dir / "whole.jsonl").string();
  const TrainSummary whole = run(c);

  // The same run stopped after 20 iterations (its final checkpoint), then continued to 40.
  c.metrics = (dir / "parts.jsonl").string();
  c.checkpoint = (dir / "ckpt").string();
  c.checkpoint_every = 7;
  c.iterations = 20;
  (void)run(c);
  c.iterations = 40;
  c.resume = true;
  const TrainSummary resumed = run(c);

  EXPECT_EQ(resumed.resumed_from, 20u);
  EXPECT_EQ(resumed.model, whole.model);
  EXPECT_EQ(resumed.bits, whole.bits);
  EXPECT_EQ(resumed.cost, whole.cost);
  EXPECT_EQ(resumed.test_accuracy, whole.test_accuracy);
  // Records agree except at iteration 20, where the first part also evaluated (its last step).
  std::vector<nlohmann::json> a = timeless(dir / "whole.jsonl");
  std::vector<nlohmann::json> b = timeless(dir / "parts.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (a[i]["iter"] == 20) continue;
    EXPECT_EQ(a[i], b[i]) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Train, EngineVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Engine, IdentityEstimateEqualsIdentityTraffic) {
  // With the identity codec the "uncompressed estimate" must be exactly what was sent.
  for (const char* sync : {"allgather", "ring", "ps", "gossip"}) {
    for (std::uint64_t workers : {1, 3, 4}) {
      TrainConfig c = small_config({"", AlgorithmKind::kSgd, sync, "identity", 1});
      c.workers = workers;
      c.iterations = 3;
      c.topology = workers == 4 ? "hypercube" : "ring";
      const TrainSummary s = run(c);
      EXPECT_EQ(s.bits, s.bits_uncompressed) << sync << " M=" << workers;
      if (workers > 1) {
        EXPECT_GT(s.bits, 0u);
      }
    }
  }
}

// Full-batch GD with step 1/L on a strongly convex problem, shards of unequal size (n = 200 over
// 3 workers): the engine's weighted average is the full gradient, so GD converges linearly with
// rate 1 − μ/L. The floor is float rounding of the model, about L·2^-24·‖x‖ ≈ 1e-7 here.
double gd_gradient_norm(const std::string& problem, const std::string& task,
                        std::uint64_t iterations) {
  TrainConfig c;
  c.problem = problem;
  c.data = "synthetic:n=200,d=10,cond=4,noise=0.1,seed=5,task=" + task;
  c.workers = 3;
  c.algorithm = AlgorithmKind::kSgd;
  c.sync = "allgather";
  c.codec = "identity";
  c.batch_size = 0;
  c.momentum = 0;
  c.iterations = iterations;
  c.log_every = iterations;
  TrainSetup setup = prepare(c, 3);
  const data::Batch all = data::Batch::all(setup.train);
  const std::optional<double> l = setup.problem->smoothness(all);
  if (!l) throw Error("no smoothness constant");
  setup.config.lr = 1.0 / *l;
  const TrainSummary s = train_threads(setup);
  std::vector<double> x(s.model.begin(), s.model.end());
  std::vector<double> g(x.size());
  (void)setup.problem->loss_and_gradient(std::span<const double>(x), all, g);
  double norm = 0;
  for (double v : g) norm += v * v;
  norm = std::sqrt(norm);
  std::cout << problem << ": ||grad f|| = " << norm << " after " << iterations << " GD steps\n";
  return norm;
}

TEST(Engine, FullBatchGdOnLeastSquaresReachesTinyGradient) {
  EXPECT_LT(gd_gradient_norm("least-squares", "least-squares", 300), 1e-6);
}

TEST(Engine, FullBatchGdOnRegularizedLogisticReachesTinyGradient) {
  EXPECT_LT(gd_gradient_norm("logistic:lambda=0.1", "logistic", 400), 1e-6);
}

TrainConfig diverging() {
  TrainConfig c;
  c.problem = "least-squares";
  c.data = "synthetic:n=64,d=4,task=least-squares,seed=2";
  c.workers = 2;
  c.sync = "allgather";
  c.codec = "identity";
  c.batch_size = 8;
  c.momentum = 0;
  c.lr = 1e4;  // far beyond 2/L: the iterates grow by ~1e4 per step and overflow
  c.iterations = 60;
  return c;
}

TEST(Engine, NonFiniteGradientIsAnErrorByDefault) {
  try {
    (void)run(diverging());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
}

TEST(Engine, NonFiniteGradientIsSkippedOnRequest) {
  TrainConfig c = diverging();
  c.on_nonfinite = NonFinitePolicy::kSkip;
  const TrainSummary s = run(c);
  EXPECT_EQ(s.iterations, 60u);
  EXPECT_GT(s.skipped, 0u);
}

TEST(Engine, BadSettingsAreInvalidArguments) {
  TrainConfig c = small_config(kVariants[0]);
  c.problem = "nonsense";
  EXPECT_THROW((void)prepare(c, 4), InvalidArgument);
  c = small_config(kVariants[4]);
  c.topology = "hypercube";
  EXPECT_THROW((void)prepare(c, 3), InvalidArgument);  // 3 is not a power of two
  c = small_config(kVariants[0]);
  c.data = "synthetic:n=2,d=3";
  EXPECT_THROW((void)prepare(c, 4), InvalidArgument);  // fewer examples than workers
}

}  // namespace
}  // namespace thinwire::train

namespace thinwire::train {
namespace {

// Issue 6: every record carries the tuner's decision (θ, ρ, predicted bits, the codec used).
TEST(Engine, TunerDecisionsAreLogged) {
  const test::ScratchDir scratch;
  const fs::path dir = scratch.path();
  TrainConfig c = small_config({"t", AlgorithmKind::kSgd, "allgather", "topk:k=0.3+ef", 1});
  c.tuner = "dynamic";
  c.cost = "linear:latency=1ms,bandwidth=10Mbit";
  c.metrics = (dir / "m.jsonl").string();
  (void)run(c);
  const std::vector<nlohmann::json> lines = read_metrics(dir / "m.jsonl");
  ASSERT_GT(lines.size(), 1u);
  EXPECT_EQ(lines[0]["config"]["tuner"], "dynamic");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    ASSERT_TRUE(lines[i].contains("theta")) << lines[i].dump();
    EXPECT_GE(lines[i]["theta"].get<double>(), 1.0);
    EXPECT_LE(lines[i]["theta"].get<double>(), 24.0);  // d = 3 classes × 8 features, no bias
    EXPECT_GT(lines[i]["rho"].get<double>(), 0.0);
    EXPECT_LE(lines[i]["rho"].get<double>(), 1.0);
    EXPECT_GT(lines[i]["tuned_bits"].get<double>(), 0.0);
    EXPECT_TRUE(lines[i]["codec"].get<std::string>().starts_with("topk:k=")) << lines[i].dump();
  }
}

// Before its first secant a worker prices the first step of an unbiased codec with L̂ = 1/γ and no
// signal yet, so the rule sends the family's least noisy level: packed QSGD at s = 511, not the
// coarse level the classic ρ/P picks.
TEST(Engine, FirstDynamicStepOfAnUnbiasedCodecIsItsLeastNoisyLevel) {
  const test::ScratchDir scratch;
  TrainConfig c = small_config(
      {"t", AlgorithmKind::kSgd, "allgather", "qsgd:s=3,bucket=512,norm=max,coding=packed", 1});
  c.tuner = "dynamic";
  c.cost = "bits";
  c.iterations = 2;
  c.log_every = 1;
  c.metrics = (scratch.path() / "m.jsonl").string();
  (void)run(c);
  const std::vector<nlohmann::json> lines = read_metrics(scratch.path() / "m.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  // d = 24 is one bucket whatever the search's bucket; the classic rule took s = 7 here.
  EXPECT_TRUE(lines[1]["codec"].get<std::string>().starts_with("qsgd:s=511,")) << lines[1].dump();
}

TEST(Engine, TunerWhereACodecLevelExists) {
  // Exact gossip sends lossless models: nothing to tune.
  TrainConfig c = small_config({"t", AlgorithmKind::kSgd, "gossip", "identity", 1});
  c.tuner = "dynamic";
  EXPECT_THROW(resolve(c), InvalidArgument);
  c = small_config({"t", AlgorithmKind::kLocalSgd, "gossip", "identity", 3});
  c.tuner = "dynamic";
  EXPECT_THROW(resolve(c), InvalidArgument);
  // Every compressing algorithm tunes; lr coupling belongs to sgd's gradient step only.
  for (const Variant& v : kVariants) {
    if (std::string_view(v.tuner) != "dynamic") continue;
    c = small_config(v);
    EXPECT_NO_THROW(resolve(c)) << v.name;
    c.lr_coupling = true;
    if (v.algorithm == AlgorithmKind::kSgd) {
      EXPECT_NO_THROW(resolve(c)) << v.name;
    } else {
      EXPECT_THROW(resolve(c), InvalidArgument) << v.name;
    }
  }
  c = small_config({"t", AlgorithmKind::kSgd, "ring", "sign", 1});
  c.tuner = "dynamic";
  EXPECT_THROW(resolve(c), InvalidArgument);  // no level to tune
  c.codec = "topk:k=0.3";
  c.cost = "watts";
  EXPECT_THROW(resolve(c), InvalidArgument);
}

// The dynamic rule really moves the level during a run, in every algorithm, and training still
// converges. Top-k under a linear cost: ρ(k)/C(bits(k)) has its maximum where the marginal
// energy of the next element no longer pays for its bits, which moves as the gradient (or change)
// concentrates, so over 40 iterations rank 0 logs more than one k.
TEST(Engine, DynamicLevelsVaryInEveryAlgorithm) {
  const Variant variants[] = {
      {"ps", AlgorithmKind::kSgd, "ps", "topk:k=0.3+ef", 1, "dynamic"},
      {"ring", AlgorithmKind::kSgd, "ring", "topk:k=0.3+ef", 1, "dynamic"},
      {"allgather", AlgorithmKind::kSgd, "allgather", "topk:k=0.3+ef", 1, "dynamic"},
      {"local", AlgorithmKind::kLocalSgd, "allgather", "topk:k=0.5+ef", 2, "dynamic"},
      {"qlocal", AlgorithmKind::kQlocalSgd, "allgather", "topk:k=0.3+ef", 2, "dynamic"},
      {"qlocal_gossip", AlgorithmKind::kQlocalSgd, "gossip", "topk:k=0.3", 2, "dynamic"},
      {"choco", AlgorithmKind::kChoco, "gossip", "topk:k=0.3", 1, "dynamic"},
  };
  const test::ScratchDir scratch;
  for (const Variant& v : variants) {
    const fs::path dir = scratch.path() / v.name;
    fs::create_directories(dir);
    TrainConfig c = small_config(v);
    c.cost = "linear:latency=20us,bandwidth=10Mbit";
    c.log_every = 1;
    c.metrics = (dir / "m.jsonl").string();
    const TrainSummary s = run(c);
    EXPECT_LT(s.final_loss, 0.9 * std::log(3.0)) << v.name;
    std::set<double> thetas;
    for (const nlohmann::json& r : read_metrics(dir / "m.jsonl")) {
      if (r.contains("theta")) thetas.insert(r["theta"].get<double>());
    }
    EXPECT_GE(thetas.size(), 2u) << v.name << ": the level never changed";
  }
}

// `cost` in closed form: with the identity codec every message has the same size
// b = 8·(32 + 4d) bits, an all-gather sends M−1 per rank and iteration and the parameter server
// M−1 uplinks and M−1 model broadcasts, so cost = (messages)·C(b) for every cost model, under
// --tuner fixed too.
TEST(Engine, CostIsTheSumOfPerMessageCosts) {
  const std::uint64_t d = 24;  // 3 classes × 8 features
  const std::uint64_t b = 8 * (32 + 4 * d);
  const std::uint64_t iterations = 6;
  struct Model {
    const char* spec;
    double per_message;  // C(b)
  };
  const std::uint64_t packets = (b + 63) / 64;  // P = 8 bytes = 64 bits
  const Model models[] = {
      {"bits", static_cast<double>(b)},
      {"packet:payload=8B,per_packet=2,per_message=3", 3.0 + 2.0 * static_cast<double>(packets)},
      {"linear:latency=1ms,bandwidth=1Mbit", 1e-3 + static_cast<double>(b) / 1e6},
  };
  for (const char* sync : {"allgather", "ps"}) {
    for (const Model& m : models) {
      TrainConfig c = small_config({"", AlgorithmKind::kSgd, sync, "identity", 1});
      c.iterations = iterations;
      c.cost = m.spec;
      const TrainSummary s = run(c);
      const std::uint64_t messages = std::string_view(sync) == "ps"
                                         ? iterations * 2 * (c.workers - 1)
                                         : iterations * c.workers * (c.workers - 1);
      EXPECT_EQ(s.bits, messages * b) << sync << " " << m.spec;
      // Each rank adds its C(b) one message at a time, then the ranks' totals are summed: the
      // float rounding of those sums is a few ulps of the total.
      EXPECT_NEAR(s.cost, static_cast<double>(messages) * m.per_message, 1e-12 * s.cost)
          << sync << " " << m.spec;
    }
  }
}

// --report-costs prices every message under further models: each reported total is the `cost` a
// run with that model as --cost logs, bit for bit (a fixed codec: the same messages, priced in the
// same order, whatever --cost is).
TEST(Engine, ReportedCostsEqualTheCostOfRunsUnderEachModel) {
  const test::ScratchDir scratch;
  const fs::path dir = scratch.path();
  TrainConfig c = small_config({"", AlgorithmKind::kSgd, "ps", "topk:k=0.3+ef", 1});
  c.iterations = 8;
  c.cost = "bits";
  c.report_costs = "linear:latency=1ms,bandwidth=1Mbit;packet:payload=8B";
  c.metrics = (dir / "m.jsonl").string();
  (void)run(c);
  const nlohmann::json last = read_metrics(dir / "m.jsonl").back();
  ASSERT_TRUE(last.contains("costs"));
  ASSERT_EQ(last["costs"].size(), 2u);
  for (const auto& [spec, total] : last["costs"].items()) {
    TrainConfig other = c;
    other.report_costs.clear();
    other.metrics.clear();
    other.cost = spec;
    EXPECT_EQ(run(other).cost, total.get<double>()) << spec;
  }
}

}  // namespace
}  // namespace thinwire::train
