#include "thinwire/core/array_file.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include <sys/stat.h>

#include "thinwire/core/error.hpp"

namespace thinwire {
namespace {

static_assert(std::endian::native == std::endian::little,
              "array files hold little-endian float32; this host is big-endian");

constexpr std::string_view kNpyMagic = "\x93NUMPY";
// magic (6) + version (2) + header length (2 in v1.0, 4 in v2.0/3.0)
constexpr std::size_t kNpyPrefixV1 = 10;
constexpr std::size_t kNpyPrefixV2 = 12;
// numpy pads the whole preamble to a multiple of 64 bytes so that the data is aligned.
constexpr std::size_t kNpyAlignment = 64;

[[noreturn]] void fail(std::string_view name, const std::string& problem) {
  throw IoError(std::string(name) + ": " + problem);
}

std::string system_reason() { return std::strerror(errno); }

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// The header of a .npy file: the three keys of its dict literal.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

// Parser for the restricted Python literal numpy writes, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3,), }
// Keys and strings in single or double quotes, True/False, tuples of non-negative integers.
class NpyDictParser {
 public:
  NpyDictParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false;
    bool seen_order = false;
    bool seen_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      bool* seen = nullptr;
      if (key == "descr") {
        h.descr = parse_string();
        seen = &seen_descr;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        seen = &seen_order;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        seen = &seen_shape;
      } else {
        error("unexpected key '" + key + "'");
      }
      if (*seen) error("key '" + key + "' appears twice");
      *seen = true;
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') error("expected ',' or '}' at offset " + std::to_string(pos_));
      break;
    }
    ++pos_;  // the closing brace
    skip_space();
    if (pos_ != text_.size()) error("unexpected text after the closing brace");
    if (!seen_descr || !seen_order || !seen_shape) {
      error("header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    return h;
  }

 private:
  [[noreturn]] void error(const std::string& problem) const {
    fail(name_, "malformed .npy header (" + problem + ")");
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) error(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"')
      error("expected a quoted string at offset " + std::to_string(pos_));
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) error("unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  bool parse_bool() {
    skip_space();
    if (text_.substr(pos_).starts_with("True")) {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_).starts_with("False")) {
      pos_ += 5;
      return false;
    }
    error("fortran_order must be True or False");
  }
  std::vector<std::uint64_t> parse_tuple() {
    std::vector<std::uint64_t> dims;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (std::isdigit(static_cast<unsigned char>(peek())) == 0) error("shape must hold integers");
      std::uint64_t n = 0;
      while (std::isdigit(static_cast<unsigned char>(peek())) != 0) {
        const auto digit = static_cast<std::uint64_t>(peek() - '0');
        if (n > (UINT64_MAX - digit) / 10) error("shape dimension too large");
        n = n * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literal, written by old numpy versions
      dims.push_back(n);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') error("expected ',' or ')' in shape");
    }
    ++pos_;
    return dims;
  }

  std::string_view text_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::uint64_t load_le(std::span<const std::byte> bytes, std::size_t offset, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(bytes[offset + i]) << (8 * i);
  }
  return v;
}

std::vector<float> floats_from(std::span<const std::byte> data) {
  std::vector<float> values(data.size() / 4);
  if (!data.empty()) std::memcpy(values.data(), data.data(), values.size() * 4);
  return values;
}

std::vector<float> parse_f32(std::span<const std::byte> bytes, std::string_view name) {
  if (bytes.size() % 4 != 0) {
    fail(name, "size " + std::to_string(bytes.size()) +
                   " bytes is not a multiple of 4 (a .f32 file holds raw float32 values)");
  }
  return floats_from(bytes);
}

std::vector<float> parse_npy(std::span<const std::byte> bytes, std::string_view name) {
  const auto* chars = reinterpret_cast<const char*>(bytes.data());
  if (bytes.size() < kNpyPrefixV1 || std::string_view(chars, kNpyMagic.size()) != kNpyMagic) {
    fail(name, "not a NumPy .npy file (missing the \\x93NUMPY magic)");
  }
  const auto major = static_cast<unsigned>(bytes[6]);
  const auto minor = static_cast<unsigned>(bytes[7]);
  std::size_t prefix = 0;
  if (major == 1) {
    prefix = kNpyPrefixV1;
  } else if (major == 2 || major == 3) {
    prefix = kNpyPrefixV2;
  } else {
    fail(name, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (this reader knows 1.0, 2.0 and 3.0)");
  }
  if (bytes.size() < prefix) fail(name, "file ends inside the .npy preamble");
  const std::uint64_t header_len = load_le(bytes, 8, prefix - 8);
  if (header_len > bytes.size() - prefix) {
    fail(name, "file ends inside the .npy header (it announces " + std::to_string(header_len) +
                   " header bytes)");
  }
  std::string_view header(chars + prefix, static_cast<std::size_t>(header_len));
  // The dict is padded with spaces and terminated by a newline.
  while (!header.empty() && (header.back() == '\n' || header.back() == ' '))
    header.remove_suffix(1);
  const NpyHeader h = NpyDictParser(header, name).parse();

  if (h.descr != "<f4") {
    if (h.descr == ">f4") fail(name, "dtype '>f4' is big-endian float32; only '<f4' is supported");
    fail(name, "dtype '" + h.descr + "' is not float32 (expected '<f4')");
  }
  if (h.shape.size() != 1) {
    fail(name, "shape " + shape_string(h.shape) + " is not 1-D (expected (n,))");
  }
  // fortran_order does not change the layout of a 1-D array, so either value is accepted.
  const std::span<const std::byte> data =
      bytes.subspan(prefix + static_cast<std::size_t>(header_len));
  const std::uint64_t n = h.shape[0];
  if (n > data.size() / 4 || data.size() != n * 4) {
    fail(name, "shape " + shape_string(h.shape) + " needs " + std::to_string(n) +
                   " float32 values but the file holds " + std::to_string(data.size()) +
                   " data bytes");
  }
  return floats_from(data);
}

std::vector<std::byte> format_npy(std::span<const float> values) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(values.size()) + ",), }";
  // Pad with spaces so that preamble + header + '\n' is a multiple of the alignment.
  const std::size_t unpadded = kNpyPrefixV1 + header.size() + 1;
  header.append((kNpyAlignment - unpadded % kNpyAlignment) % kNpyAlignment, ' ');
  header += '\n';
  std::vector<std::byte> out;
  out.reserve(kNpyPrefixV1 + header.size() + values.size_bytes());
  for (char c : kNpyMagic) out.push_back(static_cast<std::byte>(c));
  out.push_back(std::byte{1});
  out.push_back(std::byte{0});
  out.push_back(static_cast<std::byte>(header.size() & 0xFF));
  out.push_back(static_cast<std::byte>(header.size() >> 8));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  const auto* data = reinterpret_cast<const std::byte*>(values.data());
  out.insert(out.end(), data, data + values.size_bytes());
  return out;
}

}  // namespace

ArrayFormat array_format_for(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".npy") return ArrayFormat::kNpy;
  if (ext == ".f32") return ArrayFormat::kF32;
  throw InvalidArgument(path.string() + ": unknown array file extension '" +
                        path.extension().string() +
                        "' (expected .npy for NumPy float32 or .f32 for raw float32)");
}

std::vector<float> parse_array(std::span<const std::byte> bytes, ArrayFormat format,
                               std::string_view name) {
  return format == ArrayFormat::kNpy ? parse_npy(bytes, name) : parse_f32(bytes, name);
}

std::vector<std::byte> format_array(std::span<const float> values, ArrayFormat format) {
  if (format == ArrayFormat::kNpy) return format_npy(values);
  const auto* data = reinterpret_cast<const std::byte*>(values.data());
  return {data, data + values.size_bytes()};
}

std::vector<float> read_array(const std::filesystem::path& path) {
  const ArrayFormat format = array_format_for(path);
  return parse_array(read_file_bytes(path), format, path.string());
}

void write_array(const std::filesystem::path& path, std::span<const float> values) {
  write_file_bytes(path, format_array(values, array_format_for(path)));
}

std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
  const std::string name = path.string();
  const File f(std::fopen(name.c_str(), "rb"));
  if (!f) fail(name, "cannot open for reading: " + system_reason());
  std::vector<std::byte> bytes;
  constexpr std::size_t kChunk = std::size_t{1} << 20;
  // A regular file ends; a device or a pipe (/dev/zero) may not, so its read is bounded.
  struct stat info {};
  const bool regular = ::fstat(::fileno(f.get()), &info) == 0 && S_ISREG(info.st_mode);
  constexpr std::size_t kMaxStreamBytes = std::size_t{1} << 30;
  while (true) {
    if (!regular && bytes.size() >= kMaxStreamBytes) {
      fail(name, "more than 1 GiB read from a device or pipe (copy it into a regular file)");
    }
    const std::size_t old = bytes.size();
    bytes.resize(old + kChunk);
    const std::size_t got = std::fread(bytes.data() + old, 1, kChunk, f.get());
    bytes.resize(old + got);
    if (got < kChunk) break;
  }
  if (std::ferror(f.get()) != 0) fail(name, "read failed: " + system_reason());
  return bytes;
}

void write_file_bytes(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  const std::string name = path.string();
  std::FILE* raw = std::fopen(name.c_str(), "wb");
  if (raw == nullptr) fail(name, "cannot open for writing: " + system_reason());
  File f(raw);
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    fail(name, "write failed: " + system_reason());
  }
  if (std::fclose(f.release()) != 0) fail(name, "write failed: " + system_reason());
}

}  // namespace thinwire
