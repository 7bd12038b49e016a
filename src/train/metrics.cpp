#include "thinwire/train/metrics.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "thinwire/core/error.hpp"
#include "thinwire/train/state_file.hpp"

namespace thinwire::train {
namespace {

std::FILE* open_or_throw(const std::filesystem::path& path, const char* mode) {
  std::FILE* f = std::fopen(path.c_str(), mode);
  if (f == nullptr) {
    throw IoError(path.string() + ": cannot open the metrics file: " + std::strerror(errno));
  }
  return f;
}

void put_line(std::FILE* f, const std::filesystem::path& path, const nlohmann::json& value) {
  const std::string line = value.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fflush(f) != 0) {
    throw IoError(path.string() + ": write failed: " + std::strerror(errno));
  }
}

}  // namespace

MetricsLog MetricsLog::create(const std::filesystem::path& path, const nlohmann::json& config) {
  std::FILE* f = open_or_throw(path, "wb");
  MetricsLog log(path, f);
  put_line(f, path, nlohmann::json{{"config", config}});
  return log;
}

MetricsLog MetricsLog::resume(const std::filesystem::path& path, const nlohmann::json& config,
                              std::uint64_t iteration) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) return create(path, config);
  // Only a regular file is cut back and replaced atomically. A device, a pipe or a socket is
  // written through (it cannot be re-read); a symlink is followed, so the file it names is
  // replaced and the link stays.
  std::error_code ec;
  const fs::path target = fs::is_symlink(fs::symlink_status(path, ec)) ? fs::canonical(path) : path;
  if (!fs::is_regular_file(fs::status(target, ec))) return create(path, config);
  const std::vector<nlohmann::json> lines = read_metrics(path, /*allow_torn_tail=*/true);
  std::string kept;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json& line = lines[i];
    const bool keep = i == 0 || (line.contains("iter") && line["iter"].is_number_unsigned() &&
                                 line["iter"].get<std::uint64_t>() <= iteration);
    if (keep) kept += line.dump() + "\n";
  }
  if (lines.empty()) kept = nlohmann::json{{"config", config}}.dump() + "\n";
  write_file_atomic(target, std::as_bytes(std::span(kept.data(), kept.size())));
  return MetricsLog(path, open_or_throw(target, "ab"));
}

MetricsLog::MetricsLog(MetricsLog&& other) noexcept
    : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)) {}

MetricsLog& MetricsLog::operator=(MetricsLog&& other) noexcept {
  if (this != &other) {
    if (file_ != nullptr) std::fclose(file_);
    path_ = std::move(other.path_);
    file_ = std::exchange(other.file_, nullptr);
  }
  return *this;
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) { put_line(file_, path_, record); }

void MetricsLog::sync() {
  // fsync is for files on disk: /dev/null, a pipe or a terminal cannot be synced (EINVAL).
  struct stat info {};
  const bool regular = ::fstat(::fileno(file_), &info) == 0 && S_ISREG(info.st_mode);
  if (std::fflush(file_) != 0 || (regular && ::fsync(::fileno(file_)) != 0)) {
    throw IoError(path_.string() + ": sync failed: " + std::strerror(errno));
  }
}

std::vector<nlohmann::json> read_metrics(const std::filesystem::path& path, bool allow_torn_tail) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw IoError(path.string() + ": is a directory, not a metrics file");
  }
  std::ifstream in(path);
  if (!in) throw IoError(path.string() + ": cannot open the metrics file");
  std::vector<nlohmann::json> lines;
  std::string line;
  std::size_t number = 0;
  std::size_t bad_line = 0;
  // Records are a few hundred bytes; a longer line (or /dev/zero) is not a metrics file, and is
  // reported instead of being read until memory runs out.
  constexpr std::size_t kMaxLine = std::size_t{1} << 20;
  auto next_line = [&] {
    line.clear();
    for (int ch = in.get(); ch != EOF; ch = in.get()) {
      if (ch == '\n') return true;
      if (line.size() == kMaxLine) {
        throw IoError(path.string() + ":" + std::to_string(number + 1) +
                      ": line longer than 1 MiB (not a thinwire metrics file)");
      }
      line.push_back(static_cast<char>(ch));
    }
    return !line.empty();
  };
  while (next_line()) {
    ++number;
    if (line.empty()) continue;
    if (bad_line != 0) break;  // a malformed line that is not the last one
    nlohmann::json value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!value.is_object()) {
      bad_line = number;
      continue;
    }
    lines.push_back(std::move(value));
  }
  if (bad_line != 0 && !(allow_torn_tail && bad_line == number)) {
    throw IoError(path.string() + ":" + std::to_string(bad_line) + ": not a JSON object");
  }
  return lines;
}

}  // namespace thinwire::train
