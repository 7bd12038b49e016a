// Compress one vector with several codecs and decode it again: message size against the error
// each codec leaves. Every message describes itself, so decode() needs no codec object.
//
//   ./compress_vector
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "thinwire/thinwire.hpp"

int main() {
  namespace codec = thinwire::codec;
  constexpr std::size_t kDim = 1 << 16;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> g(kDim);
  for (float& x : g) x = normal(rng);
  double norm2 = 0.0;
  for (const float x : g) norm2 += static_cast<double>(x) * x;

  std::printf("%-44s %10s %10s %12s\n", "codec", "bytes", "bits/elem", "rel. error");
  for (const char* spec :
       {"identity", "fp16", "qsgd:s=7,bucket=512,norm=max,coding=packed",
        "qsgd:s=1,bucket=512,coding=elias", "terngrad:bucket=512", "topk:k=655", "randk:k=655"}) {
    const auto c = codec::make_codec(spec);
    const std::vector<std::byte> message = c->encode(g, {.seed = 1, .rank = 0, .iteration = 0});
    std::vector<float> out(kDim);
    codec::decode(message, out, codec::DecodeMode::kOverwrite);
    double err2 = 0.0;
    for (std::size_t i = 0; i < kDim; ++i) {
      const double e = static_cast<double>(out[i]) - g[i];
      err2 += e * e;
    }
    if (c->spec() == "identity" && err2 != 0.0) return 1;  // lossless must be exact
    std::printf("%-44s %10zu %10.3f %12.4g\n", c->spec().c_str(), message.size(),
                8.0 * static_cast<double>(message.size()) / kDim, std::sqrt(err2 / norm2));
  }
  return 0;
}
