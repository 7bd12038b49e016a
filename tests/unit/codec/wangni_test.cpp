#include "thinwire/codec/wangni.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "sparse_test_util.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {
namespace {

using testing::decode_vector;
using testing::expect_rejected;
using testing::make_payload;
using testing::payload_of;
using testing::with_payload;

// Σ_i min(1, |v_i|/M), the expected number of kept elements for cap M.
double expected_kept(const std::vector<float>& v, double cap) {
  double sum = 0;
  for (const float x : v) {
    const double a = std::fabs(x);
    if (a > 0) sum += cap == 0 ? 1.0 : std::min(1.0, a / cap);
  }
  return sum;
}

void expect_cap_solves_budget(const std::vector<float>& v, double density, const char* what) {
  const double budget = density * static_cast<double>(v.size());
  const float cap = wangni_cap(v, density);
  const auto nonzero =
      static_cast<double>(std::count_if(v.begin(), v.end(), [](float x) { return x != 0.0f; }));
  if (nonzero <= budget) {
    EXPECT_EQ(cap, 0.0f) << what;
    return;
  }
  // M is defined by F(M) = Σ min(1, |v_i|/M) = R·d (F decreases strictly where it matters, so
  // this pins M down); rounding M to fp32 moves F by a relative 2^-24 at most.
  EXPECT_GT(cap, 0.0f) << what;
  EXPECT_NEAR(expected_kept(v, cap), budget, 1e-6 * budget) << what << ", density " << density;
}

TEST(WangniCapTest, ExpectedCountMatchesTheBudget) {
  for (const double density : {0.01, 0.1, 0.3, 0.5, 0.9, 1.0}) {
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      expect_cap_solves_budget(testing::normal_vector(seed, 257), density, "normal");
      expect_cap_solves_budget(testing::tied_vector(seed, 300), density, "tied");
    }
    expect_cap_solves_budget(std::vector<float>(100, -2.0f), density, "constant");
    std::vector<float> huge(100, 1e-3f);
    huge[5] = 1e30f;
    expect_cap_solves_budget(huge, density, "one huge entry");
    std::vector<float> sparse(100, 0.0f);
    sparse[1] = 1.0f;
    sparse[50] = -0.5f;
    sparse[99] = 0.25f;
    expect_cap_solves_budget(sparse, density, "mostly zeros");
    std::vector<float> ramp(1000);
    for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = std::pow(1.01f, float(i));
    expect_cap_solves_budget(ramp, density, "geometric ramp");
  }
  EXPECT_EQ(wangni_cap(std::vector<float>{}, 0.5), 0.0f);
  EXPECT_EQ(wangni_cap(std::vector<float>{0.0f, 0.0f}, 0.5), 0.0f);
  // A cap beyond the fp32 range is clamped (still unbiased, just sparser than asked).
  const std::vector<float> big(8, 3e38f);
  EXPECT_EQ(wangni_cap(big, 0.125), std::numeric_limits<float>::max());
}

TEST(WangniTest, DecodesToExactOrScaledValues) {
  const std::vector<float> v = testing::normal_vector(4, 500);
  const auto codec = make_codec("wangni:density=0.1");
  const float cap = wangni_cap(v, 0.1);
  ASSERT_GT(cap, 0.0f);
  const auto message = codec->encode(v, {.seed = 1});
  EXPECT_LE(message.size(), codec->max_encoded_bytes(v.size()));
  const auto decoded = decode_vector(message);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (decoded[i] == 0.0f) continue;
    if (std::fabs(v[i]) >= cap) {
      EXPECT_EQ(decoded[i], v[i]) << i;  // p_i = 1: sent exactly
    } else {
      EXPECT_EQ(decoded[i], std::copysign(cap, v[i])) << i;  // v_i / p_i = sgn(v_i)·M
    }
  }
  // Density 1 keeps every non-zero exactly.
  const std::vector<float> w = {0.0f, -1.0f, 2.0f, 0.0f, 1e-30f};
  EXPECT_EQ(decode_vector(make_codec("wangni:density=1")->encode(w)), w);
}

TEST(WangniTest, UnbiasedWithTheTargetDensity) {
  // Element i decodes to v_i/p_i with probability p_i: variance v_i²(1/p_i − 1). The kept count
  // has mean R·d and variance Σ p_i(1 − p_i). Means over N seeds are checked to 5.5 standard
  // errors (64 elements plus the count: a false failure has probability < 1e-5).
  std::vector<float> v = testing::normal_vector(21, 64);
  v[3] = 0.0f;
  v[10] = 25.0f;  // certainly capped
  for (const double density : {0.05, 0.25}) {
    const auto codec = make_codec("wangni:density=" + std::to_string(density));
    const double cap = wangni_cap(v, density);
    const int trials = 4000;
    std::vector<double> mean(v.size(), 0.0);
    double mean_kept = 0;
    for (int t = 0; t < trials; ++t) {
      const auto decoded = decode_vector(codec->encode(v, {.seed = std::uint64_t(t), .rank = 2}));
      for (std::size_t i = 0; i < v.size(); ++i) {
        mean[i] += decoded[i] / double(trials);
        mean_kept += (decoded[i] != 0.0f ? 1.0 : 0.0) / trials;
      }
    }
    double count_variance = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double p = std::min(1.0, std::fabs(v[i]) / cap);
      count_variance += p * (1 - p);
      const double sd = p == 0 ? 0 : std::fabs(v[i]) * std::sqrt((1 / p - 1) / trials);
      EXPECT_NEAR(mean[i], v[i], 5.5 * sd + 1e-6) << "density " << density << " element " << i;
    }
    EXPECT_NEAR(mean_kept, density * static_cast<double>(v.size()),
                5.5 * std::sqrt(count_variance / trials));
  }
}

TEST(WangniTest, SpecIsCanonical) {
  EXPECT_EQ(make_codec("wangni:density=0.010")->spec(), "wangni:density=0.01");
  EXPECT_EQ(make_codec("wangni:density=1")->spec(), "wangni:density=1");
  const auto codec = make_codec("wangni:density=0.3");
  EXPECT_EQ(codec_of(codec->encode(testing::normal_vector(1, 20)))->spec(), codec->spec());
  EXPECT_THROW((void)make_codec("wangni"), InvalidArgument);
  EXPECT_THROW((void)make_codec("wangni:density=0"), InvalidArgument);
  EXPECT_THROW((void)make_codec("wangni:density=1.5"), InvalidArgument);
  EXPECT_TRUE(codec->traits().unbiased);
  EXPECT_FALSE(codec->traits().deterministic);
}

TEST(WangniTest, SizeBoundHoldsAtEveryDensity) {
  for (const double density : {0.01, 0.5, 0.6, 1.0}) {
    const auto codec = make_codec("wangni:density=" + std::to_string(density));
    for (const std::size_t d : {0U, 1U, 2U, 3U, 50U, 999U}) {
      for (std::uint64_t seed = 0; seed < 3; ++seed) {
        const auto message = codec->encode(testing::tied_vector(seed, d), {.seed = seed});
        EXPECT_LE(message.size(), codec->max_encoded_bytes(d)) << density << " d = " << d;
      }
    }
  }
}

TEST(WangniTest, DecoderRejectsInconsistentPayloads) {
  const std::vector<float> v = {0.5f, -4.0f, 0.25f, 0.0f, 1.0f, 0.1f};
  const auto message = make_codec("wangni:density=0.5")->encode(v);
  auto f32 = [](BitWriter& w, float x) { w.put(std::bit_cast<std::uint32_t>(x), 32); };
  auto one_scaled = [&](float cap, std::uint64_t count_plus_one) {
    return make_payload([&](BitWriter& w) {
      f32(w, cap);
      EliasDelta::put(w, count_plus_one);
      for (std::uint64_t j = 1; j < count_plus_one; ++j) EliasDelta::put(w, 1);
      for (std::uint64_t j = 1; j < count_plus_one; ++j) {
        w.put_bit(false);
        w.put_bit(true);
      }
    });
  };
  // Sanity: a hand-made consistent payload decodes.
  std::vector<float> out(6);
  decode_unverified(with_payload(message, one_scaled(2.0f, 2)), out, DecodeMode::kOverwrite);
  EXPECT_EQ(out[0], -2.0f);

  expect_rejected(with_payload(message, std::vector<std::byte>{}), "empty payload");
  expect_rejected(with_payload(message, one_scaled(-2.0f, 2)), "negative cap");
  expect_rejected(with_payload(message, one_scaled(-0.0f, 1)), "negative zero cap");
  expect_rejected(with_payload(message, one_scaled(std::numeric_limits<float>::infinity(), 2)),
                  "infinite cap");
  expect_rejected(with_payload(message, one_scaled(0.0f, 2)), "scaled element with zero cap");
  expect_rejected(with_payload(message, one_scaled(2.0f, 8)), "count 7 > d = 6");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 f32(w, 2.0f);
                                 EliasDelta::put(w, 2);
                                 EliasDelta::put(w, 1);
                                 w.put_bit(true);
                                 f32(w, 1.5f);  // "exact" but below the cap
                               })),
                  "exact value below the cap");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 f32(w, 2.0f);
                                 EliasDelta::put(w, 3);
                                 EliasDelta::put(w, 4);
                                 EliasDelta::put(w, 3);  // index 6 >= d
                                 for (int j = 0; j < 2; ++j) {
                                   w.put_bit(false);
                                   w.put_bit(false);
                                 }
                               })),
                  "index out of range");
  auto extended = payload_of(message);
  extended.push_back(std::byte{0});
  expect_rejected(with_payload(message, extended), "trailing byte");
}

}  // namespace
}  // namespace thinwire::codec
