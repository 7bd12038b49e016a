// What a run writes, checked and guarded before the first iteration (issue 22): a mistake in an
// output path is found at the start, not after hours of training, and two runs never share a
// checkpoint directory.
//
//   check_outputs               --metrics and --save-model: not a directory, the directory they
//                               go into exists and is writable, --save-model ends in .npy/.f32
//   prepare_checkpoint_directory creates --checkpoint, checks that it is writable, takes the lock
//                               (DIR/.lock, flock) when asked and removes stale temporaries
//   remove_stale_temporaries    "NAME.tmp.<pid>" files (write_file_atomic) of processes that no
//                               longer run: what a SIGKILL or a power cut leaves behind
#pragma once

#include <filesystem>
#include <string_view>

#include "thinwire/train/config.hpp"

namespace thinwire::train {

// An exclusive advisory lock on DIR/.lock, held until destruction (the kernel releases it when
// the process dies, so a killed run never leaves a stale lock).
class CheckpointLock {
 public:
  CheckpointLock() = default;
  CheckpointLock(const CheckpointLock&) = delete;
  CheckpointLock& operator=(const CheckpointLock&) = delete;
  ~CheckpointLock();

  // Throws IoError naming the directory when another process holds the lock.
  void acquire(const std::filesystem::path& dir);

 private:
  int fd_ = -1;
};

// Throws IoError (or InvalidArgument for a bad --save-model extension) naming the flag.
void check_outputs(const TrainConfig& config);

// Creates `dir` (every rank: MPI ranks may not share a disk), checks it is a writable directory,
// takes `lock` when it is not null, then removes stale temporaries. Throws IoError naming
// --checkpoint.
void prepare_checkpoint_directory(const std::filesystem::path& dir, CheckpointLock* lock);

// Removes DIR/NAME.tmp.<pid> entries (NAME starting with `prefix`, or any NAME when `prefix` is
// empty) whose process is gone. Best effort: errors are ignored.
void remove_stale_temporaries(const std::filesystem::path& dir, std::string_view prefix);

}  // namespace thinwire::train
