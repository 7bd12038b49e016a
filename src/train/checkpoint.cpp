#include "thinwire/train/checkpoint.hpp"

#include <array>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include "thinwire/core/error.hpp"
#include "thinwire/train/state_file.hpp"

namespace thinwire::train {
namespace {

constexpr std::string_view kPrefix = "ckpt-";
constexpr std::string_view kRankInfix = ".rank-";
constexpr std::string_view kSuffix = ".twck";

// Settings that may differ between the interrupted run and its continuation.
constexpr std::array<std::string_view, 11> kFreeSettings{
    "backend",    "link",       "epochs",           "iterations", "metrics",   "log-every",
    "eval-every", "checkpoint", "checkpoint-every", "resume",     "save-model"};

bool is_free(std::string_view key) {
  for (std::string_view k : kFreeSettings) {
    if (k == key) return true;
  }
  return false;
}

}  // namespace

std::filesystem::path rank_checkpoint_path(const std::filesystem::path& dir,
                                           std::uint64_t iteration, int rank) {
  return dir / (std::string(kPrefix) + std::to_string(iteration) + std::string(kRankInfix) +
                std::to_string(rank) + std::string(kSuffix));
}

std::filesystem::path manifest_path(const std::filesystem::path& dir) {
  return dir / "latest.json";
}

void write_manifest(const std::filesystem::path& dir, const CheckpointManifest& manifest) {
  const nlohmann::json j{{"iteration", manifest.iteration},
                         {"workers", manifest.workers},
                         {"config", manifest.config}};
  const std::string text = j.dump(2) + "\n";
  write_file_atomic(manifest_path(dir), std::as_bytes(std::span(text.data(), text.size())));
}

std::optional<CheckpointManifest> read_manifest(const std::filesystem::path& dir) {
  const std::filesystem::path path = manifest_path(dir);
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object() || !j.contains("iteration") || !j["iteration"].is_number_unsigned() ||
      !j.contains("workers") || !j["workers"].is_number_unsigned() || !j.contains("config") ||
      !j["config"].is_object()) {
    throw IoError(path.string() + ": not a thinwire checkpoint manifest");
  }
  return CheckpointManifest{.iteration = j["iteration"].get<std::uint64_t>(),
                            .workers = j["workers"].get<std::uint64_t>(),
                            .config = j["config"]};
}

void prune_rank_checkpoints(const std::filesystem::path& dir, int rank,
                            std::uint64_t keep_iteration) {
  const std::string keep = rank_checkpoint_path(dir, keep_iteration, rank).filename().string();
  const std::string rank_tail =
      std::string(kRankInfix) + std::to_string(rank) + std::string(kSuffix);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(kPrefix) && name.ends_with(rank_tail) && name != keep) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
}

void check_resume_compatible(const nlohmann::json& saved, const TrainConfig& now) {
  const nlohmann::json current = to_json(now);
  const nlohmann::json defaults = to_json(TrainConfig{});
  for (const auto& [key, value] : current.items()) {
    if (is_free(key)) continue;
    // A setting added after the checkpoint was written had its default then.
    if (!saved.contains(key) && value == defaults[key]) continue;
    if (!saved.contains(key)) {
      throw InvalidArgument("--resume: the checkpoint does not record '" + key + "'");
    }
    if (saved[key] != value) {
      throw InvalidArgument("--resume: the checkpoint was written with --" + key + " " +
                            saved[key].dump() + ", this run has " + value.dump() +
                            " (settings that change the trajectory must match)");
    }
  }
}

CheckpointManifest read_resume_manifest(const TrainConfig& config) {
  std::optional<CheckpointManifest> manifest = read_manifest(config.checkpoint);
  if (!manifest) {
    throw IoError("--resume: no checkpoint in " + config.checkpoint + " (" +
                  manifest_path(config.checkpoint).string() + " is missing)");
  }
  if (manifest->workers != config.workers) {
    throw InvalidArgument("--resume: the checkpoint has " + std::to_string(manifest->workers) +
                          " workers, this run " + std::to_string(config.workers));
  }
  check_resume_compatible(manifest->config, config);
  return std::move(*manifest);
}

}  // namespace thinwire::train
