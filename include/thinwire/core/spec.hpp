// Spec strings: the one syntax users write for codecs, links, cost models, topologies and data
// sources, e.g. "qsgd:s=16,bucket=512,norm=max" or "bandwidth=100Mbit,latency=50us".
//
//   spec   := name [':' params] | params      (params-only form via parse_params)
//   params := key '=' value (',' key '=' value)*
//
// Accessors throw InvalidArgument naming the spec's name and the key, and Spec::finish() rejects
// keys that nobody asked for, so a typo ("bucekt=512") is an error instead of a silent default.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace thinwire {

class Spec {
 public:
  // Parses "name[:k=v,...]". Throws InvalidArgument on empty names, missing '=' or repeated keys.
  static Spec parse(std::string_view text);
  // Parses "k=v,..." with no name; `what` names the spec in error messages (e.g. "link").
  static Spec parse_params(std::string_view text, std::string_view what);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] bool has(std::string_view key) const;

  // Typed accessors; each marks the key as used. Errors name the spec and the key.
  [[nodiscard]] std::string get_string(std::string_view key, std::string_view fallback);
  [[nodiscard]] std::optional<std::string> get_string(std::string_view key);
  [[nodiscard]] std::int64_t get_int(std::string_view key, std::int64_t fallback);
  [[nodiscard]] std::uint64_t get_uint(std::string_view key, std::uint64_t fallback);
  [[nodiscard]] double get_double(std::string_view key, double fallback);
  [[nodiscard]] bool get_bool(std::string_view key, bool fallback);
  // One of `choices`; the error lists them.
  [[nodiscard]] std::string get_choice(std::string_view key, std::string_view fallback,
                                       std::initializer_list<std::string_view> choices);
  // A quantity with a unit suffix, scaled to the base unit. Tables in spec.cpp list suffixes:
  // bits per second ("100Mbit", "1Gbit", "10MB/s"), seconds ("50us", "2ms", "1s"), bytes
  // ("1460B", "4KiB").
  [[nodiscard]] double get_bandwidth_bits_per_s(std::string_view key, double fallback);
  [[nodiscard]] double get_seconds(std::string_view key, double fallback);
  [[nodiscard]] double get_bytes(std::string_view key, double fallback);

  // Throws InvalidArgument if any key was never read by an accessor.
  void finish() const;

  [[nodiscard]] const std::map<std::string, std::string, std::less<>>& params() const noexcept {
    return params_;
  }

 private:
  [[nodiscard]] const std::string* find(std::string_view key);
  [[noreturn]] void fail(std::string_view key, std::string_view problem) const;

  std::string name_;
  std::map<std::string, std::string, std::less<>> params_;
  std::set<std::string, std::less<>> used_;
};

// Strict number parsing shared by every layer; `what` prefixes the error message.
[[nodiscard]] double parse_double(std::string_view text, std::string_view what);
[[nodiscard]] std::int64_t parse_int(std::string_view text, std::string_view what);

// `text` for an error message: at most `max_chars` bytes, then "…" when it was longer, so that a
// 100 MB token never becomes a 100 MB error line.
[[nodiscard]] std::string clip_text(std::string_view text, std::size_t max_chars = 200);

// The shortest decimal text that reads back as the same double, so that a canonical spec
// (Codec::spec, CostModel::spec, LinkModel::to_spec) parses back to an equal object.
[[nodiscard]] std::string format_shortest(double value);

}  // namespace thinwire
