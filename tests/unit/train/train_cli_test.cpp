// `thinwire train` as a user runs it: bad input gives one `error: ...` line and the documented
// exit code (SPEC §6), and a run killed with SIGKILL after a checkpoint resumes to a model that is
// bit-identical to the uninterrupted run's. The binary's path comes from CMake.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/scratch_dir.hpp"
#include "thinwire/train/metrics.hpp"

namespace thinwire {
namespace {

namespace fs = std::filesystem;
using test::ProcessResult;

class TrainCli : public test::ScratchDirTest {
 protected:
  [[nodiscard]] std::vector<std::string> command(std::vector<std::string> args) const {
    args.insert(args.begin(), {THINWIRE_CLI_PATH, "train", "--progress", "lines"});
    return args;
  }
  ProcessResult train(std::vector<std::string> args) const {
    return test::run_process(command(std::move(args)), dir_);
  }

  // A usage or runtime error: the exit code, and exactly one `error: ...` line, the last line on
  // stderr (progress lines of a run that got going may come before it).
  static void expect_error(const ProcessResult& r, int code, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    std::vector<std::string> lines;
    std::istringstream in(r.err);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(lines.back().starts_with("error: ")) << r.err;
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return l.starts_with("error"); }),
              1)
        << r.err;
    EXPECT_NE(lines.back().find(fragment), std::string::npos) << r.err;
  }
};

// A small softmax problem that trains in well under a second.
const std::vector<std::string> kSmall{
    "--problem",    "softmax",
    "--data",       "synthetic:n=200,d=5,task=softmax,classes=3,test_fraction=0.2",
    "--workers",    "2",
    "--batch-size", "8",
    "--iterations", "20"};

std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

TEST_F(TrainCli, SmallRunSucceedsAndPrintsSummary) {
  const ProcessResult r = train(with(kSmall, {"--metrics", path("m.jsonl").string()}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("uncompressed"), std::string::npos) << r.out;
  const std::vector<nlohmann::json> lines = train::read_metrics(path("m.jsonl"));
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0]["config"]["workers"], 2);
  for (const char* field : {"iter", "epoch", "loss", "bits", "sim_s", "wall_s", "codec"}) {
    EXPECT_TRUE(lines.back().contains(field)) << field;
  }
  EXPECT_TRUE(lines.back().contains("test_accuracy"));
}

TEST_F(TrainCli, UnknownFlagIsAUsageError) {
  expect_error(train({"--learning-rate", "0.1"}), 2, "--learning-rate");
}

TEST_F(TrainCli, UnknownCodecIsAUsageError) {
  expect_error(train(with(kSmall, {"--codec", "zip"})), 2, "--codec: unknown codec 'zip'");
}

TEST_F(TrainCli, BadValuesAreUsageErrors) {
  expect_error(train(with(kSmall, {"--lr", "fast"})), 2, "--lr");
  expect_error(train(with(kSmall, {"--algorithm", "choco", "--sync", "ring"})), 2, "--sync");
  expect_error(train(with(kSmall, {"--problem", "svm"})), 2, "--problem");
}

TEST_F(TrainCli, ConfigFileErrorsNameFileAndLine) {
  std::ofstream(path("run.toml")) << "lr = 0.1\nlearning_rate = 2\n";
  expect_error(train({"--config", path("run.toml").string()}), 2, "run.toml:2:");
}

TEST_F(TrainCli, ConfigFileIsOverriddenByFlags) {
  std::ofstream(path("run.toml")) << "problem = \"softmax\"\niterations = 3\nworkers = 3\n"
                                  << "data = \"synthetic:n=90,d=4,task=softmax,classes=3\"\n";
  const ProcessResult r = train({"--config", path("run.toml").string(), "--iterations", "5",
                                 "--metrics", path("m.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<nlohmann::json> lines = train::read_metrics(path("m.jsonl"));
  EXPECT_EQ(lines[0]["config"]["iterations"], 5);
  EXPECT_EQ(lines[0]["config"]["workers"], 3);
  EXPECT_EQ(lines.back()["iter"], 5);
}

TEST_F(TrainCli, MalformedLibsvmLineNamesFileAndLine) {
  std::ofstream(path("bad.svm")) << "1 1:0.5 2:1\n-1 1:0.25 2:x\n";
  expect_error(
      train({"--data", path("bad.svm").string(), "--problem", "logistic", "--workers", "1"}), 1,
      "bad.svm:2");
}

TEST_F(TrainCli, MissingFashionMnistSaysHowToInstallIt) {
  expect_error(train({"--data", "fashion-mnist:dir=" + path("nowhere").string()}), 1,
               "apt-get install dataset-fashion-mnist");
}

TEST_F(TrainCli, NonFiniteGradientStopsOrIsSkipped) {
  const std::vector<std::string> diverging{"--problem",    "least-squares",
                                           "--data",       "synthetic:n=64,d=4,task=least-squares",
                                           "--workers",    "2",
                                           "--batch-size", "8",
                                           "--lr",         "1e4",
                                           "--momentum",   "0",
                                           "--codec",      "identity",
                                           "--iterations", "60"};
  expect_error(train(diverging), 1, "non-finite");
  const ProcessResult skipped = train(with(diverging, {"--on-nonfinite", "skip"}));
  EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
  EXPECT_NE(skipped.out.find("skipped steps"), std::string::npos) << skipped.out;
}

std::vector<nlohmann::json> timeless(const fs::path& metrics) {
  std::vector<nlohmann::json> lines = train::read_metrics(metrics);
  for (nlohmann::json& line : lines) {
    line.erase("sim_s");
    line.erase("wall_s");
    line.erase("comm_s");
    if (line.contains("config")) {
      for (const char* key :
           {"metrics", "checkpoint", "checkpoint-every", "resume", "save-model"}) {
        line["config"].erase(key);
      }
    }
  }
  return lines;
}

TEST_F(TrainCli, SigkillAfterCheckpointThenResumeIsBitIdentical) {
  const std::vector<std::string> run{
      "--problem",    "mlp:hidden=32",
      "--data",       "synthetic:n=3000,d=20,task=softmax,classes=4,test_fraction=0.1",
      "--workers",    "3",
      "--batch-size", "16",
      "--iterations", "600",
      "--log-every",  "20",
      "--eval-every", "100",
      "--codec",      "qsgd:s=4,bucket=64+ef"};

  const ProcessResult whole = train(with(run, {"--metrics", path("whole.jsonl").string(),
                                               "--save-model", path("whole.f32").string()}));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;

  const std::vector<std::string> interrupted = with(
      run, {"--metrics", path("parts.jsonl").string(), "--save-model", path("parts.f32").string(),
            "--checkpoint", path("ckpt").string(), "--checkpoint-every", "20"});
  const pid_t pid = test::spawn_process(command(interrupted), path("out.txt"), path("err.txt"));
  const fs::path manifest = path("ckpt") / "latest.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(manifest) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_TRUE(fs::exists(manifest)) << test::slurp(path("err.txt"));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(test::wait_process(pid, std::chrono::seconds(30)), -1);
  ASSERT_FALSE(fs::exists(path("parts.f32"))) << "the run finished before it could be killed";

  const ProcessResult resumed = train(with(interrupted, {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("resumed at iteration"), std::string::npos) << resumed.out;

  const std::string a = test::slurp(path("whole.f32"));
  const std::string b = test::slurp(path("parts.f32"));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "final models differ";
  EXPECT_EQ(timeless(path("whole.jsonl")), timeless(path("parts.jsonl")));
}

TEST_F(TrainCli, ResumeWithoutCheckpointOrWithChangedSettingsFails) {
  expect_error(train(with(kSmall, {"--checkpoint", path("none").string(), "--resume"})), 1,
               "no checkpoint");
  ASSERT_EQ(train(with(kSmall, {"--checkpoint", path("c").string()})).exit_code, 0);
  expect_error(train(with(kSmall, {"--checkpoint", path("c").string(), "--resume", "--lr", "0.5"})),
               2, "--lr");
}

}  // namespace
}  // namespace thinwire
