// Writes the fuzzer's seed corpus: valid messages of every example codec spec at a few lengths
// and input shapes, each behind every value of the fuzzer's path byte (see decode_fuzz.cpp), so
// libFuzzer starts from inputs that pass the header checks and reach each payload decoder.
//
// Usage: thinwire_fuzz_corpus DIR   (DIR is created; files are named NNNN-<codec>-<length>)
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<float> input(std::size_t n, std::uint64_t seed) {
  thinwire::RngStream rng(thinwire::RngKey::make(seed, 0, 0, thinwire::RngPurpose::kTest));
  std::vector<float> v(n);
  // Heavy-tailed values with some exact zeros, so sparse codecs keep a mix of entries.
  for (std::size_t i = 0; i < n; ++i) {
    const double z = rng.next_normal();
    v[i] = i % 7 == 3 ? 0.0f : static_cast<float>(z * std::exp(rng.next_normal()));
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    fs::create_directories(dir);
    std::size_t count = 0;
    for (const std::string& spec : thinwire::codec::example_codec_specs()) {
      const auto codec = thinwire::codec::parse_codec(spec).codec;
      for (std::size_t n : {0u, 1u, 5u, 64u, 300u}) {
        const std::vector<std::byte> message =
            codec->encode(input(n, count), {.seed = count, .rank = 0, .iteration = 0});
        for (unsigned path = 0; path < 4; ++path) {
          char name[32];
          std::snprintf(name, sizeof name, "%04zu-", count++);
          std::ofstream out(dir / (name + spec.substr(0, spec.find(':')) + "-" + std::to_string(n)),
                            std::ios::binary);
          out.put(static_cast<char>(path));
          out.write(reinterpret_cast<const char*>(message.data()),
                    static_cast<std::streamsize>(message.size()));
          if (!out) throw std::runtime_error("cannot write into " + dir.string());
        }
      }
    }
    std::printf("wrote %zu seed inputs to %s\n", count, dir.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
