#include "thinwire/codec/threshold.hpp"

#include <gtest/gtest.h>

#include <bit>
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

void expect_exact(double tau, const std::vector<float>& v) {
  const ThresholdCodec codec(tau);
  const auto message = codec.encode(v);
  EXPECT_LE(message.size(), codec.max_encoded_bytes(v.size()));
  const auto decoded = decode_vector(message);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float expected = std::fabs(static_cast<double>(v[i])) >= tau ? v[i] : 0.0f;
    EXPECT_EQ(std::bit_cast<std::uint32_t>(decoded[i]), std::bit_cast<std::uint32_t>(expected))
        << "tau " << tau << " element " << i;
  }
}

TEST(ThresholdTest, KeepsExactlyTheElementsAtOrAboveTau) {
  const std::vector<float> v = {0.5f, -0.5f, 0.49999997f, -2.0f, 0.0f, -0.0f, 7.0f, -0.25f};
  for (const double tau : {0.0, 0.25, 0.5, 1.0, 100.0}) expect_exact(tau, v);
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    expect_exact(1.0, testing::normal_vector(seed, 300));
    expect_exact(2.0, testing::tied_vector(seed, 300));
  }
  expect_exact(0.1, {});
  expect_exact(0.1, {-0.3f});
  // A tau between two floats: the comparison is |v_i| >= tau in double.
  expect_exact(0.1, {0.1f, -0.1f, std::nextafter(0.1f, 0.0f)});
}

TEST(ThresholdTest, ZeroTauIsLossless) {
  const auto codec = make_codec("threshold:tau=0");
  EXPECT_TRUE(codec->traits().lossless);
  EXPECT_FALSE(make_codec("threshold:tau=0.5")->traits().lossless);
  const std::vector<float> v = {-0.0f, 0.0f, 1e-45f, -3.5f, std::numeric_limits<float>::max()};
  const auto decoded = decode_vector(codec->encode(v));
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(std::bit_cast<std::uint32_t>(decoded[i]), std::bit_cast<std::uint32_t>(v[i])) << i;
  }
}

TEST(ThresholdTest, NothingKeptCostsOnlyTheCount) {
  const auto codec = make_codec("threshold:tau=10");
  const auto message = codec->encode(testing::normal_vector(1, 1000));
  EXPECT_EQ(payload_of(message).size(), 1U);  // Elias-delta(1) padded to a byte
  EXPECT_EQ(decode_vector(message), std::vector<float>(1000, 0.0f));
}

TEST(ThresholdTest, SizeBoundHoldsForEveryKeptPattern) {
  const auto codec = make_codec("threshold:tau=1");
  for (std::size_t d = 0; d <= 40; ++d) {
    for (std::size_t stride = 1; stride <= 4; ++stride) {
      std::vector<float> v(d, 0.0f);
      for (std::size_t i = 0; i < d; i += stride) v[i] = -1.0f;
      EXPECT_LE(codec->encode(v).size(), codec->max_encoded_bytes(d)) << d << " " << stride;
    }
  }
}

TEST(ThresholdTest, SpecIsCanonical) {
  EXPECT_EQ(make_codec("threshold:tau=0.001")->spec(), "threshold:tau=0.001");
  EXPECT_EQ(make_codec("threshold:tau=2")->spec(), "threshold:tau=2");
  const auto codec = make_codec("threshold:tau=1e-7");
  EXPECT_EQ(make_codec(codec->spec())->spec(), codec->spec());
  EXPECT_EQ(codec_of(codec->encode(testing::normal_vector(2, 9)))->spec(), codec->spec());
  EXPECT_THROW((void)make_codec("threshold"), InvalidArgument);
  EXPECT_THROW((void)make_codec("threshold:tau=-1"), InvalidArgument);
  EXPECT_THROW((void)make_codec("threshold:tau=inf"), InvalidArgument);
}

TEST(ThresholdTest, DecoderRejectsInconsistentPayloads) {
  const std::vector<float> v = {3.0f, 0.0f, -2.0f, 0.5f};
  const auto message = make_codec("threshold:tau=1")->encode(v);
  auto f32 = [](BitWriter& w, float x) { w.put(std::bit_cast<std::uint32_t>(x), 32); };
  expect_rejected(with_payload(message, std::vector<std::byte>{}), "empty payload");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 6);  // count 5 > d = 4
                               })),
                  "count above d");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 2);
                                 EliasDelta::put(w, 1);
                                 f32(w, 0.5f);  // below tau
                               })),
                  "value below tau");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 3);
                                 EliasDelta::put(w, 3);
                                 EliasDelta::put(w, 2);  // index 4 >= d
                                 f32(w, 2.0f);
                                 f32(w, 2.0f);
                               })),
                  "index out of range");
  expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                 EliasDelta::put(w, 2);
                                 EliasDelta::put(w, 1);
                               })),
                  "missing value");
  auto padded = payload_of(message);
  padded.back() |= std::byte{0x80};
  expect_rejected(with_payload(message, padded), "non-zero padding");
}

}  // namespace
}  // namespace thinwire::codec
