#include "thinwire/codec/float_cast.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

float from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

TEST(FloatCastTest, HalfKnownValues) {
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(0.5f), 0x3800);
  EXPECT_EQ(float_to_half(0.1f), 0x2E66);  // 0.0999755859375
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(0x1.0p-14f), 0x0400);   // smallest normal
  EXPECT_EQ(float_to_half(0x1.0p-24f), 0x0001);   // smallest subnormal
  EXPECT_EQ(float_to_half(0x3.ffp-16f), 0x03FF);  // largest subnormal, 1023·2^-24
}

TEST(FloatCastTest, HalfRoundsToNearestEven) {
  // Ties between 1 and 1 + 2^-10 go to the even mantissa (1); between 1 + 2^-10 and 1 + 2^-9
  // to 1 + 2^-9.
  EXPECT_EQ(float_to_half(1.0f + 0x1.0p-11f), 0x3C00);
  EXPECT_EQ(float_to_half(1.0f + 3 * 0x1.0p-11f), 0x3C02);
  EXPECT_EQ(float_to_half(1.0f + 0x1.0p-11f + 0x1.0p-20f), 0x3C01);  // just above the tie
  // Subnormal ties: 0.5, 1.5, 2.5 units of 2^-24.
  EXPECT_EQ(float_to_half(0x1.0p-25f), 0x0000);
  EXPECT_EQ(float_to_half(0x1.0p-25f + 0x1.0p-40f), 0x0001);
  EXPECT_EQ(float_to_half(3 * 0x1.0p-25f), 0x0002);
  EXPECT_EQ(float_to_half(5 * 0x1.0p-25f), 0x0002);
  // 1023.5 units: the tie rounds up into the smallest normal (a carry into the exponent).
  EXPECT_EQ(float_to_half(1023.5f * 0x1.0p-24f), 0x0400);
  // Below half the smallest subnormal, and fp32 subnormals, flush to a signed zero.
  EXPECT_EQ(float_to_half(-0x1.0p-30f), 0x8000);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::denorm_min()), 0x0000);
  // 2047.5 → 2048 (tie to even, exponent carry in the normal range).
  EXPECT_EQ(float_to_half(2047.5f), 0x6800);
}

TEST(FloatCastTest, HalfSaturatesBeyondItsRange) {
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);  // below the rounding boundary 65520
  EXPECT_EQ(float_to_half(65520.0f), 0x7BFF);  // would round to infinity: saturates
  EXPECT_EQ(float_to_half(1e10f), 0x7BFF);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::max()), 0xFBFF);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::quiet_NaN()) & 0x7E00, 0x7E00);
}

TEST(FloatCastTest, BfloatKnownValuesAndTies) {
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bfloat16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_bfloat16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bfloat16(1.0f + 0x1.0p-8f), 0x3F80);      // tie to even
  EXPECT_EQ(float_to_bfloat16(1.0f + 3 * 0x1.0p-8f), 0x3F82);  // tie to even (up)
  EXPECT_EQ(float_to_bfloat16(1.0f + 0x1.0p-8f + 0x1.0p-20f), 0x3F81);
  // fp32 subnormals keep their top bits, rounded the same way.
  EXPECT_EQ(float_to_bfloat16(from_bits(0x00008000)), 0x0000);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x00018000)), 0x0002);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x00010001)), 0x0001);
  // 0x7F7FFFFF would round to infinity: saturates.
  EXPECT_EQ(float_to_bfloat16(std::numeric_limits<float>::max()), 0x7F7F);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x7F7F7FFF)), 0x7F7F);
  EXPECT_EQ(float_to_bfloat16(-std::numeric_limits<float>::max()), 0xFF7F);
  EXPECT_EQ(float_to_bfloat16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bfloat16(std::numeric_limits<float>::quiet_NaN()) & 0x7FC0, 0x7FC0);
  EXPECT_EQ(bfloat16_to_float(0x3F80), 1.0f);
}

// Every finite 16-bit value converts to float exactly and back to itself.
TEST(FloatCastTest, EveryFinite16BitValueRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    if ((bits & 0x7C00) != 0x7C00) {
      ASSERT_EQ(float_to_half(half_to_float(bits)), bits) << std::hex << h;
    }
    if ((bits & 0x7F80) != 0x7F80) {
      ASSERT_EQ(float_to_bfloat16(bfloat16_to_float(bits)), bits) << std::hex << h;
    }
  }
  EXPECT_EQ(half_to_float(0x0001), 0x1.0p-24f);
  EXPECT_EQ(half_to_float(0x8400), -0x1.0p-14f);
  EXPECT_TRUE(std::isinf(half_to_float(0x7C00)));
}

// For random floats over the whole exponent range: the result is a nearest 16-bit value (ties to
// the even one), and the error bounds of the header hold.
TEST(FloatCastTest, RandomFloatsRoundToNearest) {
  const RngKey key = RngKey::make(1, 0, 0, RngPurpose::kTest);
  struct Format {
    std::uint16_t (*to)(float);
    float (*from)(std::uint16_t);
    std::uint16_t max_finite;
    double min_normal;
    double rel_bound;
    double abs_bound;
  };
  const Format formats[] = {
      {&float_to_half, &half_to_float, kHalfMaxFinite, 0x1.0p-14, 0x1.0p-11, 0x1.0p-25},
      {&float_to_bfloat16, &bfloat16_to_float, kBfloat16MaxFinite, 0x1.0p-126, 0x1.0p-8,
       0x1.0p-134},
  };
  for (const Format& f : formats) {
    const double max_finite = f.from(f.max_finite);
    for (std::uint64_t i = 0; i < 200000; ++i) {
      const float x = from_bits(static_cast<std::uint32_t>(key.bits(i)));
      if (!std::isfinite(x)) continue;
      const std::uint16_t h = f.to(x);
      const double y = f.from(h);
      const double err = std::fabs(static_cast<double>(x) - y);
      ASSERT_TRUE(std::isfinite(y)) << x;
      if (std::fabs(x) >= max_finite) {
        ASSERT_EQ(std::fabs(y), max_finite) << x;  // saturated
        continue;
      }
      // Neighbours h ± 1 in magnitude are never closer; at a tie h is even.
      const auto mag = static_cast<std::uint16_t>(h & 0x7FFF);
      for (int step : {-1, 1}) {
        if (mag == 0 && step < 0) continue;
        const auto other = static_cast<std::uint16_t>((h & 0x8000) | (mag + step));
        const double e2 = std::fabs(static_cast<double>(x) - f.from(other));
        ASSERT_LE(err, e2) << x;
        if (err == e2) {
          ASSERT_EQ(h & 1, 0) << x;
        }
      }
      if (std::fabs(x) >= f.min_normal) {
        ASSERT_LE(err, f.rel_bound * std::fabs(x)) << x;
      } else {
        ASSERT_LE(err, f.abs_bound) << x;
      }
    }
  }
}

TEST(FloatCastTest, CodecRoundTripAndSize) {
  const std::vector<float> v = {1.0f, -0.1f, 3.14159f, 0x1.0p-20f, 70000.0f, -0.0f};
  for (const char* name : {"fp16", "bf16"}) {
    SCOPED_TRACE(name);
    const auto codec = make_codec(name);
    EXPECT_EQ(codec->spec(), name);
    EXPECT_EQ(make_codec(codec->spec())->spec(), name);
    const CodecTraits t = codec->traits();
    EXPECT_TRUE(t.deterministic);
    EXPECT_FALSE(t.lossless);
    EXPECT_EQ(codec->max_encoded_bytes(v.size()), kHeaderBytes + 2 * v.size());
    const auto msg = codec->encode(v);
    ASSERT_EQ(msg.size(), kHeaderBytes + 2 * v.size());
    EXPECT_EQ(msg, codec->encode(v, {.seed = 99, .rank = 1, .iteration = 5}));
    std::vector<float> out(v.size(), 7.0f);
    decode(msg, out, DecodeMode::kOverwrite);
    const bool half = std::string(name) == "fp16";
    for (std::size_t i = 0; i < v.size(); ++i) {
      const float want =
          half ? half_to_float(float_to_half(v[i])) : bfloat16_to_float(float_to_bfloat16(v[i]));
      EXPECT_EQ(std::bit_cast<std::uint32_t>(out[i]), std::bit_cast<std::uint32_t>(want)) << i;
    }
    if (half) {
      EXPECT_EQ(out[4], 65504.0f);  // saturated
    }
    std::vector<float> acc(v.size(), 1.0f);
    decode(msg, acc, DecodeMode::kAccumulate);
    for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(acc[i], 1.0f + out[i]) << i;
  }
}

TEST(FloatCastTest, EmptyAndLongVectors) {
  for (const char* name : {"fp16", "bf16"}) {
    const auto codec = make_codec(name);
    const auto empty = codec->encode(std::span<const float>{});
    EXPECT_EQ(empty.size(), kHeaderBytes);
    std::vector<float> none;
    decode(empty, none, DecodeMode::kOverwrite);
    // Longer than one internal chunk, and not a multiple of it.
    std::vector<float> v(1000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 200) - 100.0f;
    std::vector<float> out(v.size());
    decode(codec->encode(v), out, DecodeMode::kOverwrite);
    EXPECT_EQ(out, v);  // small integers are exact in both formats
  }
}

TEST(FloatCastTest, RejectsNonFiniteInput) {
  const std::vector<float> v = {1.0f, std::numeric_limits<float>::infinity()};
  EXPECT_THROW((void)make_codec("fp16")->encode(v), InvalidArgument);
  EXPECT_THROW((void)make_codec("bf16")->encode(v), InvalidArgument);
  EXPECT_THROW((void)make_codec("fp16:x=1"), InvalidArgument);
}

TEST(FloatCastTest, DecoderRejectsCorruptPayloads) {
  const std::vector<float> v(300, 1.0f);
  for (const char* name : {"fp16", "bf16"}) {
    SCOPED_TRACE(name);
    const auto codec = make_codec(name);
    const std::uint16_t inf = std::string(name) == "fp16" ? 0x7C00 : 0x7F80;
    auto msg = codec->encode(v);
    std::vector<float> out(v.size());
    for (const std::uint16_t bad : {inf, static_cast<std::uint16_t>(inf | 0x8001)}) {
      auto broken = msg;
      std::memcpy(broken.data() + kHeaderBytes + 2 * 299, &bad, 2);
      EXPECT_THROW(decode_unverified(broken, out, DecodeMode::kOverwrite), CorruptMessage);
    }
    // An odd payload length (header kept consistent) is rejected by the codec itself.
    std::vector<std::byte> odd(kHeaderBytes + 3);
    MessageWriter w(odd, codec->id(), 1);
    (void)w.payload_area();
    odd.resize(w.finish(3));
    std::vector<float> one(1);
    EXPECT_THROW(decode_unverified(odd, one, DecodeMode::kOverwrite), CorruptMessage);
    msg.resize(msg.size() - 2);
    EXPECT_THROW(decode(msg, out, DecodeMode::kOverwrite), CorruptMessage);
  }
}

}  // namespace
}  // namespace thinwire::codec
