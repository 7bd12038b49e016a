// Metrics JSONL (SPEC §6): the first line is the run's full configuration, then one JSON object
// per logged iteration. Written by rank 0 only.
//
// A record has at least iter, epoch, loss, bits (cumulative bits sent by all workers), cost
// (cumulative Σ over workers and messages of C(bits) under --cost, tune/cost_model.hpp; equal to
// bits under the default `bits` model), sim_s, comm_s (rank 0's clock time inside
// synchronizations: simulated on threads, measured on MPI), wall_s and codec (the codec level
// used), plus test_accuracy / test_loss where the model was evaluated, and under a tuner rank 0's
// decision: theta (the level), theta_s (top-k+QSGD's s), rho, tuned_bits, lr_scale. Every field
// except sim_s, comm_s and wall_s is a deterministic function of the configuration, so runs on
// different backends compare field by field.
//
// Resuming: MetricsLog::resume keeps the configuration line and the records up to the checkpoint's
// iteration (those after it are re-created by the resumed run) and appends from there, so an
// interrupted-and-resumed run leaves the same file as an uninterrupted one (times aside).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

namespace thinwire::train {

class MetricsLog {
 public:
  // Starts a new file (replacing any old one) whose first line is {"config": config}.
  [[nodiscard]] static MetricsLog create(const std::filesystem::path& path,
                                         const nlohmann::json& config);
  // Continues a file at `iteration`: keeps its first line and the records with iter <= iteration
  // (rewritten atomically), then appends. A missing file starts a new one. Throws IoError for a
  // file whose lines are not JSON.
  [[nodiscard]] static MetricsLog resume(const std::filesystem::path& path,
                                         const nlohmann::json& config, std::uint64_t iteration);

  MetricsLog(MetricsLog&& other) noexcept;
  MetricsLog& operator=(MetricsLog&& other) noexcept;
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  // Appends one record as one line and flushes it to the OS. Throws IoError.
  void write(const nlohmann::json& record);
  // Forces what was written to disk (called before a checkpoint is published).
  void sync();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  MetricsLog(std::filesystem::path path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// Reads a metrics file: element 0 is the configuration line, then the records. Throws IoError
// naming FILE:LINE for a line that is not a JSON object; with allow_torn_tail a malformed last
// line (a write cut short by a crash) is dropped instead.
[[nodiscard]] std::vector<nlohmann::json> read_metrics(const std::filesystem::path& path,
                                                       bool allow_torn_tail = false);

}  // namespace thinwire::train
