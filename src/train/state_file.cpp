#include "thinwire/train/state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <string>

#include "thinwire/core/array_file.hpp"
#include "thinwire/core/checksum.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::train {
namespace {

constexpr char kMagic[4] = {'T', 'W', 'C', 'K'};
constexpr std::uint32_t kVersion = 1;

void append_le(std::vector<std::byte>& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}

std::uint64_t load_le(std::span<const std::byte> in, std::size_t offset, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(in[offset + i]) << (8 * i);
  return v;
}

std::size_t element_size(std::uint8_t kind) {
  switch (kind) {
    case 1:
      return 4;  // float
    case 2:
    case 3:
      return 8;  // u64, f64 bits
    case 4:
      return 1;  // bytes
    default:
      return 0;
  }
}

[[noreturn]] void fail_io(const std::filesystem::path& path, std::string_view what) {
  throw IoError(path.string() + ": " + std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

void StateBundle::put(std::string_view name, Kind kind, std::vector<std::byte> data) {
  if (name.empty() || name.size() > 0xFFFF) {
    throw InvalidArgument("state bundle: section names must have 1 to 65535 characters");
  }
  sections_.insert_or_assign(std::string(name), Section{kind, std::move(data)});
}

void StateBundle::put_floats(std::string_view name, std::span<const float> values) {
  std::vector<std::byte> data(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(data.data(), values.data(), data.size());
  put(name, Kind::kFloats, std::move(data));
}

void StateBundle::put_u64(std::string_view name, std::uint64_t value) {
  std::vector<std::byte> data;
  append_le(data, value, 8);
  put(name, Kind::kU64, std::move(data));
}

void StateBundle::put_f64(std::string_view name, double value) {
  std::vector<std::byte> data;
  append_le(data, std::bit_cast<std::uint64_t>(value), 8);
  put(name, Kind::kF64, std::move(data));
}

void StateBundle::put_bytes(std::string_view name, std::span<const std::byte> bytes) {
  put(name, Kind::kBytes, std::vector<std::byte>(bytes.begin(), bytes.end()));
}

void StateBundle::put_string(std::string_view name, std::string_view text) {
  put_bytes(name, std::as_bytes(std::span(text.data(), text.size())));
}

bool StateBundle::has(std::string_view name) const {
  return sections_.find(name) != sections_.end();
}

const StateBundle::Section& StateBundle::get(std::string_view name, Kind kind) const {
  const auto it = sections_.find(name);
  if (it == sections_.end()) {
    throw IoError(source_ + ": missing section '" + std::string(name) + "'");
  }
  if (it->second.kind != kind) {
    throw IoError(source_ + ": section '" + std::string(name) + "' has another type");
  }
  return it->second;
}

std::vector<float> StateBundle::get_floats(std::string_view name) const {
  const Section& s = get(name, Kind::kFloats);
  std::vector<float> values(s.data.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), s.data.data(), s.data.size());
  return values;
}

std::uint64_t StateBundle::get_u64(std::string_view name) const {
  return load_le(get(name, Kind::kU64).data, 0, 8);
}

double StateBundle::get_f64(std::string_view name) const {
  return std::bit_cast<double>(load_le(get(name, Kind::kF64).data, 0, 8));
}

std::vector<std::byte> StateBundle::get_bytes(std::string_view name) const {
  return get(name, Kind::kBytes).data;
}

std::string StateBundle::get_string(std::string_view name) const {
  const Section& s = get(name, Kind::kBytes);
  return std::string(reinterpret_cast<const char*>(s.data.data()), s.data.size());
}

std::vector<std::byte> StateBundle::serialize() const {
  std::vector<std::byte> out;
  std::size_t total = 20;
  for (const auto& [name, section] : sections_) total += 11 + name.size() + section.data.size();
  out.reserve(total);
  for (char c : kMagic) out.push_back(static_cast<std::byte>(c));
  append_le(out, kVersion, 4);
  append_le(out, sections_.size(), 4);
  for (const auto& [name, section] : sections_) {
    append_le(out, name.size(), 2);
    for (char c : name) out.push_back(static_cast<std::byte>(c));
    out.push_back(static_cast<std::byte>(section.kind));
    append_le(out, section.data.size() / element_size(static_cast<std::uint8_t>(section.kind)), 8);
    out.insert(out.end(), section.data.begin(), section.data.end());
  }
  append_le(out, checksum64(out), 8);
  return out;
}

StateBundle StateBundle::parse(std::span<const std::byte> bytes, std::string source) {
  auto fail = [&](const std::string& what) -> IoError {
    return IoError(source + ": " + what + " (not an intact thinwire state file)");
  };
  if (bytes.size() < 20) throw fail("file too short");
  for (std::size_t i = 0; i < 4; ++i) {
    if (bytes[i] != static_cast<std::byte>(kMagic[i])) throw fail("bad magic");
  }
  const std::size_t body = bytes.size() - 8;
  if (checksum64(bytes.first(body)) != load_le(bytes, body, 8)) throw fail("checksum mismatch");
  if (load_le(bytes, 4, 4) != kVersion) {
    throw fail("unsupported version " + std::to_string(load_le(bytes, 4, 4)));
  }
  StateBundle bundle;
  bundle.source_ = source;
  const std::uint64_t count = load_le(bytes, 8, 4);
  std::size_t pos = 12;
  for (std::uint64_t s = 0; s < count; ++s) {
    if (body - pos < 2) throw fail("truncated section header");
    const std::size_t name_len = load_le(bytes, pos, 2);
    pos += 2;
    if (body - pos < name_len + 9) throw fail("truncated section header");
    std::string name(reinterpret_cast<const char*>(bytes.data() + pos), name_len);
    pos += name_len;
    const auto kind = static_cast<std::uint8_t>(bytes[pos]);
    pos += 1;
    const std::size_t width = element_size(kind);
    if (width == 0) throw fail("section '" + name + "' has unknown kind " + std::to_string(kind));
    const std::uint64_t elements = load_le(bytes, pos, 8);
    pos += 8;
    if (elements > (body - pos) / width) throw fail("section '" + name + "' is truncated");
    const std::size_t size = static_cast<std::size_t>(elements) * width;
    if ((kind == 2 || kind == 3) && elements != 1) throw fail("section '" + name + "' malformed");
    bundle.sections_.insert_or_assign(
        std::move(name),
        Section{static_cast<Kind>(kind),
                std::vector<std::byte>(bytes.begin() + pos, bytes.begin() + pos + size)});
    pos += size;
  }
  if (pos != body) throw fail("trailing bytes after the last section");
  return bundle;
}

StateBundle StateBundle::read(const std::filesystem::path& path) {
  return parse(read_file_bytes(path), path.string());
}

void StateBundle::write(const std::filesystem::path& path) const {
  write_file_atomic(path, serialize());
}

void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_io(tmp, "cannot create");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      fail_io(tmp, "write failed");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    fail_io(tmp, "fsync failed");
  }
  if (::close(fd) != 0) fail_io(tmp, "close failed");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail_io(path, "rename failed");
  }
  // The rename is durable only once the directory entry is on disk.
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace thinwire::train
