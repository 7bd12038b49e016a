#include "thinwire/codec/sign.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <vector>

#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {
namespace {

constexpr std::size_t kParamsBytes = 4;

std::vector<float> decoded(std::span<const std::byte> msg, std::size_t d) {
  std::vector<float> out(d, -7.0f);
  decode(msg, out, DecodeMode::kOverwrite);
  return out;
}

std::vector<std::byte> hand_message(std::size_t d, std::uint32_t bucket,
                                    const std::function<void(BitWriter&)>& payload) {
  std::vector<std::byte> buf(1024);
  MessageWriter msg(buf, CodecId::kSign, d);
  msg.params().put_u32(bucket);
  BitWriter w(msg.payload_area());
  payload(w);
  buf.resize(msg.finish(w.finish()));
  return buf;
}

void put_scale(BitWriter& w, float scale) { w.put(std::bit_cast<std::uint32_t>(scale), 32); }

TEST(SignTest, SpecsAndTraits) {
  const auto c = make_codec("sign");
  EXPECT_EQ(c->spec(), "sign:bucket=0");
  EXPECT_EQ(make_codec("sign:bucket=64")->spec(), "sign:bucket=64");
  EXPECT_TRUE(c->traits().deterministic);
  EXPECT_FALSE(c->traits().unbiased);
  EXPECT_FALSE(c->traits().lossless);
  EXPECT_THROW((void)make_codec("sign:bucket=-1"), InvalidArgument);
  EXPECT_THROW((void)make_codec("sign:s=1"), InvalidArgument);
}

TEST(SignTest, ExactOnSimpleInputs) {
  // ‖u‖₁/|u| = 6/4; sgn(0) = sgn(−0) = +1.
  const std::vector<float> v = {1.0f, -2.0f, 3.0f, 0.0f, -0.0f, 0.0f};
  EXPECT_EQ(decoded(make_codec("sign")->encode(v), v.size()),
            (std::vector<float>{1.0f, -1.0f, 1.0f, 1.0f, 1.0f, 1.0f}));
  // Buckets of 2: scales 2, 0 (only the scale is sent), 5.
  const std::vector<float> w = {1.0f, -3.0f, 0.0f, 0.0f, -5.0f};
  const auto codec = make_codec("sign:bucket=2");
  const auto msg = codec->encode(w);
  EXPECT_EQ(decoded(msg, w.size()), (std::vector<float>{2.0f, -2.0f, 0.0f, 0.0f, -5.0f}));
  EXPECT_EQ(msg.size(), kHeaderBytes + kParamsBytes + (3 * 32 + 2 + 1 + 7) / 8);
}

TEST(SignTest, SizeDeterminismAndAccumulate) {
  std::vector<float> v(1000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i));
  for (std::uint32_t bucket : {0u, 64u, 999u, 5000u}) {
    const SignCodec codec(bucket);
    const auto msg = codec.encode(v);
    EXPECT_EQ(msg.size(), codec.max_encoded_bytes(v.size()));
    EXPECT_EQ(msg, codec.encode(v, {.seed = 5, .rank = 1, .iteration = 2}));
    const auto out = decoded(msg, v.size());
    std::vector<float> acc(v.size(), 0.5f);
    decode(msg, acc, DecodeMode::kAccumulate);
    const std::size_t b = bucket == 0 || bucket > v.size() ? v.size() : bucket;
    for (std::size_t first = 0; first < v.size(); first += b) {
      const std::size_t end = std::min(v.size(), first + b);
      double l1 = 0.0;
      for (std::size_t i = first; i < end; ++i) l1 += std::fabs(double{v[i]});
      const auto scale = static_cast<float>(l1 / static_cast<double>(end - first));
      for (std::size_t i = first; i < end; ++i) {
        ASSERT_EQ(out[i], v[i] < 0 ? -scale : scale) << bucket << " " << i;
        ASSERT_EQ(acc[i], 0.5f + out[i]);
      }
    }
  }
  const auto empty = SignCodec().encode(std::span<const float>{});
  EXPECT_EQ(empty.size(), kHeaderBytes + kParamsBytes);
  EXPECT_THROW((void)SignCodec().encode(std::vector<float>{std::nanf("")}), InvalidArgument);
}

TEST(SignTest, DecoderRejectsInconsistentPayloads) {
  std::vector<float> out(3);
  const auto ok = hand_message(3, 0, [](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0b010, 3);
  });
  decode(ok, out, DecodeMode::kOverwrite);
  EXPECT_EQ(out, (std::vector<float>{2.0f, -2.0f, 2.0f}));
  const auto rejects = [&](const std::function<void(BitWriter&)>& bits) {
    EXPECT_THROW(decode(hand_message(3, 0, bits), out, DecodeMode::kOverwrite), CorruptMessage);
  };
  rejects([](BitWriter& w) {
    put_scale(w, -2.0f);
    w.put(0, 3);
  });
  rejects([](BitWriter& w) { put_scale(w, -0.0f); });
  rejects([](BitWriter& w) {
    put_scale(w, std::numeric_limits<float>::infinity());
    w.put(0, 3);
  });
  rejects([](BitWriter& w) { put_scale(w, 2.0f); });  // short: the sign bits are missing
  rejects([](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0, 11);
  });  // long
  rejects([](BitWriter& w) {
    put_scale(w, 2.0f);
    w.put(0b1000, 4);
  });  // padding
  rejects([](BitWriter& w) {
    put_scale(w, 0.0f);
    w.put(0, 3);
    w.put(1, 1);
  });  // zero + data
}

}  // namespace
}  // namespace thinwire::codec
