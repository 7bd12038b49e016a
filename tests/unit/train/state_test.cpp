// State files, metrics files and checkpoint manifests: round trips, and that every kind of damage
// is an IoError naming the file rather than a crash or silently wrong state.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "support/scratch_dir.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/train/checkpoint.hpp"
#include "thinwire/train/metrics.hpp"
#include "thinwire/train/state_file.hpp"

namespace thinwire::train {
namespace {

namespace fs = std::filesystem;

using TempDir = test::ScratchDir;

StateBundle sample_bundle() {
  StateBundle b;
  b.put_floats("model", std::vector<float>{1.5f, -0.0f, std::numeric_limits<float>::infinity()});
  b.put_floats("empty", {});
  b.put_u64("iteration", 1234567890123ULL);
  b.put_f64("clock", 0.1 + 0.2);
  b.put_string("config", "{\"lr\":0.1}");
  b.put_bytes("tuner", {});
  return b;
}

TEST(StateBundle, RoundTripIsExact) {
  const StateBundle b = StateBundle::parse(sample_bundle().serialize(), "mem");
  const std::vector<float> model = b.get_floats("model");
  ASSERT_EQ(model.size(), 3u);
  EXPECT_EQ(model[0], 1.5f);
  EXPECT_TRUE(std::signbit(model[1]));
  EXPECT_TRUE(std::isinf(model[2]));
  EXPECT_TRUE(b.get_floats("empty").empty());
  EXPECT_EQ(b.get_u64("iteration"), 1234567890123ULL);
  EXPECT_EQ(b.get_f64("clock"), 0.1 + 0.2);
  EXPECT_EQ(b.get_string("config"), "{\"lr\":0.1}");
  EXPECT_TRUE(b.get_bytes("tuner").empty());
  EXPECT_THROW((void)b.get_u64("missing"), IoError);
  EXPECT_THROW((void)b.get_u64("model"), IoError);  // wrong kind
}

TEST(StateBundle, EveryTruncationAndBitFlipIsRejected) {
  const std::vector<std::byte> good = sample_bundle().serialize();
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW((void)StateBundle::parse(std::span(good).first(n), "cut"), IoError) << n;
  }
  for (std::size_t i = 0; i < good.size(); i += 3) {
    std::vector<std::byte> bad = good;
    bad[i] ^= std::byte{0x10};
    EXPECT_THROW((void)StateBundle::parse(bad, "flip"), IoError) << i;
  }
}

TEST(StateBundle, AtomicWriteReplacesAndLeavesNoTemporary) {
  TempDir dir;
  const fs::path file = dir.path() / "state.twck";
  sample_bundle().write(file);
  StateBundle other;
  other.put_u64("iteration", 7);
  other.write(file);
  EXPECT_EQ(StateBundle::read(file).get_u64("iteration"), 7u);
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
  EXPECT_THROW((void)StateBundle::read(dir.path() / "missing"), IoError);
}

TEST(MetricsLog, ResumeKeepsRecordsUpToTheCheckpoint) {
  TempDir dir;
  const fs::path file = dir.path() / "m.jsonl";
  const nlohmann::json config{{"lr", 0.1}};
  {
    MetricsLog log = MetricsLog::create(file, config);
    for (int i = 10; i <= 50; i += 10) log.write({{"iter", i}, {"loss", 1.0 / i}});
  }
  {
    std::ofstream torn(file, std::ios::app);
    torn << "{\"iter\": 60, \"lo";  // a write cut short by SIGKILL
  }
  EXPECT_THROW((void)read_metrics(file), IoError);
  {
    MetricsLog log = MetricsLog::resume(file, config, 30);
    log.write({{"iter", 40}, {"loss", 0.5}});
  }
  const std::vector<nlohmann::json> lines = read_metrics(file);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0]["config"], config);
  EXPECT_EQ(lines[3]["iter"], 30);
  EXPECT_EQ(lines[4]["loss"], 0.5);
}

TEST(MetricsLog, MalformedLineNamesFileAndLine) {
  TempDir dir;
  const fs::path file = dir.path() / "bad.jsonl";
  std::ofstream(file) << "{\"config\":{}}\nnot json\n{\"iter\":1}\n";
  try {
    (void)read_metrics(file);
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, ManifestRoundTripAndPruning) {
  TempDir dir;
  EXPECT_FALSE(read_manifest(dir.path()).has_value());
  write_manifest(dir.path(), {.iteration = 20, .workers = 2, .config = {{"lr", 0.1}}});
  const auto m = read_manifest(dir.path());
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->iteration, 20u);
  EXPECT_EQ(m->workers, 2u);
  EXPECT_EQ(m->config["lr"], 0.1);

  for (std::uint64_t it : {10, 20}) {
    for (int r : {0, 1}) std::ofstream(rank_checkpoint_path(dir.path(), it, r)) << "x";
  }
  prune_rank_checkpoints(dir.path(), 1, 20);
  EXPECT_TRUE(fs::exists(rank_checkpoint_path(dir.path(), 10, 0)));  // other ranks untouched
  EXPECT_FALSE(fs::exists(rank_checkpoint_path(dir.path(), 10, 1)));
  EXPECT_TRUE(fs::exists(rank_checkpoint_path(dir.path(), 20, 1)));

  std::ofstream(manifest_path(dir.path())) << "{\"iteration\": \"x\"}";
  EXPECT_THROW((void)read_manifest(dir.path()), IoError);
}

TEST(Checkpoint, ResumeCompatibility) {
  TrainConfig saved;
  resolve(saved);
  TrainConfig now = saved;
  now.epochs = 10;        // a longer run may continue
  now.metrics = "other";  // outputs may change
  EXPECT_NO_THROW(check_resume_compatible(to_json(saved), now));
  now.lr = 0.01;
  try {
    check_resume_compatible(to_json(saved), now);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--lr"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thinwire::train
