#include "thinwire/codec/terngrad.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

constexpr std::size_t kParamsBytes = 12;

std::vector<float> gaussian(std::size_t d, std::uint64_t seed) {
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kTest));
  std::vector<float> v(d);
  for (float& x : v) x = static_cast<float>(rng.next_normal());
  return v;
}

std::vector<float> decoded(std::span<const std::byte> msg, std::size_t d) {
  std::vector<float> out(d, -7.0f);
  decode(msg, out, DecodeMode::kOverwrite);
  return out;
}

std::vector<std::byte> hand_message(std::size_t d, std::uint32_t bucket, double clip,
                                    const std::function<void(BitWriter&)>& payload) {
  std::vector<std::byte> buf(1024);
  MessageWriter msg(buf, CodecId::kTernGrad, d);
  msg.params().put_u32(bucket);
  msg.params().put_f64(clip);
  BitWriter w(msg.payload_area());
  payload(w);
  buf.resize(msg.finish(w.finish()));
  return buf;
}

void put_scale(BitWriter& w, float scale) { w.put(std::bit_cast<std::uint32_t>(scale), 32); }

TEST(TernGradTest, SpecsAreCanonicalAndValidated) {
  const auto c = make_codec("terngrad");
  EXPECT_EQ(c->spec(), "terngrad:bucket=512,clip=0");
  EXPECT_TRUE(c->traits().unbiased);
  EXPECT_FALSE(c->traits().deterministic);
  const auto clipped = make_codec("terngrad:clip=2.5,bucket=0");
  EXPECT_EQ(clipped->spec(), "terngrad:bucket=0,clip=2.5");
  EXPECT_FALSE(clipped->traits().unbiased);  // clipping trades bias for variance
  EXPECT_EQ(make_codec(clipped->spec())->spec(), clipped->spec());
  EXPECT_EQ(make_codec("terngrad:clip=0.1")->spec(), "terngrad:bucket=512,clip=0.1");
  for (const char* bad : {"terngrad:clip=-1", "terngrad:clip=x", "terngrad:bucket=-2",
                          "terngrad:bucket=4294967296", "terngrad:s=2"}) {
    EXPECT_THROW((void)make_codec(bad), InvalidArgument) << bad;
  }
}

TEST(TernGradTest, SizeAndTernaryValues) {
  const auto v = gaussian(1100, 1);
  const auto codec = make_codec("terngrad:bucket=512");
  const auto msg = codec->encode(v, {.seed = 3});
  // 3 buckets: 3 scales + 2 bits per element.
  EXPECT_EQ(msg.size(), kHeaderBytes + kParamsBytes + (3 * 32 + 2 * 1100 + 7) / 8);
  EXPECT_EQ(msg.size(), codec->max_encoded_bytes(v.size()));
  const auto out = decoded(msg, v.size());
  for (std::size_t first = 0; first < v.size(); first += 512) {
    float scale = 0.0f;
    for (std::size_t i = first; i < std::min(v.size(), first + 512); ++i) {
      scale = std::max(scale, std::fabs(v[i]));
    }
    for (std::size_t i = first; i < std::min(v.size(), first + 512); ++i) {
      ASSERT_TRUE(out[i] == 0.0f || out[i] == std::copysign(scale, v[i])) << i;
      if (std::fabs(v[i]) == scale) {
        ASSERT_EQ(out[i], v[i]) << "p = 1 always kept";
      }
    }
  }
}

TEST(TernGradTest, ZeroBucketsEmptyAndSingle) {
  std::vector<float> v(20, 0.0f);
  v[15] = -2.0f;
  const auto codec = make_codec("terngrad:bucket=10");
  const auto msg = codec->encode(v);
  EXPECT_EQ(msg.size(), kHeaderBytes + kParamsBytes + (2 * 32 + 2 * 10 + 7) / 8);
  const auto out = decoded(msg, v.size());
  EXPECT_EQ(out, v);  // the only non-zero is its bucket's max: kept with probability 1
  const auto empty = codec->encode(std::span<const float>{});
  EXPECT_EQ(empty.size(), kHeaderBytes + kParamsBytes);
  std::vector<float> none;
  decode(empty, none, DecodeMode::kOverwrite);
  const std::vector<float> one = {0.25f};
  EXPECT_EQ(decoded(codec->encode(one), 1), one);
}

// E Q(v) = v within 5 standard errors per element (Var Q_i = s_t·|v_i| − v_i²), and the mean
// squared error matches terngrad_variance within 5 standard errors of the sample mean.
TEST(TernGradTest, UnbiasedAndVarianceMatches) {
  const auto v = gaussian(48, 2);
  const TernGradParams p{.bucket = 20};
  const TernGradCodec codec(p);
  constexpr int kSeeds = 4000;
  std::vector<double> sum(v.size(), 0.0);
  std::vector<float> out(v.size());
  double total = 0.0;
  for (int n = 0; n < kSeeds; ++n) {
    decode(codec.encode(v, {.seed = static_cast<std::uint64_t>(n), .iteration = 9}), out,
           DecodeMode::kOverwrite);
    for (std::size_t i = 0; i < v.size(); ++i) {
      sum[i] += out[i];
      total += (double{out[i]} - v[i]) * (double{out[i]} - v[i]);
    }
  }
  double exact = 0.0;
  double var_of_sq = 0.0;
  for (std::size_t first = 0; first < v.size(); first += p.bucket) {
    const std::size_t end = std::min(v.size(), first + p.bucket);
    double scale = 0.0;
    for (std::size_t i = first; i < end; ++i) scale = std::max(scale, std::fabs(double{v[i]}));
    for (std::size_t i = first; i < end; ++i) {
      const double a = std::fabs(double{v[i]});
      const double var = scale * a - a * a;
      exact += var;
      // (Q − v)² is (s − a)² w.p. a/s and a² otherwise.
      const double q = a / scale;
      const double m4 = q * std::pow(scale - a, 4) + (1 - q) * std::pow(a, 4);
      var_of_sq += m4 - var * var;
      const double se = std::sqrt(var / kSeeds);
      EXPECT_NEAR(sum[i] / kSeeds, v[i], 5.0 * se + 1e-6 * a) << "element " << i;
    }
  }
  EXPECT_NEAR(terngrad_variance(v, p), exact, 1e-9 * exact);
  EXPECT_NEAR(total / kSeeds, exact, 5.0 * std::sqrt(var_of_sq / kSeeds));
}

TEST(TernGradTest, ClippingBoundsTheScale) {
  std::vector<float> v(100);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = (i % 2 == 0) ? 1.0f : -1.0f;
  v[42] = 100.0f;  // an outlier
  const double sigma = std::sqrt((99.0 + 10000.0) / 100.0);
  const float threshold = static_cast<float>(2.5 * sigma);
  EXPECT_EQ(terngrad_scale(v, 2.5), threshold);
  EXPECT_EQ(terngrad_scale(v, 0.0), 100.0f);
  EXPECT_EQ(terngrad_scale(v, 1000.0), 100.0f);  // c·σ above the max: no clipping
  const auto codec = make_codec("terngrad:bucket=0,clip=2.5");
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    const auto out = decoded(codec->encode(v, {.seed = seed}), v.size());
    EXPECT_EQ(out[42], threshold);  // clipped to s_t: always kept
    for (float x : out) ASSERT_TRUE(x == 0.0f || std::fabs(x) == threshold);
  }
  // A constant bucket is not clipped away (σ is taken about zero).
  const std::vector<float> constant(8, -3.0f);
  EXPECT_EQ(decoded(codec->encode(constant), constant.size()), constant);
}

TEST(TernGradTest, SameContextSameBytes) {
  const auto v = gaussian(500, 4);
  const auto codec = make_codec("terngrad");
  const EncodeContext ctx{.seed = 1, .rank = 2, .iteration = 3};
  EXPECT_EQ(codec->encode(v, ctx), codec->encode(v, ctx));
  EXPECT_NE(codec->encode(v, ctx), codec->encode(v, {.seed = 1, .rank = 2, .iteration = 4}));
  const std::vector<float> inf = {std::numeric_limits<float>::infinity()};
  EXPECT_THROW((void)codec->encode(inf), InvalidArgument);
}

TEST(TernGradTest, DecoderRejectsInconsistentPayloads) {
  std::vector<float> out(3);
  const auto rejects = [&](std::uint32_t bucket, double clip,
                           const std::function<void(BitWriter&)>& bits) {
    const auto msg = hand_message(out.size(), bucket, clip, bits);
    EXPECT_THROW(decode(msg, out, DecodeMode::kOverwrite), CorruptMessage);
  };
  const auto ok = hand_message(3, 0, 0.0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0b100001, 6);  // +, 0, −
  });
  decode(ok, out, DecodeMode::kOverwrite);
  EXPECT_EQ(out, (std::vector<float>{2.0f, 0.0f, -2.0f}));
  rejects(0, 0.0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0b000011, 6);
  });  // code 3
  rejects(0, 0.0, [](BitWriter& w) {
    put_scale(w, -2.0f);
    w.put(0, 6);
  });
  rejects(0, 0.0, [](BitWriter& w) {
    put_scale(w, std::nanf(""));
    w.put(0, 6);
  });
  rejects(0, 0.0, [](BitWriter& w) { put_scale(w, 2.0f); });  // short: the codes are missing
  rejects(0, 0.0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0, 14);
  });  // long
  rejects(0, 0.0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0b1000000, 7);
  });  // padding
  rejects(0, -1.0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0, 6);
  });  // bad clip
  rejects(0, std::nan(""), [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0, 6);
  });
  rejects(0, -0.0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0, 6);
  });
}

}  // namespace
}  // namespace thinwire::codec
