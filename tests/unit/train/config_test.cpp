// TrainConfig: field parsing, resolution of the algorithm-dependent defaults and the invalid
// combinations, and the JSON / TOML round trips the metrics and --config rely on.
#include "thinwire/train/config.hpp"

#include <gtest/gtest.h>

#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire::train {
namespace {

std::string error_of(TrainConfig c) {
  try {
    resolve(c);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, DefaultsResolveToTheReadmeRun) {
  TrainConfig c;
  resolve(c);
  EXPECT_EQ(c.algorithm, AlgorithmKind::kSgd);
  EXPECT_EQ(c.sync, "ring");
  EXPECT_EQ(c.codec, kDefaultCompressingCodec);
  EXPECT_EQ(c.data, "fashion-mnist");
  EXPECT_EQ(c.workers, 4u);
  TrainConfig again = c;
  resolve(again);  // idempotent
  EXPECT_EQ(again, c);
}

TEST(TrainConfig, AlgorithmDefaults) {
  TrainConfig local;
  local.algorithm = AlgorithmKind::kLocalSgd;
  resolve(local);
  EXPECT_EQ(local.codec, "identity");
  TrainConfig choco;
  choco.algorithm = AlgorithmKind::kChoco;
  resolve(choco);
  EXPECT_EQ(choco.sync, "gossip");
  TrainConfig dpsgd;
  dpsgd.sync = "gossip:torus";
  resolve(dpsgd);
  EXPECT_EQ(dpsgd.sync, "gossip");
  EXPECT_EQ(dpsgd.topology, "torus");
  EXPECT_EQ(dpsgd.codec, "identity");
}

TEST(TrainConfig, InvalidCombinationsNameTheFlag) {
  TrainConfig c;
  c.local_steps = 4;
  EXPECT_NE(error_of(c).find("--local-steps"), std::string::npos);
  c = {};
  c.algorithm = AlgorithmKind::kChoco;
  c.sync = "ring";
  EXPECT_NE(error_of(c).find("--sync"), std::string::npos);
  c = {};
  c.sync = "gossip";
  c.codec = "qsgd";
  EXPECT_NE(error_of(c).find("choco"), std::string::npos);
  c = {};
  c.algorithm = AlgorithmKind::kChoco;
  c.codec = "qsgd+ef";
  EXPECT_NE(error_of(c).find("+ef"), std::string::npos);
  c = {};
  c.codec = "nope";
  EXPECT_NE(error_of(c).find("--codec: unknown codec 'nope'"), std::string::npos);
  c = {};
  c.sync = "mesh";
  EXPECT_NE(error_of(c).find("--sync"), std::string::npos);
  c = {};
  c.resume = true;
  EXPECT_NE(error_of(c).find("--resume"), std::string::npos);
  c = {};
  c.lr = 0;
  EXPECT_NE(error_of(c).find("--lr"), std::string::npos);
  c = {};
  c.algorithm = AlgorithmKind::kLocalSgd;
  c.sync = "ps";
  EXPECT_NE(error_of(c).find("--sync"), std::string::npos);
  // Tuning (issue 6): exact gossip has no level, a codec without a level is the codec's fault,
  // and lr coupling belongs to sgd's gradient step.
  c = {};
  c.sync = "gossip";
  c.tuner = "dynamic";
  EXPECT_NE(error_of(c).find("--tuner"), std::string::npos);
  c = {};
  c.tuner = "dynamic";
  c.codec = "identity";
  EXPECT_NE(error_of(c).find("--codec"), std::string::npos);
  c = {};
  c.algorithm = AlgorithmKind::kQlocalSgd;
  c.tuner = "dynamic";
  c.lr_coupling = true;
  EXPECT_NE(error_of(c).find("--lr-coupling"), std::string::npos);
  c.lr_coupling = false;
  EXPECT_EQ(error_of(c), "");
  // Coupling needs the dynamic rule's ρ(θ_t): with a fixed or scheduled level it would be ignored.
  for (const char* tuner : {"fixed", "schedule:0=2"}) {
    c = {};
    c.codec = "qsgd:s=4";
    c.tuner = tuner;
    c.lr_coupling = true;
    EXPECT_NE(error_of(c).find("--lr-coupling"), std::string::npos) << tuner;
  }
}

TEST(TrainConfig, SetFieldParsesEveryType) {
  TrainConfig c;
  set_config_field(c, "lr", "0.25");
  set_config_field(c, "local_steps", "8");  // '_' works like '-'
  set_config_field(c, "--algorithm", "qlocal-sgd");
  set_config_field(c, "resume", "true");
  set_config_field(c, "on-nonfinite", "skip");
  set_config_field(c, "codec", "topk:k=0.01+ef");
  EXPECT_EQ(c.lr, 0.25);
  EXPECT_EQ(c.local_steps, 8u);
  EXPECT_EQ(c.algorithm, AlgorithmKind::kQlocalSgd);
  EXPECT_TRUE(c.resume);
  EXPECT_EQ(c.on_nonfinite, NonFinitePolicy::kSkip);
  EXPECT_EQ(c.codec, "topk:k=0.01+ef");
  EXPECT_THROW(set_config_field(c, "learning-rate", "1"), InvalidArgument);
  EXPECT_THROW(set_config_field(c, "lr", "fast"), InvalidArgument);
  EXPECT_THROW(set_config_field(c, "workers", "-2"), InvalidArgument);
  EXPECT_THROW(set_config_field(c, "algorithm", "adam"), InvalidArgument);
  EXPECT_THROW(set_config_field(c, "resume", "maybe"), InvalidArgument);
}

TEST(TrainConfig, EveryFieldIsListedOnce) {
  const TrainConfig c;
  const nlohmann::json j = to_json(c);
  EXPECT_EQ(j.size(), config_fields().size());
  for (const ConfigField& f : config_fields()) EXPECT_TRUE(j.contains(std::string(f.name)));
}

TrainConfig unusual() {
  TrainConfig c;
  c.problem = "mlp:hidden=3x2";
  c.data = "synthetic:n=100,d=5";
  c.algorithm = AlgorithmKind::kChoco;
  c.codec = "qsgd:s=2";
  c.lr = 0.1 + 1e-17;  // needs all 17 digits
  c.gossip_lr = 1.0 / 3.0;
  c.batch_size = 0;
  c.seed = 123456789012345ULL;
  c.nesterov = true;
  c.metrics = "out \"quoted\".jsonl";
  c.on_nonfinite = NonFinitePolicy::kSkip;
  return c;
}

TEST(TrainConfig, JsonRoundTrip) {
  const TrainConfig c = unusual();
  EXPECT_EQ(config_from_json(to_json(c)), c);
  EXPECT_THROW((void)config_from_json(nlohmann::json{{"bogus", 1}}), InvalidArgument);
}

TEST(TrainConfig, TomlRoundTrip) {
  const TrainConfig c = unusual();
  TrainConfig back;
  apply_toml(back, to_toml(c), "round.toml");
  EXPECT_EQ(back, c);
}

TEST(TrainConfig, TomlSetsOnlyWhatItNames) {
  TrainConfig c;
  apply_toml(c, "lr = 0.5\nlocal_steps = 4\nalgorithm = \"local-sgd\"\nepochs = 2\n", "run.toml");
  EXPECT_EQ(c.lr, 0.5);
  EXPECT_EQ(c.local_steps, 4u);
  EXPECT_EQ(c.algorithm, AlgorithmKind::kLocalSgd);
  EXPECT_EQ(c.epochs, 2.0);  // an integer is fine for a float field
  EXPECT_EQ(c.momentum, TrainConfig{}.momentum);
}

TEST(TrainConfig, TomlErrorsCarryFileAndLine) {
  auto message = [](const std::string& text) {
    TrainConfig c;
    try {
      apply_toml(c, text, "run.toml");
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("lr = 0.1\nbogus = 1\n").find("run.toml:2:"), std::string::npos);
  EXPECT_NE(message("lr = 0.1\nbogus = 1\n").find("unknown key 'bogus'"), std::string::npos);
  EXPECT_NE(message("workers = \"four\"\n").find("run.toml:1:"), std::string::npos);
  EXPECT_NE(message("workers = -1\n").find("run.toml:1:"), std::string::npos);
  EXPECT_NE(message("lr = = 2\n").find("run.toml:1:"), std::string::npos);
  EXPECT_NE(message("[section]\nlr = 1\n").find("run.toml:"), std::string::npos);
}

}  // namespace
}  // namespace thinwire::train
