#include "file_io.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "thinwire/core/error.hpp"

namespace thinwire::data::detail {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// A regular file ends; a device or a pipe (/dev/zero) may not, so its read is bounded, and so is
// what a gzip stream expands to (a small "bomb" can claim terabytes).
constexpr std::size_t kMaxStreamBytes = std::size_t{1} << 30;

// Half of this machine's memory: the most a decompressed file may take.
std::size_t max_inflated_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::size_t{1} << 36;
  return static_cast<std::size_t>(pages) / 2 * static_cast<std::size_t>(page);
}

std::string read_plain(std::FILE* f, const std::string& path) {
  std::string bytes;
  char buffer[1 << 16];
  struct stat info {};
  const bool regular = ::fstat(::fileno(f), &info) == 0 && S_ISREG(info.st_mode);
  for (;;) {
    if (!regular && bytes.size() >= kMaxStreamBytes) {
      throw IoError(path +
                    ": more than 1 GiB read from a device or pipe (copy it into a regular file)");
    }
    const std::size_t got = std::fread(buffer, 1, sizeof buffer, f);
    bytes.append(buffer, got);
    if (got < sizeof buffer) break;
  }
  if (std::ferror(f)) throw IoError(path + ": read failed: " + std::strerror(errno));
  return bytes;
}

// Decompresses a whole gzip file (all members, as gunzip does) with zlib's inflate; an input that
// ends before the stream does is reported as truncated.
std::string read_gzip(std::FILE* f, const std::string& path) {
  const std::string compressed = read_plain(f, path);
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (checked with CRC-32).
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw IoError(path + ": zlib init failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  const std::size_t max_out = max_inflated_bytes();
  char buffer[1 << 16];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof buffer;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - zs.avail_out);
    if (out.size() > max_out) {
      throw IoError(path + ": gzip data expands to more than half of this machine's memory (" +
                    std::to_string(max_out >> 20) + " MiB)");
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Concatenated gzip members are one file to gunzip; decode the next member.
      if (inflateReset(&zs) != Z_OK) throw IoError(path + ": zlib reset failed");
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      throw IoError(path + ": truncated gzip data (unexpected end of file)");
    }
    if (rc != Z_OK) {
      throw IoError(path + ": corrupt gzip data (" + (zs.msg != nullptr ? zs.msg : "zlib error") +
                    ")");
    }
  }
  return out;
}

}  // namespace

std::string read_file(const std::string& path) {
  errno = 0;
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw IoError(path + ": cannot open: " + std::strerror(errno));
  const int b0 = std::fgetc(f.get());
  const int b1 = b0 == EOF ? EOF : std::fgetc(f.get());
  std::rewind(f.get());
  if (b0 == 0x1f && b1 == 0x8b) return read_gzip(f.get(), path);
  return read_plain(f.get(), path);
}

}  // namespace thinwire::data::detail
