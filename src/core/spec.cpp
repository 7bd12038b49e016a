#include "thinwire/core/spec.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <utility>

#include "thinwire/core/error.hpp"

namespace thinwire {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Unit {
  std::string_view suffix;
  double scale;
};

// Longest suffixes first so that "Mbit" is not read as "bit" with a leftover "M".
constexpr std::array kBandwidthUnits{
    Unit{"Gbit/s", 1e9}, Unit{"Mbit/s", 1e6}, Unit{"kbit/s", 1e3}, Unit{"bit/s", 1.0},
    Unit{"GB/s", 8e9},   Unit{"MB/s", 8e6},   Unit{"kB/s", 8e3},   Unit{"B/s", 8.0},
    Unit{"Gbit", 1e9},   Unit{"Mbit", 1e6},   Unit{"kbit", 1e3},   Unit{"bit", 1.0},
    Unit{"gbit", 1e9},   Unit{"mbit", 1e6},   Unit{"kbps", 1e3},   Unit{"Mbps", 1e6},
    Unit{"Gbps", 1e9},   Unit{"bps", 1.0},    Unit{"", 1.0}};
constexpr std::array kTimeUnits{Unit{"ns", 1e-9}, Unit{"us", 1e-6}, Unit{"ms", 1e-3},
                                Unit{"s", 1.0}, Unit{"", 1.0}};
constexpr std::array kByteUnits{
    Unit{"GiB", 1073741824.0}, Unit{"MiB", 1048576.0}, Unit{"KiB", 1024.0}, Unit{"GB", 1e9},
    Unit{"MB", 1e6},           Unit{"kB", 1e3},        Unit{"B", 1.0},      Unit{"", 1.0}};

template <std::size_t N>
double parse_with_unit(std::string_view text, const std::array<Unit, N>& units,
                       std::string_view what) {
  for (const Unit& unit : units) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      const double value = parse_double(text.substr(0, text.size() - unit.suffix.size()), what);
      if (value < 0) throw InvalidArgument(std::string(what) + ": must not be negative");
      return value * unit.scale;
    }
  }
  throw InvalidArgument(std::string(what) + ": cannot read '" + clip_text(text) + "'");
}

}  // namespace

double parse_double(std::string_view text, std::string_view what) {
  text = trim(text);
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
    const bool too_big = ec == std::errc::result_out_of_range || (ptr == end && !text.empty());
    throw InvalidArgument(std::string(what) + ": expected a " +
                          (too_big ? "finite number (magnitude below 1.8e308)" : "number") +
                          ", got '" + clip_text(text) + "'");
  }
  return value;
}

std::int64_t parse_int(std::string_view text, std::string_view what) {
  text = trim(text);
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    throw InvalidArgument(std::string(what) + ": out of range [-2^63, 2^63-1], got '" +
                          clip_text(text) + "'");
  }
  if (text.empty() || ec != std::errc() || ptr != end) {
    throw InvalidArgument(std::string(what) + ": expected an integer, got '" + clip_text(text) +
                          "'");
  }
  return value;
}

std::string clip_text(std::string_view text, std::size_t max_chars) {
  if (text.size() <= max_chars) return std::string(text);
  // Cut at a UTF-8 character boundary so the line stays valid text.
  std::size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "\u2026";
}

std::string format_shortest(double value) {
  std::array<char, 32> buffer{};  // 24 characters hold any double's shortest form
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), end);
}

Spec Spec::parse(std::string_view text) {
  text = trim(text);
  const auto colon = text.find(':');
  Spec spec =
      parse_params(colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1),
                   trim(text.substr(0, colon)));
  spec.name_ = std::string(trim(text.substr(0, colon)));
  if (spec.name_.empty()) {
    throw InvalidArgument("spec '" + clip_text(text) + "': missing a name before ':'");
  }
  return spec;
}

Spec Spec::parse_params(std::string_view text, std::string_view what) {
  Spec spec;
  spec.name_ = std::string(what);
  text = trim(text);
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || trim(item.substr(0, eq)).empty()) {
      throw InvalidArgument(std::string(what) + ": expected key=value, got '" + std::string(item) +
                            "'");
    }
    std::string key(trim(item.substr(0, eq)));
    std::string value(trim(item.substr(eq + 1)));
    if (!spec.params_.emplace(key, std::move(value)).second) {
      throw InvalidArgument(std::string(what) + ": parameter '" + key + "' given twice");
    }
  }
  return spec;
}

bool Spec::has(std::string_view key) const { return params_.find(key) != params_.end(); }

const std::string* Spec::find(std::string_view key) {
  auto it = params_.find(key);
  if (it == params_.end()) return nullptr;
  used_.emplace(key);
  return &it->second;
}

void Spec::fail(std::string_view key, std::string_view problem) const {
  throw InvalidArgument(name_ + ": " + std::string(key) + " " + std::string(problem));
}

std::optional<std::string> Spec::get_string(std::string_view key) {
  const std::string* value = find(key);
  if (value == nullptr) return std::nullopt;
  return *value;
}

std::string Spec::get_string(std::string_view key, std::string_view fallback) {
  const std::string* value = find(key);
  return value == nullptr ? std::string(fallback) : *value;
}

std::int64_t Spec::get_int(std::string_view key, std::int64_t fallback) {
  const std::string* value = find(key);
  return value == nullptr ? fallback : parse_int(*value, name_ + ": " + std::string(key));
}

std::uint64_t Spec::get_uint(std::string_view key, std::uint64_t fallback) {
  const std::string* value = find(key);
  if (value == nullptr) return fallback;
  const std::int64_t v = parse_int(*value, name_ + ": " + std::string(key));
  if (v < 0) fail(key, "must not be negative, got " + *value);
  return static_cast<std::uint64_t>(v);
}

double Spec::get_double(std::string_view key, double fallback) {
  const std::string* value = find(key);
  return value == nullptr ? fallback : parse_double(*value, name_ + ": " + std::string(key));
}

bool Spec::get_bool(std::string_view key, bool fallback) {
  const std::string* value = find(key);
  if (value == nullptr) return fallback;
  if (*value == "1" || *value == "true" || *value == "on" || *value == "yes") return true;
  if (*value == "0" || *value == "false" || *value == "off" || *value == "no") return false;
  fail(key, "must be true or false, got '" + clip_text(*value) + "'");
}

std::string Spec::get_choice(std::string_view key, std::string_view fallback,
                             std::initializer_list<std::string_view> choices) {
  std::string value = get_string(key, fallback);
  for (std::string_view choice : choices) {
    if (value == choice) return value;
  }
  std::string list;
  for (std::string_view choice : choices) {
    if (!list.empty()) list += "|";
    list += choice;
  }
  fail(key, "must be one of " + list + ", got '" + clip_text(value) + "'");
}

double Spec::get_bandwidth_bits_per_s(std::string_view key, double fallback) {
  const std::string* value = find(key);
  return value == nullptr
             ? fallback
             : parse_with_unit(*value, kBandwidthUnits, name_ + ": " + std::string(key));
}

double Spec::get_seconds(std::string_view key, double fallback) {
  const std::string* value = find(key);
  return value == nullptr ? fallback
                          : parse_with_unit(*value, kTimeUnits, name_ + ": " + std::string(key));
}

double Spec::get_bytes(std::string_view key, double fallback) {
  const std::string* value = find(key);
  return value == nullptr ? fallback
                          : parse_with_unit(*value, kByteUnits, name_ + ": " + std::string(key));
}

void Spec::finish() const {
  for (const auto& [key, value] : params_) {
    if (!used_.contains(key)) {
      throw InvalidArgument(name_ + ": unknown parameter '" + clip_text(key) + "'");
    }
  }
}

}  // namespace thinwire
