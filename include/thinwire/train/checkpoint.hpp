// Checkpoint directories: where each rank's state file goes, and the manifest that says which
// checkpoint is complete.
//
//   DIR/ckpt-<ITER>.rank-<R>.twck   one StateBundle per rank (state_file.hpp): model, optimizer
//                                   state, error-feedback residuals, synchronization state,
//                                   counters, clocks, and a slot for the tuner's state
//   DIR/latest.json                 {"iteration": ITER, "workers": M, "config": {...}}
//
// Protocol (engine.cpp): every rank writes its file atomically; the ranks report to rank 0 over
// the control plane; rank 0 syncs the metrics file and then atomically replaces latest.json;
// only after rank 0's answer does each rank delete its older files. A crash at any point leaves
// latest.json naming a checkpoint whose files are all complete. All randomness is counter-based
// (keyed by seed, rank, iteration and purpose), so the iteration number is the whole RNG state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "thinwire/train/config.hpp"

namespace thinwire::train {

struct CheckpointManifest {
  std::uint64_t iteration = 0;  // completed iterations
  std::uint64_t workers = 0;
  nlohmann::json config;  // the run's resolved configuration
};

[[nodiscard]] std::filesystem::path rank_checkpoint_path(const std::filesystem::path& dir,
                                                         std::uint64_t iteration, int rank);
[[nodiscard]] std::filesystem::path manifest_path(const std::filesystem::path& dir);

void write_manifest(const std::filesystem::path& dir, const CheckpointManifest& manifest);
// nullopt when there is no latest.json; IoError when it is malformed.
[[nodiscard]] std::optional<CheckpointManifest> read_manifest(const std::filesystem::path& dir);

// Deletes this rank's checkpoint files other than the one of `keep_iteration`.
void prune_rank_checkpoints(const std::filesystem::path& dir, int rank,
                            std::uint64_t keep_iteration);

// Throws InvalidArgument "--resume: ..." if `saved` (a checkpoint's configuration) and `now`
// differ in a setting that changes the trajectory (problem, data, algorithm, codec, step sizes,
// seed, world size, ...). Output settings, the length of the run and the link model may change.
void check_resume_compatible(const nlohmann::json& saved, const TrainConfig& now);

// The manifest of the checkpoint `config` resumes from (config.checkpoint), checked against the
// run: IoError when there is none, InvalidArgument "--resume: ..." when it was written for another
// number of workers or a configuration check_resume_compatible rejects.
[[nodiscard]] CheckpointManifest read_resume_manifest(const TrainConfig& config);

}  // namespace thinwire::train
