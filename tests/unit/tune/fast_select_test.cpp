// The cheap dynamic decisions of issue 18 (docs/tuning.md, "Cost of a decision"): the QSGD
// variance estimate from a sample of blocks, the QSGD choice against the exact grid, and the top-k
// search over gathered elements against the full-sort oracle, on vectors long enough to take the
// sampled paths (more than 1024 blocks of 64 elements).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "thinwire/codec/message_size.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/tune/rho.hpp"
#include "thinwire/tune/selector.hpp"
#include "topk_oracle.hpp"

namespace thinwire::tune {

// Message sizes are the codec layer's (codec/message_size.hpp).
using codec::qsgd_message_bits;
namespace {

using testing::oracle_topk;

std::vector<float> gaussian(std::size_t d, std::uint64_t seed, double tail) {
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kSparsify);
  std::vector<float> v(d);
  for (std::size_t i = 0; i < d; ++i) {
    const double u = key.uniform_double(3 * i);
    const double w = key.uniform_double(3 * i + 1);
    const double z = std::sqrt(-2.0 * std::log(1.0 - u)) * std::cos(6.283185307179586 * w);
    v[i] = static_cast<float>(z * std::exp2(tail * key.uniform_double(3 * i + 2)));
  }
  return v;
}

// Long inputs: light and heavy tails, a slowly varying scale (layers of a model), sparse, and one
// block that dominates the vector.
std::vector<std::vector<float>> long_inputs() {
  constexpr std::size_t d = (std::size_t{1} << 17) + 37;
  std::vector<std::vector<float>> inputs;
  inputs.push_back(gaussian(d, 11, 0.0));
  inputs.push_back(gaussian(d, 12, 4.0));
  inputs.push_back(gaussian(d, 13, 12.0));
  {
    std::vector<float> v = gaussian(d, 14, 2.0);
    for (std::size_t i = 0; i < d; ++i) {
      v[i] *= static_cast<float>(std::exp(-8.0 * static_cast<double>(i) / static_cast<double>(d)));
    }
    inputs.push_back(v);
  }
  {
    std::vector<float> v = gaussian(d, 15, 6.0);
    for (std::size_t i = 0; i < d; ++i) {
      if (i % 7 != 0) v[i] = 0.0f;
    }
    inputs.push_back(v);
  }
  {
    std::vector<float> v = gaussian(d, 16, 0.0);
    for (std::size_t i = 70000; i < 70064; ++i) v[i] *= 1000.0f;
    inputs.push_back(v);
  }
  return inputs;
}

// The estimate's tolerance (selector.cpp kQsgdTolerance): the variance of every (bucket, s) within
// 8 % of qsgd_variance on long vectors (sampled; 5.8 % is the largest error here, on the
// heavy-tailed input), within 1e-5 on short ones (every block, fp32 sums); the bits exact.
TEST(FastSelectTest, QsgdEstimateMatchesExactVariance) {
  std::vector<std::vector<float>> inputs = long_inputs();
  inputs.push_back(gaussian(5000, 17, 4.0));
  inputs.push_back(gaussian(16000, 18, 12.0));
  for (std::size_t n = 0; n < inputs.size(); ++n) {
    const std::vector<float>& g = inputs[n];
    const double tolerance = g.size() <= 256 * 64 ? 1e-5 : 0.08;
    for (const auto norm : {codec::QsgdParams::Norm::kL2, codec::QsgdParams::Norm::kMax}) {
      const codec::QsgdParams configured{.levels = 16, .bucket = 500, .norm = norm};
      std::vector<double> scratch;
      for (const QsgdEstimate& e : estimate_qsgd(g, configured)) {
        codec::QsgdParams p = configured;
        p.levels = e.levels;
        p.bucket = e.bucket;
        const double exact = codec::qsgd_variance(g, p);
        EXPECT_NEAR(e.variance, exact, tolerance * exact)
            << "input " << n << " " << codec::qsgd_params_spec(p);
        EXPECT_EQ(e.bits, qsgd_message_bits(g, p, scratch)) << codec::qsgd_params_spec(p);
      }
    }
  }
}

// The choice scores within 1 % of the best candidate of the exact grid (every bucket setting,
// s = 2^j and 2^(j+1) − 1), and reports the encoded size of the codec it names and its ρ: within
// 1e-6 of rho_qsgd where a runner-up was scored exactly, else from the estimated variance (within 8
// %, so ρ = T/(T + V) within 8 %·(1 − ρ)).
TEST(FastSelectTest, QsgdChoiceMatchesExactGrid) {
  for (const char* spec : {"bits", "linear:latency=50us,bandwidth=1Gbit", "packet:payload=1460B"}) {
    const auto cost = make_cost_model(spec);
    int n = 0;
    for (const auto& g : long_inputs()) {
      const SelectorOptions options{.qsgd = {.levels = 16, .bucket = 512}};
      const Choice c = select_qsgd(g, *cost, options);
      double best = -1.0;
      std::vector<double> scratch;
      for (const std::uint32_t bucket : {512u, 64u, 256u, 1024u, 0u}) {
        // s = 2^j and 2^(j+1) − 1 (1, 2, 3, 4, 7, 8, ..., 256, 511): the packed field of
        // 2^j also holds 2^(j+1) − 1, with less variance, so the choice must find the latter.
        for (std::uint32_t j = 0; j <= 9; ++j) {
          for (const std::uint32_t s : {std::uint32_t{1} << j, (std::uint32_t{2} << j) - 1}) {
            if (s > 511) continue;
            codec::QsgdParams p = options.qsgd;
            p.levels = s;
            p.bucket = bucket;
            const double bits = qsgd_message_bits(g, p, scratch);
            best = std::max(best,
                            score_of(rho_qsgd(g, p),
                                     cost->cost(static_cast<std::uint64_t>(std::llround(bits)))));
          }
        }
      }
      EXPECT_GE(c.score, 0.99 * best) << spec << " input " << n << ": " << c.codec_spec(options);
      codec::QsgdParams p = options.qsgd;
      p.levels = c.levels;
      p.bucket = c.bucket;
      const double rho = rho_qsgd(g, p);
      EXPECT_NEAR(c.rho, rho, std::max(1e-6, 0.08 * (1.0 - rho)) * rho) << spec << " input " << n;
      const auto codec = codec::make_codec(c.codec_spec(options));
      EXPECT_EQ(c.bits, 8.0 * static_cast<double>(codec->encode(g).size()))
          << c.codec_spec(options);
      ++n;
    }
  }
}

// A non-finite element is reported as the encoder reports it, not chosen around.
TEST(FastSelectTest, QsgdRejectsNonFiniteLongVectors) {
  std::vector<float> g = gaussian((std::size_t{1} << 17) + 37, 19, 2.0);
  g[12345] = std::numeric_limits<float>::quiet_NaN();
  const auto cost = make_cost_model("bits");
  EXPECT_THROW((void)select_qsgd(g, *cost, {.qsgd = {.levels = 16, .bucket = 512}}),
               InvalidArgument);
}

// The search over gathered elements: the choice of the same search over all of g, within 1 % of
// the oracle's score, and the exact bits of the codec it names, on long vectors and cost models
// whose best k is small or large.
TEST(FastSelectTest, TopKOnLongVectorsMatchesSortingOracle) {
  for (const char* spec : {"bits", "linear:latency=50us,bandwidth=1Gbit",
                           "linear:latency=1ms,bandwidth=10Mbit", "packet:payload=1460B"}) {
    const auto cost = make_cost_model(spec);
    int n = 0;
    for (const auto& g : long_inputs()) {
      const Choice chosen = select_topk(g, *cost);
      const Choice oracle = oracle_topk(g, *cost);
      EXPECT_GE(chosen.score, 0.99 * oracle.score)
          << spec << " input " << n << ": chose k=" << chosen.k << ", oracle k=" << oracle.k;
      // The gathered elements hold every bin the search needs: the same choice as on all of g.
      const Choice full = select_topk_full(g, *cost);
      EXPECT_EQ(chosen.k, full.k) << spec << " input " << n;
      EXPECT_EQ(chosen.score, full.score) << spec << " input " << n;
      const SelectorOptions options;
      const auto codec = codec::make_codec(chosen.codec_spec(options));
      EXPECT_EQ(chosen.bits, 8.0 * static_cast<double>(codec->encode(g).size()))
          << spec << " input " << n;
      ++n;
    }
  }
}

}  // namespace
}  // namespace thinwire::tune
