// State files: the checksummed binary container that training checkpoints are written in, and
// the crash-safe way of writing any file.
//
// A StateBundle is a set of named sections (float vectors, 64-bit integers, doubles, raw bytes).
// Serialized layout, all integers little-endian:
//   "TWCK" | u32 format version | u32 section count |
//   per section: u16 name length, name, u8 kind, u64 element count, the elements |
//   u64 XXH3-64 of every byte before it.
// Doubles are stored as their IEEE bit patterns, so a state restores bit for bit. parse() checks
// the magic, version, every length and the checksum before handing anything out, and errors name
// the file: a torn or corrupted checkpoint is an IoError, never a crash or a silently wrong model.
//
// write_file_atomic() writes to "PATH.tmp.<pid>", fsyncs it, renames it over PATH and fsyncs the
// directory, so after a crash (even SIGKILL mid-write) PATH holds either the old or the new
// content in full.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinwire::train {

class StateBundle {
 public:
  void put_floats(std::string_view name, std::span<const float> values);
  void put_u64(std::string_view name, std::uint64_t value);
  void put_f64(std::string_view name, double value);
  void put_bytes(std::string_view name, std::span<const std::byte> bytes);
  void put_string(std::string_view name, std::string_view text);

  [[nodiscard]] bool has(std::string_view name) const;
  // Getters throw IoError naming the bundle's source and the section if it is missing or of
  // another kind.
  [[nodiscard]] std::vector<float> get_floats(std::string_view name) const;
  [[nodiscard]] std::uint64_t get_u64(std::string_view name) const;
  [[nodiscard]] double get_f64(std::string_view name) const;
  [[nodiscard]] std::vector<std::byte> get_bytes(std::string_view name) const;
  [[nodiscard]] std::string get_string(std::string_view name) const;

  [[nodiscard]] std::vector<std::byte> serialize() const;
  // Throws IoError "SOURCE: problem" for anything that is not a complete, intact bundle.
  [[nodiscard]] static StateBundle parse(std::span<const std::byte> bytes, std::string source);

  // Reads / atomically writes a bundle file.
  [[nodiscard]] static StateBundle read(const std::filesystem::path& path);
  void write(const std::filesystem::path& path) const;

  [[nodiscard]] const std::string& source() const noexcept { return source_; }

 private:
  enum class Kind : std::uint8_t { kFloats = 1, kU64 = 2, kF64 = 3, kBytes = 4 };
  struct Section {
    Kind kind;
    std::vector<std::byte> data;  // raw little-endian elements
  };
  void put(std::string_view name, Kind kind, std::vector<std::byte> data);
  [[nodiscard]] const Section& get(std::string_view name, Kind kind) const;

  std::map<std::string, Section, std::less<>> sections_;
  std::string source_ = "state";
};

// Crash-safe replacement of `path` with `bytes` (see the overview). Throws IoError.
void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes);

}  // namespace thinwire::train
