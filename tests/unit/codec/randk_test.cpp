#include "thinwire/codec/randk.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string>
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

TEST(SampleWithoutReplacementTest, DistinctAscendingAndComplete) {
  std::vector<std::uint32_t> out;
  for (const std::size_t d : {0U, 1U, 2U, 9U, 100U, 1000U}) {
    for (const std::size_t k : {0U, 1U, 2U, 5U, 12U, 100U, 125U, 126U, 999U, 1000U, 5000U}) {
      sample_without_replacement(testing::test_key(d * 7919 + k), d, k, out);
      ASSERT_EQ(out.size(), std::min(k, d)) << "d = " << d << " k = " << k;
      for (std::size_t j = 0; j < out.size(); ++j) {
        ASSERT_LT(out[j], d);
        if (j > 0) {
          ASSERT_LT(out[j - 1], out[j]) << "d = " << d << " k = " << k;
        }
      }
    }
  }
}

TEST(SampleWithoutReplacementTest, SameKeySameIndices) {
  std::vector<std::uint32_t> a;
  std::vector<std::uint32_t> b;
  sample_without_replacement(testing::test_key(4), 100000, 30, a);
  sample_without_replacement(testing::test_key(4), 100000, 30, b);
  EXPECT_EQ(a, b);
  sample_without_replacement(testing::test_key(5), 100000, 30, b);
  EXPECT_NE(a, b);
}

// Every index is kept with probability k/d: over N keys its count is Binomial(N, k/d); 5.5
// standard deviations make a false failure among the d indices unlikely (< 1e-6 overall).
void expect_uniform_inclusion(std::size_t d, std::size_t k, int trials) {
  std::vector<int> hits(d, 0);
  std::vector<std::uint32_t> out;
  for (int t = 0; t < trials; ++t) {
    sample_without_replacement(RngKey::make(77, 0, std::uint64_t(t), RngPurpose::kTest), d, k, out);
    for (const std::uint32_t i : out) ++hits[i];
  }
  const double p = static_cast<double>(k) / static_cast<double>(d);
  const double mean = trials * p;
  const double sd = std::sqrt(trials * p * (1 - p));
  for (std::size_t i = 0; i < d; ++i) {
    EXPECT_NEAR(hits[i], mean, 5.5 * sd) << "index " << i << " d = " << d << " k = " << k;
  }
}

TEST(SampleWithoutReplacementTest, UniformInclusionBothMethods) {
  expect_uniform_inclusion(64, 3, 20000);   // Floyd (k <= d/8)
  expect_uniform_inclusion(64, 8, 20000);   // Floyd, at the boundary
  expect_uniform_inclusion(64, 9, 20000);   // selection sampling
  expect_uniform_inclusion(64, 50, 20000);  // selection sampling
}

// The sampler as it was first written: Floyd's algorithm over a std::set, then the set's order.
// Faster samplers must pick exactly these indices (messages and shared-seed decoding depend on
// it).
std::vector<std::uint32_t> reference_sample(RngKey key, std::size_t d, std::size_t k) {
  k = std::min(k, d);
  std::vector<std::uint32_t> out;
  if (k == d) {
    for (std::size_t i = 0; i < d; ++i) out.push_back(static_cast<std::uint32_t>(i));
  } else if (k > d / 8) {
    std::size_t need = k;
    for (std::size_t i = 0; need > 0; ++i) {
      if (key.below(i, d - i) < need) {
        out.push_back(static_cast<std::uint32_t>(i));
        --need;
      }
    }
  } else {
    std::set<std::uint32_t> taken;
    RngStream rng(key);
    for (std::size_t j = d - k; j < d; ++j) {
      const auto t = static_cast<std::uint32_t>(rng.next_below(j + 1));
      taken.insert(taken.contains(t) ? static_cast<std::uint32_t>(j) : t);
    }
    out.assign(taken.begin(), taken.end());
  }
  return out;
}

TEST(SampleWithoutReplacementTest, SameIndicesAsTheReferenceFloyd) {
  struct Case {
    std::size_t d;
    std::size_t k;
  };
  const Case cases[] = {{1, 1},          {2, 1},         {63, 1},         {64, 8},
                        {65, 8},         {100, 12},      {1000, 125},     {1000, 124},
                        {4097, 1},       {4096, 1},      {8191, 1},       {8192, 2},
                        {100003, 24},    {100003, 25},   {100003, 1000},  {100003, 12500},
                        {1 << 20, 255},  {1 << 20, 256}, {1 << 20, 1000}, {(1 << 20) + 37, 131076},
                        {1 << 22, 41943}};
  std::vector<std::uint32_t> out;
  for (const Case& c : cases) {
    for (std::uint64_t seed = 0; seed < 3; ++seed) {
      const RngKey key = testing::test_key(1000 * seed + c.k);
      sample_without_replacement(key, c.d, c.k, out);
      ASSERT_EQ(out, reference_sample(key, c.d, c.k)) << "d = " << c.d << " k = " << c.k;
    }
  }
  // Dense enough that Floyd's draws often collide (k = d/8), at every d near a word boundary.
  for (std::size_t d = 120; d < 200; ++d) {
    for (const std::size_t k : {std::size_t{1}, d / 16, d / 8}) {
      sample_without_replacement(testing::test_key(d), d, k, out);
      ASSERT_EQ(out, reference_sample(testing::test_key(d), d, k)) << "d = " << d << " k = " << k;
    }
  }
}

// The payload written the plain way: the reference indices as Elias-delta gaps (unless
// shared), then every kept value as a raw float32.
std::vector<std::byte> reference_payload(std::span<const float> v, RngKey key, std::size_t k,
                                         bool shared) {
  const std::vector<std::uint32_t> kept = reference_sample(key, v.size(), k);
  std::vector<std::byte> buffer(16 * kept.size() + 64);
  BitWriter w(buffer);
  std::uint64_t next = 0;
  for (const std::uint32_t i : kept) {
    if (!shared) EliasDelta::put(w, i + 1 - next);
    next = std::uint64_t{i} + 1;
  }
  for (const std::uint32_t i : kept) w.put(std::bit_cast<std::uint32_t>(v[i]), 32);
  buffer.resize(w.finish());
  return buffer;
}

TEST(RandKTest, MessagesMatchTheReferenceEncoding) {
  for (const std::size_t d : {std::size_t{1}, std::size_t{9}, std::size_t{64}, std::size_t{200},
                              std::size_t{4095}, std::size_t{100003}, std::size_t{1} << 20}) {
    const std::vector<float> v = testing::normal_vector(d, d);
    for (const char* spec :
         {"randk:k=1", "randk:k=0.01", "randk:k=0.1", "randk:k=0.125", "randk:k=0.3",
          "randk:k=0.01,shared_seed=5", "randk:k=3,shared_seed=2"}) {
      const auto codec = make_codec(spec);
      const auto& randk = static_cast<const RandKCodec&>(*codec);
      const EncodeContext ctx{.seed = 11, .rank = 2, .iteration = 7};
      const RngKey key = randk.shared_seed()
                             ? RngKey::make(*randk.shared_seed(), 0, 7, RngPurpose::kSharedIndex)
                             : ctx.key(RngPurpose::kSparsify);
      const auto message = codec->encode(v, ctx);
      EXPECT_EQ(payload_of(message),
                reference_payload(v, key, randk.kept(d), randk.shared_seed().has_value()))
          << spec << " d = " << d;
    }
  }
}

TEST(RandKTest, RejectsNonFiniteInputNamingTheElement) {
  std::vector<float> v = testing::normal_vector(2, 10000);
  v[7777] = std::numeric_limits<float>::quiet_NaN();
  v[9000] = std::numeric_limits<float>::infinity();
  try {
    (void)make_codec("randk:k=0.01")->encode(v);
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("input element 7777 is not finite"), std::string::npos)
        << e.what();
  }
}

// Wherever the bad element sits (kept or not, in a whole group of the one-pass encoder or in
// its tail), and with or without indices in the message.
TEST(RandKTest, RejectsNonFiniteInputAnywhere) {
  const std::size_t d = 10000;  // 39 groups of 256 and a tail of 16
  for (const char* spec : {"randk:k=0.01", "randk:k=0.01,shared_seed=8", "randk:k=0.2"}) {
    for (const std::size_t at : {std::size_t{0}, std::size_t{255}, std::size_t{256},
                                 std::size_t{9983}, std::size_t{9984}, std::size_t{9999}}) {
      for (const float bad :
           {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
            -std::numeric_limits<float>::infinity()}) {
        std::vector<float> v = testing::normal_vector(3, d);
        v[at] = bad;
        try {
          (void)make_codec(spec)->encode(v);
          ADD_FAILURE() << spec << ": no exception for element " << at;
        } catch (const InvalidArgument& e) {
          EXPECT_NE(
              std::string(e.what()).find("input element " + std::to_string(at) + " is not finite"),
              std::string::npos)
              << e.what();
        }
      }
    }
  }
}

TEST(RandKTest, OverflowErrorNamesTheFirstKeptElement) {
  const std::size_t d = 10000;
  std::vector<float> v(d, 3e38f);  // every kept value overflows once scaled by d/k = 100
  std::vector<std::uint32_t> kept;
  const auto codec = make_codec("randk:k=0.01");
  static_cast<const RandKCodec&>(*codec).indices(d, {.seed = 4}, kept);
  try {
    (void)codec->encode(v, {.seed = 4});
    ADD_FAILURE() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("element " + std::to_string(kept[0]) + " ("),
              std::string::npos)
        << e.what();
  }
}

TEST(RandKTest, KeepsKElementsScaledByDOverK) {
  const auto codec = make_codec("randk:k=0.25");
  const std::vector<float> v = testing::normal_vector(1, 40);
  const std::vector<float> decoded = decode_vector(codec->encode(v, {.seed = 3}));
  std::size_t kept = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (decoded[i] != 0.0f) {
      ++kept;
      EXPECT_EQ(decoded[i], static_cast<float>(static_cast<double>(v[i]) * 4.0)) << i;
    }
  }
  EXPECT_EQ(kept, 10U);
  // Edge sizes: nothing to keep, and k >= d (scale 1: lossless).
  EXPECT_TRUE(decode_vector(codec->encode(std::vector<float>{})).empty());
  const std::vector<float> small = {1.5f, -2.0f, 0.0f};
  EXPECT_EQ(decode_vector(make_codec("randk:k=5")->encode(small)), small);
  EXPECT_EQ(decode_vector(make_codec("randk:k=3,shared_seed=1")->encode(small)), small);
}

// E decode = v. Element i decodes to (d/k)·v_i with probability k/d, else 0: variance
// v_i²·(d/k - 1); the mean over N seeds is within 5.5 standard errors (d = 48 elements).
void expect_unbiased(const std::string& spec) {
  const auto codec = make_codec(spec);
  const std::vector<float> v = testing::normal_vector(8, 48);
  const int trials = 4000;
  std::vector<double> mean(v.size(), 0.0);
  for (int t = 0; t < trials; ++t) {
    const auto decoded = decode_vector(codec->encode(v, {.seed = std::uint64_t(t), .rank = 1}));
    for (std::size_t i = 0; i < v.size(); ++i) mean[i] += decoded[i] / double(trials);
  }
  const double ratio = static_cast<double>(v.size()) / 6.0;  // k = 6
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double sd = std::fabs(v[i]) * std::sqrt((ratio - 1.0) / trials);
    EXPECT_NEAR(mean[i], v[i], 5.5 * sd + 1e-6) << spec << " element " << i;
  }
}

TEST(RandKTest, UnbiasedOverSeeds) {
  expect_unbiased("randk:k=6");
  expect_unbiased("randk:k=0.125");
}

TEST(RandKTest, UnbiasedOverIterationsWithSharedSeed) {
  const auto codec = make_codec("randk:k=6,shared_seed=42");
  const std::vector<float> v = testing::normal_vector(8, 48);
  const int trials = 4000;
  std::vector<double> mean(v.size(), 0.0);
  for (int t = 0; t < trials; ++t) {
    const auto decoded = decode_vector(codec->encode(v, {.iteration = std::uint64_t(t)}));
    for (std::size_t i = 0; i < v.size(); ++i) mean[i] += decoded[i] / double(trials);
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double sd = std::fabs(v[i]) * std::sqrt((8.0 - 1.0) / trials);
    EXPECT_NEAR(mean[i], v[i], 5.5 * sd + 1e-6) << "element " << i;
  }
}

TEST(RandKTest, SharedSeedGivesTheSameIndicesOnEveryRankWithoutSendingThem) {
  const auto codec = make_codec("randk:k=0.1,shared_seed=9");
  const auto& randk = static_cast<const RandKCodec&>(*codec);
  const std::size_t d = 500;
  const std::size_t k = randk.kept(d);
  std::vector<std::uint32_t> reference;
  randk.indices(d, {.seed = 1, .rank = 0, .iteration = 17}, reference);
  std::vector<std::vector<std::byte>> messages;
  for (std::uint32_t rank = 0; rank < 4; ++rank) {
    const EncodeContext ctx{.seed = 100 + rank, .rank = rank, .iteration = 17};
    std::vector<std::uint32_t> indices;
    randk.indices(d, ctx, indices);
    EXPECT_EQ(indices, reference) << "rank " << rank;
    const auto v = testing::normal_vector(rank, d);
    messages.push_back(codec->encode(v, ctx));
    // No indices on the wire: the payload is exactly k float32 values.
    EXPECT_EQ(payload_of(messages.back()).size(), 4 * k);
    const auto decoded = decode_vector(messages.back());
    std::vector<std::uint32_t> support;
    for (std::uint32_t i = 0; i < d; ++i) {
      if (decoded[i] != 0.0f) support.push_back(i);
    }
    EXPECT_EQ(support, reference) << "rank " << rank;
  }
  // Another iteration draws another index set.
  std::vector<std::uint32_t> other;
  randk.indices(d, {.iteration = 18}, other);
  EXPECT_NE(other, reference);

  // The collective's shortcut: summing the payloads as float arrays and decoding once equals
  // the sum of the decoded messages (up to fp32 rounding of the two sums).
  std::vector<float> payload_sum(k, 0.0f);
  std::vector<float> decoded_sum(d, 0.0f);
  for (const auto& message : messages) {
    const auto payload = payload_of(message);
    for (std::size_t j = 0; j < k; ++j) {
      float x;
      std::memcpy(&x, payload.data() + 4 * j, 4);
      payload_sum[j] += x;
    }
    decode(message, decoded_sum, DecodeMode::kAccumulate);
  }
  std::vector<std::byte> summed_payload(4 * k);
  std::memcpy(summed_payload.data(), payload_sum.data(), 4 * k);
  std::vector<float> from_sum(d);
  decode_unverified(with_payload(messages[0], summed_payload), from_sum, DecodeMode::kOverwrite);
  for (std::size_t i = 0; i < d; ++i) {
    EXPECT_NEAR(from_sum[i], decoded_sum[i], 1e-5 * (1.0 + std::fabs(decoded_sum[i]))) << i;
  }
}

TEST(RandKTest, RejectsValuesThatOverflowOnceScaled) {
  std::vector<float> v(10, 3e38f);
  EXPECT_THROW((void)make_codec("randk:k=2")->encode(v), InvalidArgument);
  EXPECT_NO_THROW((void)make_codec("randk:k=10")->encode(v));  // d/k = 1
}

TEST(RandKTest, SpecIsCanonical) {
  EXPECT_EQ(make_codec("randk:k=100")->spec(), "randk:k=100");
  EXPECT_EQ(make_codec("randk:shared_seed=3,k=0.01")->spec(), "randk:k=0.01,shared_seed=3");
  for (const char* text : {"randk:k=0.3", "randk:k=7,shared_seed=0", "randk:k=1e-3"}) {
    const auto codec = make_codec(text);
    EXPECT_EQ(make_codec(codec->spec())->spec(), codec->spec());
    const auto message = codec->encode(testing::normal_vector(1, 30), {.iteration = 5});
    EXPECT_EQ(codec_of(message)->spec(), codec->spec());
  }
  EXPECT_THROW((void)make_codec("randk"), InvalidArgument);
  EXPECT_THROW((void)make_codec("randk:k=0"), InvalidArgument);
  EXPECT_THROW((void)make_codec("randk:k=0.5,shared_seed=-1"), InvalidArgument);
  EXPECT_TRUE(make_codec("randk:k=2")->traits().unbiased);
}

TEST(RandKTest, DecoderRejectsInconsistentPayloads) {
  const std::vector<float> v = testing::normal_vector(3, 10);
  const auto message = make_codec("randk:k=2")->encode(v);  // indices sent
  auto values = [](BitWriter& w) {
    w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
    w.put(std::bit_cast<std::uint32_t>(2.0f), 32);
  };
  expect_rejected(with_payload(message, std::vector<std::byte>{}), "empty payload");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 10);
                                 EliasDelta::put(w, 1);
                                 values(w);
                               })),
                  "index gap past the end");
  auto extended = payload_of(message);
  extended.push_back(std::byte{1});
  expect_rejected(with_payload(message, extended), "trailing byte");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 1);
                                 EliasDelta::put(w, 1);
                                 w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
                                 w.put(0x7FC00000U, 32);  // NaN
                               })),
                  "NaN value");

  // A raw value that overflows fp32 once scaled by d/k = 5 is not something an encoder sends.
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 1);
                                 EliasDelta::put(w, 1);
                                 w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
                                 w.put(std::bit_cast<std::uint32_t>(1e38f), 32);
                               })),
                  "scaled value overflows");

  const auto shared = make_codec("randk:k=2,shared_seed=1")->encode(v, {.iteration = 4});
  auto shorter = payload_of(shared);
  shorter.resize(4);
  expect_rejected(with_payload(shared, shorter), "shared payload too short");
  auto longer = payload_of(shared);
  longer.resize(12);
  expect_rejected(with_payload(shared, longer), "shared payload too long");
}

}  // namespace
}  // namespace thinwire::codec
