#include "outputs.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "thinwire/core/array_file.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::train {
namespace {

namespace fs = std::filesystem;

// The directory an output file goes into must exist and be writable; the path must not be a
// directory. Devices, pipes and symlinks are fine (they are written through).
void check_output_file(const std::string& flag, const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw IoError(flag + ": " + path.string() + " is a directory (expected a file name)");
  }
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) {
    throw IoError(flag + ": cannot write " + path.string() + ": the directory " + dir.string() +
                  " does not exist");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0 && ::access(path.c_str(), W_OK) != 0) {
    throw IoError(flag + ": cannot write " + path.string() + ": " + std::strerror(errno));
  }
  // Opening a pipe for writing blocks until someone reads it: a pipe nobody reads is an error
  // now, not a run that waits forever.
  if (fs::is_fifo(path, ec)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      throw IoError(flag + ": " + path.string() + " is a pipe that nobody reads (" +
                    std::strerror(errno) + ")");
    }
    ::close(fd);
  }
}

}  // namespace

CheckpointLock::~CheckpointLock() {
  if (fd_ >= 0) ::close(fd_);
}

void CheckpointLock::acquire(const fs::path& dir) {
  const fs::path path = dir / ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw IoError("--checkpoint: cannot create " + path.string() + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    ::close(fd);
    if (saved == EWOULDBLOCK) {
      throw IoError("--checkpoint: " + dir.string() +
                    " is in use by another thinwire run (it holds " + path.string() +
                    "); wait for it to finish or choose another directory");
    }
    throw IoError("--checkpoint: cannot lock " + path.string() + ": " + std::strerror(saved));
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void check_outputs(const TrainConfig& config) {
  if (!config.metrics.empty()) {
    check_output_file("--metrics", config.metrics);
    const fs::path metrics(config.metrics);
    remove_stale_temporaries(metrics.parent_path(), metrics.filename().string() + ".tmp.");
  }
  if (!config.save_model.empty()) check_output_file("--save-model", config.save_model);
  if (!config.metrics.empty() && !config.save_model.empty()) {
    std::error_code ec;
    if (fs::weakly_canonical(config.metrics, ec) == fs::weakly_canonical(config.save_model, ec)) {
      throw IoError("--save-model: " + config.save_model +
                    " is also the --metrics file; the model would overwrite the metrics");
    }
  }
}

void prepare_checkpoint_directory(const fs::path& dir, CheckpointLock* lock) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) {
    throw IoError("--checkpoint: cannot create the directory " + dir.string() +
                  (ec ? ": " + ec.message() : std::string(" (a file of that name exists)")));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw IoError("--checkpoint: cannot write into " + dir.string() + ": " + std::strerror(errno));
  }
  if (lock != nullptr) {
    lock->acquire(dir);
    remove_stale_temporaries(dir, "");
  }
}

void remove_stale_temporaries(const fs::path& dir, std::string_view prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto tmp = name.rfind(".tmp.");
    if (tmp == std::string::npos || !name.starts_with(prefix)) continue;
    const std::string digits = name.substr(tmp + 5);
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // still running
    std::error_code ignored;
    fs::remove(entry.path(), ignored);
  }
}

}  // namespace thinwire::train
