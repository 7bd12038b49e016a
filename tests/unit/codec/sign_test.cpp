#include "thinwire/codec/sign.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernel_path.hpp"
#include "sparse_test_util.hpp"
#include "thinwire/codec/message.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

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

// The fast paths (the fused one-pass encode and the mask-blend decode, on the SIMD target the
// program runs on: CTest runs it once per target) against the reference: byte-identical payloads,
// bit-identical decoded floats and the same errors. Sizes around the 8/16/64-element steps of the
// kernels, buckets that start at every bit offset (bucket 7: 39 bits per bucket), and a part split
// (threads).

// Magnitudes over 2^-24..2^8 (so that the order of the double |u| sum matters), with +0 and -0
// sprinkled in.
std::vector<float> gradient_like(std::size_t d, std::uint64_t seed) {
  std::vector<float> v =
      testing::log_uniform_vector(RngKey::make(seed, 0, d, RngPurpose::kTest), d, -24.0, 8.0);
  for (std::size_t i = 0; i < d; ++i) {
    if (i % 11 == 3) v[i] = 0.0f;
    if (i % 13 == 5) v[i] = -0.0f;
  }
  return v;
}

std::vector<std::size_t> test_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t d = 1; d <= 130; ++d) sizes.push_back(d);
  for (std::size_t d = 131; d <= 5000; d += 53) sizes.push_back(d);
  for (std::size_t d : {255, 256, 257, 511, 512, 513, 999, 1000, 1001, 1023, 1024, 1025, 4095, 4096,
                        4097, 5000, 65539}) {
    sizes.push_back(d);
  }
  return sizes;
}

constexpr std::uint32_t kBuckets[] = {0, 7, 512, 1000};

std::vector<std::byte> payload_of(std::span<const float> v, std::uint32_t bucket, KernelPath path,
                                  unsigned threads = 1) {
  std::vector<std::byte> buf(sign_payload_max_bytes(v.size(), bucket));
  buf.resize(sign_encode_payload(v, bucket, buf, path, threads));
  return buf;
}

// The payload from the per-bucket pieces: sign_scale (kernels::sum_abs), then the scalar bit loop.
std::vector<std::byte> oracle_payload(std::span<const float> v, std::uint32_t bucket) {
  std::vector<std::byte> buf(sign_payload_max_bytes(v.size(), bucket));
  BitWriter w(buf);
  const std::size_t b = bucket == 0 || bucket > v.size() ? v.size() : bucket;
  for (std::size_t first = 0; first < v.size(); first += b) {
    const std::span<const float> u = v.subspan(first, std::min(b, v.size() - first));
    const float scale = sign_scale(u);
    w.put(std::bit_cast<std::uint32_t>(scale), 32);
    if (scale != 0.0f) sign_encode_bucket(u, w, KernelPath::kReference);
  }
  buf.resize(w.finish());
  return buf;
}

// Decodes with `path` into out (preset to `start`); returns the error text, "" if none.
std::string decode_with(std::span<const std::byte> payload, std::uint32_t bucket,
                        std::vector<float>& out, const std::vector<float>& start, DecodeMode mode,
                        KernelPath path) {
  out = start;
  try {
    sign_decode_payload(payload, bucket, out, mode, path);
  } catch (const CorruptMessage& e) {
    return e.what();
  }
  return "";
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), 4 * a.size()) == 0;
}

// Values to accumulate onto: varied, so that the sums round in different ways.
std::vector<float> accumulate_start(std::size_t d) {
  std::vector<float> start(d);
  for (std::size_t i = 0; i < d; ++i) start[i] = std::ldexp(static_cast<float>(i % 29) - 14.0f, -4);
  return start;
}

TEST(SignFastPathTest, AbsSumHasTheFixedOrder) {
  const std::vector<float> v = gradient_like(5000, 1);
  bool order_matters = false;  // the data must tell orders apart, or the test proves nothing
  for (std::size_t offset : {0, 1, 3, 8}) {
    for (std::size_t n = 0; n + offset <= v.size(); n += (n < 200 ? 1 : 37)) {
      const std::span<const float> u = std::span(v).subspan(offset, n);
      const double reference = sign_abs_sum(u, KernelPath::kReference);
      ASSERT_EQ(std::bit_cast<std::uint64_t>(sign_abs_sum(u, KernelPath::kFast)),
                std::bit_cast<std::uint64_t>(reference))
          << "n=" << n << " offset=" << offset;
      double serial = 0.0;
      for (const float x : u) serial += std::fabs(double{x});
      order_matters = order_matters || serial != reference;
    }
  }
  EXPECT_TRUE(order_matters);
}

TEST(SignFastPathTest, PayloadsAndDecodedValuesMatchTheReference) {
  for (const std::size_t d : test_sizes()) {
    const std::vector<float> v = gradient_like(d, d);
    const std::vector<float> acc_start = accumulate_start(d);
    for (const std::uint32_t bucket : kBuckets) {
      const std::vector<std::byte> fast = payload_of(v, bucket, KernelPath::kFast);
      const std::vector<std::byte> ref = payload_of(v, bucket, KernelPath::kReference);
      ASSERT_EQ(ref, oracle_payload(v, bucket)) << "d=" << d << " bucket=" << bucket;
      ASSERT_EQ(fast, ref) << "d=" << d << " bucket=" << bucket;
      std::vector<float> a;
      std::vector<float> b;
      ASSERT_EQ(decode_with(fast, bucket, a, acc_start, DecodeMode::kAccumulate, KernelPath::kFast),
                "");
      ASSERT_EQ(
          decode_with(fast, bucket, b, acc_start, DecodeMode::kAccumulate, KernelPath::kReference),
          "");
      ASSERT_TRUE(same_bits(a, b)) << "d=" << d << " bucket=" << bucket;
      const std::vector<float> minus7(d, -7.0f);
      ASSERT_EQ(decode_with(fast, bucket, a, minus7, DecodeMode::kOverwrite, KernelPath::kFast),
                "");
      ASSERT_EQ(
          decode_with(fast, bucket, b, minus7, DecodeMode::kOverwrite, KernelPath::kReference), "");
      ASSERT_TRUE(same_bits(a, b)) << "d=" << d << " bucket=" << bucket;
      // And what they decode to: ±scale by the sign of each element, +scale for -0 and +0.
      const std::size_t len = bucket == 0 || bucket > d ? d : bucket;
      for (std::size_t first = 0; first < d; first += len) {
        const std::size_t end = std::min(d, first + len);
        const float scale = sign_scale(std::span(v).subspan(first, end - first));
        for (std::size_t i = first; i < end; ++i) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(a[i]),
                    std::bit_cast<std::uint32_t>(v[i] < 0.0f ? -scale : scale))
              << "d=" << d << " i=" << i;
        }
      }
    }
  }
}

TEST(SignFastPathTest, CodecMessagesAndThreadsMatchTheReference) {
  const std::size_t d = (std::size_t{1} << 17) + 5;
  const std::vector<float> v = gradient_like(d, 4);
  for (const std::uint32_t bucket : kBuckets) {
    const std::vector<std::byte> ref = payload_of(v, bucket, KernelPath::kReference);
    for (const unsigned threads : {1U, 2U, 3U}) {
      ASSERT_EQ(payload_of(v, bucket, KernelPath::kFast, threads), ref)
          << "bucket=" << bucket << " threads=" << threads;
      ASSERT_EQ(payload_of(v, bucket, KernelPath::kReference, threads), ref);
      const std::vector<std::byte> message = SignCodec(bucket, threads).encode(v);
      const MessageView view = parse_message(message);
      ASSERT_TRUE(std::equal(view.payload.begin(), view.payload.end(), ref.begin(), ref.end()));
    }
  }
}

// A bucket whose scale rounds to 0 sends no bits even if some of its elements are negative (a
// lone -2^-149 among zeros): the one-pass encoder wrote them before the scale was known and must
// take them back, at any bit offset.
TEST(SignFastPathTest, ZeroScaleBucketsSendOnlyTheirScale) {
  const float tiny = -std::numeric_limits<float>::denorm_min();
  for (const std::uint32_t bucket : {7U, 64U, 512U, 1000U}) {
    std::vector<float> v = gradient_like(20 * bucket + 3, bucket);
    for (const std::size_t b : {std::size_t{0}, std::size_t{3}, std::size_t{4}, std::size_t{19}}) {
      for (std::size_t i = b * bucket; i < (b + 1) * bucket; ++i) v[i] = i % 2 == 0 ? 0.0f : -0.0f;
      v[b * bucket + 1] = tiny;
    }
    const std::vector<std::byte> ref = payload_of(v, bucket, KernelPath::kReference);
    ASSERT_EQ(ref.size(), (16 * (32 + std::size_t{bucket}) + 4 * 32 + 32 + 3 + 7) / 8);
    ASSERT_EQ(payload_of(v, bucket, KernelPath::kFast), ref) << "bucket=" << bucket;
    std::vector<float> a;
    std::vector<float> b;
    ASSERT_EQ(decode_with(ref, bucket, a, v, DecodeMode::kOverwrite, KernelPath::kFast), "");
    ASSERT_EQ(decode_with(ref, bucket, b, v, DecodeMode::kOverwrite, KernelPath::kReference), "");
    ASSERT_TRUE(same_bits(a, b));
    EXPECT_EQ(std::bit_cast<std::uint32_t>(a[3 * bucket + 1]), 0U);  // +0: the bucket is all zero
  }
  // One bucket of signed zeros (and the whole vector as one bucket): the scale alone, +0 out.
  for (const std::size_t d : {1, 3, 64, 100, 1000}) {
    std::vector<float> v(d, -0.0f);
    if (d > 2) v[1] = tiny;
    const std::vector<std::byte> fast = payload_of(v, 0, KernelPath::kFast);
    ASSERT_EQ(fast, std::vector<std::byte>(4)) << "d=" << d;
    ASSERT_EQ(fast, payload_of(v, 0, KernelPath::kReference));
    std::vector<float> a;
    ASSERT_EQ(decode_with(fast, 0, a, v, DecodeMode::kOverwrite, KernelPath::kFast), "");
    EXPECT_TRUE(same_bits(a, std::vector<float>(d, 0.0f)));
  }
}

TEST(SignFastPathTest, NonFiniteInputsGiveTheSameError) {
  const auto error = [](std::span<const float> v, std::uint32_t bucket, KernelPath path,
                        unsigned threads) -> std::string {
    try {
      (void)payload_of(v, bucket, path, threads);
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "";
  };
  for (const std::size_t d : {std::size_t{1}, std::size_t{3000}, (std::size_t{1} << 16) + 3}) {
    for (const std::size_t at : {std::size_t{0}, d / 2, d - 1}) {
      for (const float bad :
           {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
            -std::numeric_limits<float>::infinity()}) {
        std::vector<float> v = gradient_like(d, 9);
        v[at] = bad;
        for (const std::uint32_t bucket : kBuckets) {
          const std::string expected = error(v, bucket, KernelPath::kReference, 1);
          ASSERT_EQ(expected, "sign: input element " + std::to_string(at) + " is not finite (" +
                                  std::to_string(bad) + ")");
          ASSERT_EQ(error(v, bucket, KernelPath::kFast, 1), expected);
          ASSERT_EQ(error(v, bucket, KernelPath::kFast, 2), expected);
        }
      }
    }
  }
}

// Truncated, extended and bit-flipped payloads: the fast decoder throws exactly when the
// reference does, with the same text, and otherwise decodes the same floats.
TEST(SignFastPathTest, DamagedPayloadsGiveTheSameErrors) {
  int errors = 0;
  for (const auto& [d, bucket] : {std::pair<std::size_t, std::uint32_t>{100, 0},
                                  {100, 7},
                                  {130, 64},
                                  {1100, 512},
                                  {3000, 1000}}) {
    const std::vector<float> v = gradient_like(d, 2);
    const std::vector<std::byte> good = payload_of(v, bucket, KernelPath::kReference);
    std::vector<std::vector<std::byte>> damaged;
    for (std::size_t n = 0; n < good.size(); n += (n < 40 ? 1 : 9)) {
      damaged.emplace_back(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    }
    for (const std::byte extra : {std::byte{0}, std::byte{1}, std::byte{0x80}}) {
      damaged.push_back(good);
      damaged.back().push_back(extra);
    }
    for (std::size_t bit = 0; bit < 8 * good.size(); bit += (bit < 700 ? 1 : 13)) {
      damaged.push_back(good);
      damaged.back()[bit / 8] ^= std::byte{static_cast<unsigned char>(1U << (bit % 8))};
    }
    const std::vector<float> acc_start = accumulate_start(d);
    std::vector<float> a;
    std::vector<float> b;
    for (const std::vector<std::byte>& p : damaged) {
      for (const DecodeMode mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
        const std::string fast = decode_with(p, bucket, a, acc_start, mode, KernelPath::kFast);
        const std::string ref = decode_with(p, bucket, b, acc_start, mode, KernelPath::kReference);
        ASSERT_EQ(fast, ref) << "d=" << d << " bucket=" << bucket << " bytes=" << p.size();
        if (ref.empty()) {
          ASSERT_TRUE(same_bits(a, b));
        } else {
          ++errors;
        }
      }
    }
  }
  EXPECT_GT(errors, 400);  // the damage reaches the error paths
}

}  // namespace
}  // namespace thinwire::codec
