// reseal FILE: recomputes the checksum of a thinwire message in place, so that the reliability
// suite can forge messages whose header lies (a huge element count, a NaN payload) and still
// reach the checks behind the checksum. Test tooling only.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

#include "thinwire/core/checksum.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: reseal FILE\n");
    return 2;
  }
  std::vector<char> bytes;
  {
    std::ifstream in(argv[1], std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  constexpr std::size_t kChecksumOffset = 24;
  constexpr std::size_t kHeaderBytes = 32;
  if (bytes.size() < kHeaderBytes) {
    std::fprintf(stderr, "reseal: %s is shorter than a header\n", argv[1]);
    return 1;
  }
  const auto* data = reinterpret_cast<const std::byte*>(bytes.data());
  thinwire::Checksum64 sum;
  sum.update(data, kChecksumOffset);
  sum.update(data + kHeaderBytes, bytes.size() - kHeaderBytes);
  std::uint64_t digest = sum.digest();
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[kChecksumOffset + i] = static_cast<char>(digest & 0xFF);
    digest >>= 8;
  }
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out ? 0 : 1;
}
