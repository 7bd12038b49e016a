#include "thinwire/tune/selector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "thinwire/codec/message_size.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/tune/rho.hpp"
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

std::vector<std::vector<float>> adversarial_inputs() {
  std::vector<std::vector<float>> inputs;
  inputs.push_back({3.0f});                           // d = 1
  inputs.push_back({0.0f});                           // d = 1, zero
  inputs.push_back(std::vector<float>(1000, 0.0f));   // all zeros
  inputs.push_back(std::vector<float>(1000, 0.25f));  // constant
  inputs.push_back(std::vector<float>(777, -2.0f));   // constant, negative
  {
    std::vector<float> v(2000, 1e-3f);  // one huge entry among ties
    v[1234] = 1e6f;
    inputs.push_back(v);
  }
  {
    std::vector<float> v(1500, 0.0f);  // one huge entry among zeros
    v[7] = -5.0f;
    inputs.push_back(v);
  }
  {
    std::vector<float> v = gaussian(3000, 1, 0.0);  // ties in blocks, zeros in between
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::round(v[i] * 2.0f) / 2.0f;
    inputs.push_back(v);
  }
  inputs.push_back(gaussian(2000, 2, 0.0));   // light-tailed
  inputs.push_back(gaussian(2000, 3, 12.0));  // heavy-tailed
  {
    std::vector<float> v = gaussian(4000, 4, 8.0);  // sparse with structure
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i % 5 != 0) v[i] = 0.0f;
    }
    inputs.push_back(v);
  }
  return inputs;
}

// Acceptance (issue 6): the O(d) selector's θ scores within 1 % of the full-sort oracle's.
TEST(SelectorTest, TopKMatchesSortingOracle) {
  for (const char* spec :
       {"bits", "linear:latency=50us,bandwidth=1Gbit", "linear:latency=1ms,bandwidth=10Mbit",
        "packet:payload=1460B", "packet:payload=128B,per_message=4", "energy"}) {
    const auto cost = make_cost_model(spec);
    int n = 0;
    for (const auto& g : adversarial_inputs()) {
      const Choice chosen = select_topk(g, *cost);
      const Choice oracle = oracle_topk(g, *cost);
      ASSERT_GE(chosen.k, 1u);
      ASSERT_LE(chosen.k, g.size());
      EXPECT_GE(chosen.score, 0.99 * oracle.score)
          << spec << " input " << n << ": chose k=" << chosen.k << ", oracle k=" << oracle.k;
      ++n;
    }
  }
}

TEST(SelectorTest, ChoiceReportsExactBitsOfTheCodec) {
  const auto cost = make_cost_model("bits");
  const std::vector<float> g = gaussian(3000, 5, 10.0);
  const Choice c = select_topk(g, *cost);
  const SelectorOptions options;
  const auto codec = codec::make_codec(c.codec_spec(options));
  EXPECT_EQ(c.bits, 8.0 * static_cast<double>(codec->encode(g).size())) << c.codec_spec(options);
}

TEST(SelectorTest, QsgdChoiceReportsExactBitsOfTheCodec) {
  const std::vector<float> g = gaussian(3000, 7, 4.0);
  for (const char* spec : {"bits", "linear:latency=1ms,bandwidth=10Mbit", "packet"}) {
    const auto cost = make_cost_model(spec);
    const SelectorOptions options{.qsgd = {.levels = 16, .bucket = 512}};  // packed coding
    const Choice c = select_qsgd(g, *cost, options);
    const auto codec = codec::make_codec(c.codec_spec(options));
    EXPECT_EQ(c.bits, 8.0 * static_cast<double>(codec->encode(g).size())) << c.codec_spec(options);
  }
}

TEST(SelectorTest, PacketModelFillsTheLastPacket) {
  for (const char* spec : {"packet:payload=1460B", "packet:payload=200B,per_message=10",
                           "energy:payload=102B,header=25B"}) {
    const auto cost = make_cost_model(spec);
    for (const auto& g : adversarial_inputs()) {
      const Choice c = select_topk(g, *cost);
      if (c.k >= g.size()) continue;  // nothing left to add
      std::vector<std::uint32_t> scratch;
      const Choice next = evaluate_topk(g, c.k + 1, squared_norm(g), *cost, {}, scratch);
      // One more element would need another packet.
      EXPECT_GT(next.bits, static_cast<double>(cost->fill_bits(static_cast<std::uint64_t>(c.bits))))
          << spec << " k=" << c.k;
    }
  }
}

TEST(SelectorTest, ZeroAndEmptyVectors) {
  const auto cost = make_cost_model("bits");
  const std::vector<float> empty;
  EXPECT_EQ(select_topk(empty, *cost).k, 0u);
  const std::vector<float> zeros(100, 0.0f);
  EXPECT_EQ(select_topk(zeros, *cost).k, 1u);  // ρ = 1 everywhere: the cheapest message
}

TEST(SelectorTest, GridFamiliesPickTheirBestCandidate) {
  const auto cost = make_cost_model("linear:latency=20us,bandwidth=100Mbit");
  const std::vector<float> g = gaussian(2048, 6, 6.0);
  const SelectorOptions options{.qsgd = {.levels = 16, .bucket = 512}};
  const Choice q = select_qsgd(g, *cost, options);
  std::vector<double> scratch;
  for (std::uint32_t s = 1; s <= 256; s *= 2) {
    codec::QsgdParams p = options.qsgd;
    p.levels = s;
    const double score = score_of(
        rho_qsgd(g, p),
        cost->cost(static_cast<std::uint64_t>(std::llround(qsgd_message_bits(g, p, scratch)))));
    EXPECT_GE(q.score, score) << "s=" << s;
  }
  for (const Family f : {Family::kRandK, Family::kWangni, Family::kTernGrad, Family::kTopKQsgd}) {
    const Choice c = select_level(f, g, *cost, options);
    EXPECT_GT(c.score, 0.0) << family_name(f);
    EXPECT_GT(c.rho, 0.0) << family_name(f);
    EXPECT_LE(c.rho, 1.0) << family_name(f);
    EXPECT_NO_THROW((void)codec::make_codec(c.codec_spec(options))) << c.codec_spec(options);
  }
}

TEST(SelectorTest, FamilyNamesRoundTrip) {
  for (const Family f : {Family::kTopK, Family::kRandK, Family::kWangni, Family::kQsgd,
                         Family::kTernGrad, Family::kTopKQsgd}) {
    EXPECT_EQ(parse_family(family_name(f)), f);
  }
  EXPECT_THROW((void)parse_family("top-k"), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::tune
