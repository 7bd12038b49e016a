// Pieces shared by the commands of the `thinwire` tool.
//
// The tool is thin: main.cpp builds the CLI11 parser and maps errors to exit codes, and each
// cmd_*.cpp file registers its subcommands with a callback that parses, validates, builds library
// objects and runs them. Errors follow SPEC §6: one line `error: ...` on stderr naming the flag,
// file or parameter; exit code 2 for usage mistakes (bad flags, unknown codec, bad spec, unknown
// file extension), 1 for runtime failures (missing or malformed file, corrupt message).
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;

// A mistake in how the tool was called, found after CLI11's own parsing (exit code 2).
class UsageError : public Error {
 public:
  using Error::Error;
};

// Runs `fn`, turning an InvalidArgument it throws into a UsageError that names `flag`. For
// validating flag values with library parsers (codec specs, file extensions).
template <typename Fn>
auto as_usage(std::string_view flag, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const InvalidArgument& e) {
    throw UsageError(std::string(flag) + ": " + e.what());
  }
}

// A non-negative integer flag in [min, max], parsed here rather than by CLI11 (which wraps -1 and
// 2^64 into an unsigned type); anything else is a usage error naming the flag and the range.
inline std::uint64_t parse_unsigned(const std::string& text, std::string_view flag,
                                    std::uint64_t min, std::uint64_t max,
                                    std::string_view range_text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < min || value > max) {
    throw UsageError(std::string(flag) + ": must be an integer in " + std::string(range_text) +
                     ", got '" + clip_text(text) + "'");
  }
  return value;
}

// Registration of the subcommands, one function per cmd_*.cpp file.
void add_codec_commands(CLI::App& app);  // compress, decompress, inspect, codecs
void add_demo_command(CLI::App& app);    // demo
void add_train_command(CLI::App& app);   // train (cmd_train.cpp)
void add_report_command(CLI::App& app);  // report (cmd_report.cpp)
void add_bench_command(CLI::App& app);   // bench (cmd_bench.cpp)

}  // namespace thinwire::cli
