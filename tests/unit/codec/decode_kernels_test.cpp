// The packed decoders (kernels/decode.hpp) against the scalar reference decoders
// (KernelPath::kReference), on every SIMD target (the simd test runs): bit-identical floats in
// overwrite and accumulate mode over many sizes (multiples and non-multiples of the 16 and 64-field
// groups and of the bucket, zero buckets, streams that start off a byte), and the same
// CorruptMessage for damaged payloads (an invalid field anywhere in a bucket, an invalid scale, a
// cut-off stream).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "kernel_path.hpp"
#include "kernels/decode.hpp"
#include "sparse_test_util.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

// Gradient-like values with a zero run (whole zero buckets for small buckets) and signed zeros.
std::vector<float> gradient(std::size_t d, std::uint64_t seed) {
  std::vector<float> v = testing::log_uniform_vector(testing::test_key(seed), d, -6.0, 6.0);
  for (std::size_t i = d / 3; i < std::min(d, d / 3 + 1100); ++i) v[i] = i % 2 ? 0.0f : -0.0f;
  return v;
}

// What a decode gives: the output's bits and the reader's end position, or the error.
struct Outcome {
  std::vector<std::uint32_t> bits;
  std::uint64_t position = 0;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

// gtest prints this for a failed comparison: the error, or the end position and a checksum.
void PrintTo(const Outcome& o, std::ostream* os) {
  std::uint64_t h = 0;
  for (std::uint32_t b : o.bits) h = h * 1000003 + b;
  *os << (o.error.empty()
              ? "position " + std::to_string(o.position) + ", bits hash " + std::to_string(h)
              : "error: " + o.error);
}

// The output starts as varied floats (signed zeros included: accumulating +0 onto -0 gives +0).
std::vector<float> initial_output(std::size_t d) {
  std::vector<float> out(d);
  for (std::size_t i = 0; i < d; ++i) {
    out[i] = i % 5 == 0 ? -0.0f : static_cast<float>(static_cast<double>(i % 13) * 0.37 - 2.0);
  }
  return out;
}

template <typename Decode>
Outcome run_decode(std::span<const std::byte> bytes, unsigned prefix, std::size_t d,
                   Decode decode) {
  Outcome o;
  std::vector<float> out = initial_output(d);
  BitReader r(bytes);
  try {
    (void)r.get(prefix);
    decode(r, std::span<float>(out));
    o.position = r.position();
    o.bits.resize(d);
    std::memcpy(o.bits.data(), out.data(), 4 * d);
  } catch (const CorruptMessage& e) {
    o.error = e.what();
  }
  return o;
}

std::vector<std::byte> qsgd_payload(std::span<const float> v, const QsgdParams& p,
                                    unsigned prefix) {
  std::vector<std::byte> buf(qsgd_payload_max_bytes(v.size(), p) + 16);
  BitWriter w(buf);
  w.put(5, prefix);  // a prefix of `prefix` bits: buckets then start off a byte
  qsgd_encode_payload(v, p, RngKey::make(3, 1, 4, RngPurpose::kQuantize), w);
  buf.resize(w.finish());
  return buf;
}

Outcome qsgd_decode(std::span<const std::byte> bytes, unsigned prefix, const QsgdParams& p,
                    std::size_t d, DecodeMode mode, KernelPath path) {
  return run_decode(bytes, prefix, d, [&](BitReader& r, std::span<float> out) {
    qsgd_decode_payload(r, p, out, mode, path);
  });
}

std::vector<std::byte> terngrad_payload(std::span<const float> v, std::uint32_t bucket,
                                        unsigned prefix) {
  std::vector<std::byte> buf(v.size() / 4 + (v.size() + 1) * 4 + 16);
  BitWriter w(buf);
  w.put(5, prefix);
  terngrad_encode_payload(v, {.bucket = bucket}, RngKey::make(3, 1, 4, RngPurpose::kQuantize), w);
  buf.resize(w.finish());
  return buf;
}

Outcome terngrad_decode(std::span<const std::byte> bytes, unsigned prefix, std::uint32_t bucket,
                        std::size_t d, DecodeMode mode, KernelPath path) {
  return run_decode(bytes, prefix, d, [&](BitReader& r, std::span<float> out) {
    terngrad_decode_payload(r, bucket, out, mode, path);
  });
}

// Through the codec's decode_payload, whose payload starts on a byte, so the kernel reads it in
// place (the *_decode_payload calls above with a prefix give it stack copies). s = 0: TernGrad.
Outcome decode_in_place(std::span<const std::byte> payload, std::uint32_t s, std::uint32_t bucket,
                        std::size_t d, DecodeMode mode) {
  return run_decode(payload, 0, d, [&](BitReader&, std::span<float> out) {
    if (s == 0) {
      TernGradCodec({.bucket = bucket}).decode_payload(payload, out, mode);
    } else {
      QsgdCodec({.levels = s, .bucket = bucket}).decode_payload(payload, out, mode);
    }
  });
}

// The in-place decode against the reference outcome (its reader position aside).
void expect_in_place_matches(std::span<const std::byte> payload, std::uint32_t s,
                             std::uint32_t bucket, std::size_t d, DecodeMode mode,
                             const Outcome& ref) {
  const Outcome o = decode_in_place(payload, s, bucket, d, mode);
  EXPECT_EQ(o.error, ref.error) << "s=" << s << " bucket=" << bucket << " d=" << d;
  EXPECT_TRUE(o.bits == ref.bits) << "s=" << s << " bucket=" << bucket << " d=" << d;
}

const std::size_t kSizes[] = {1,    2,    3,    4,    5,    7,    8,    15,   16,   17,   31,
                              32,   33,   63,   64,   65,   127,  128,  129,  255,  256,  257,
                              511,  512,  513,  999,  1000, 1001, 1023, 1024, 1025, 1500, 2047,
                              2048, 2049, 3001, 4095, 4096, 4097, 4999, 5000, 65539};
const std::uint32_t kBuckets[] = {7, 512, 1000, 0};
const std::uint32_t kLevels[] = {1, 3, 4, 7, 64, 100, 127};

TEST(DecodeKernelsTest, QsgdPackedIsBitIdenticalToTheReference) {
  int cases = 0;
  for (std::size_t d : kSizes) {
    const std::vector<float> v = gradient(d, d);
    for (std::uint32_t s : kLevels) {
      for (std::uint32_t bucket : kBuckets) {
        const QsgdParams p{.levels = s, .bucket = bucket, .norm = QsgdParams::Norm::kMax};
        for (unsigned prefix : {0u, 3u}) {
          const std::vector<std::byte> msg = qsgd_payload(v, p, prefix);
          for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
            const Outcome fast = qsgd_decode(msg, prefix, p, d, mode, KernelPath::kFast);
            ASSERT_TRUE(fast.error.empty()) << fast.error;
            const Outcome ref = qsgd_decode(msg, prefix, p, d, mode, KernelPath::kReference);
            ASSERT_EQ(fast, ref) << "d=" << d << " " << qsgd_params_spec(p) << " prefix=" << prefix
                                 << " overwrite=" << (mode == DecodeMode::kOverwrite);
            if (prefix == 0) expect_in_place_matches(msg, s, bucket, d, mode, ref);
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 2000);
}

TEST(DecodeKernelsTest, TernGradIsBitIdenticalToTheReference) {
  for (std::size_t d : kSizes) {
    const std::vector<float> v = gradient(d, d + 1);
    for (std::uint32_t bucket : {7u, 512u, 1000u, 0u, 4u}) {
      for (unsigned prefix : {0u, 3u}) {
        const std::vector<std::byte> msg = terngrad_payload(v, bucket, prefix);
        for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
          const Outcome fast = terngrad_decode(msg, prefix, bucket, d, mode, KernelPath::kFast);
          ASSERT_TRUE(fast.error.empty()) << fast.error;
          const Outcome ref = terngrad_decode(msg, prefix, bucket, d, mode, KernelPath::kReference);
          ASSERT_EQ(fast, ref) << "d=" << d << " bucket=" << bucket << " prefix=" << prefix;
          if (prefix == 0) expect_in_place_matches(msg, 0, bucket, d, mode, ref);
        }
      }
    }
  }
}

// Payloads written field by field: every level 0..s with both signs, scales from subnormal to the
// fp32 maximum (where step·level rounds differently in float and double) and zero buckets.
std::vector<std::byte> handmade_qsgd(std::size_t d, std::size_t bucket, std::uint32_t s,
                                     std::uint64_t seed) {
  const unsigned width = static_cast<unsigned>(std::bit_width(s));
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kTest);
  const float scales[] = {1.0f, 0.1f,     3.3e-39f, std::numeric_limits<float>::max(),
                          0.0f, 7.77e22f, 1e-45f,   0.3f};
  std::vector<std::byte> buf(d * 2 + (d / bucket + 1) * 4 + 16);
  BitWriter w(buf);
  std::uint64_t counter = 0;
  for (std::size_t first = 0, b = 0; first < d; first += bucket, ++b) {
    const float scale = scales[b % std::size(scales)];
    w.put(std::bit_cast<std::uint32_t>(scale), 32);
    if (scale == 0.0f) continue;
    for (std::size_t i = first; i < std::min(d, first + bucket); ++i) {
      const auto level =
          static_cast<std::uint64_t>(key.uniform_double(counter++) * (s + 1)) % (s + 1);
      const std::uint64_t negative = level != 0 && key.uniform_double(counter++) < 0.5 ? 1 : 0;
      w.put(level | negative << width, width + 1);
    }
  }
  buf.resize(w.finish());
  return buf;
}

TEST(DecodeKernelsTest, EveryLevelAndExtremeScalesMatchTheReference) {
  for (std::uint32_t s : {1u, 4u, 5u, 7u, 64u, 99u, 127u}) {
    for (std::size_t d : {std::size_t{700}, std::size_t{4100}}) {
      for (std::size_t bucket : {std::size_t{64}, std::size_t{200}, std::size_t{512}}) {
        const QsgdParams p{.levels = s, .bucket = static_cast<std::uint32_t>(bucket)};
        const std::vector<std::byte> msg = handmade_qsgd(d, bucket, s, s + d + bucket);
        for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
          const Outcome fast = qsgd_decode(msg, 0, p, d, mode, KernelPath::kFast);
          ASSERT_TRUE(fast.error.empty()) << fast.error;
          const Outcome ref = qsgd_decode(msg, 0, p, d, mode, KernelPath::kReference);
          ASSERT_EQ(fast, ref) << "s=" << s << " d=" << d << " bucket=" << bucket;
          expect_in_place_matches(msg, s, static_cast<std::uint32_t>(bucket), d, mode, ref);
        }
      }
    }
  }
}

// The kernel itself (the codec tests above run it too): it must get through whole vectors on its
// own, not hand them back to the per-bucket decoders.
TEST(DecodeKernelsTest, TheKernelDecodesWholeVectors) {
  for (std::uint32_t s : {0u, 1u, 7u, 127u}) {
    const std::size_t d = 5000;
    const std::size_t bucket = 512;
    const std::vector<float> v = gradient(d, s);
    const std::vector<std::byte> msg =
        s == 0
            ? terngrad_payload(v, bucket, 0)
            : qsgd_payload(v, {.levels = s, .bucket = bucket, .norm = QsgdParams::Norm::kMax}, 0);
    std::vector<float> out(d, 1.0f);
    BitReader r(msg);
    kernels::PackedCursor c;
    const unsigned fw = s == 0 ? 2 : static_cast<unsigned>(std::bit_width(s)) + 1;
    EXPECT_EQ(kernels::decode_packed_stream(r, {d, bucket, fw, s}, c, out.data(), true),
              kernels::PackedStop::kDone)
        << "s=" << s;
    EXPECT_EQ(c.next, d);
    EXPECT_LT(r.remaining(), 8u);
    std::vector<float> ref(d, 1.0f);
    BitReader rr(msg);
    if (s == 0) {
      terngrad_decode_payload(rr, bucket, ref, DecodeMode::kOverwrite, KernelPath::kReference);
    } else {
      qsgd_decode_payload(rr, {.levels = s, .bucket = bucket}, ref, DecodeMode::kOverwrite,
                          KernelPath::kReference);
    }
    EXPECT_EQ(std::memcmp(out.data(), ref.data(), 4 * d), 0) << "s=" << s;
  }
}

// Overwrites field `index` (counting fields over the whole payload, field_bits each, after the
// scale of its bucket) with `field`.
void set_field(std::vector<std::byte>& msg, unsigned prefix, std::size_t bucket,
               unsigned field_bits, std::size_t index, std::uint64_t field) {
  const std::size_t b = index / bucket;
  const std::uint64_t bit =
      prefix + 32 * (b + 1) + static_cast<std::uint64_t>(index) * field_bits;  // no zero buckets
  for (unsigned k = 0; k < field_bits; ++k) {
    const std::uint64_t at = bit + k;
    const auto mask = std::byte{static_cast<unsigned char>(1U << (at % 8))};
    msg[at / 8] = ((field >> k) & 1) != 0 ? (msg[at / 8] | mask) : (msg[at / 8] & ~mask);
  }
}

// Invalid fields in the middle of a bucket, in its first and last group and in a bucket's tail:
// the same CorruptMessage from both paths, in both modes.
TEST(DecodeKernelsTest, InvalidFieldsGiveTheReferenceError) {
  struct Case {
    std::uint32_t s;  // 0: TernGrad
    std::uint64_t field;
  };
  const Case cases[] = {{1, 2},     {4, 5},     {5, 6},      {7, 8},     {6, 15}, {64, 65},
                        {64, 0x80}, {100, 127}, {127, 0x80}, {99, 0xE5}, {0, 3}};
  const std::size_t d = 3000;  // buckets of 512, the last of 440
  const std::size_t bucket = 512;
  std::vector<float> v = gradient(d, 9);
  for (float& x : v) x = x == 0.0f ? 1.0f : x;  // no zero buckets: set_field counts every scale
  int checked = 0;
  for (const Case& k : cases) {
    const unsigned fw = k.s == 0 ? 2 : static_cast<unsigned>(std::bit_width(k.s)) + 1;
    const QsgdParams p{.levels = k.s, .bucket = bucket, .norm = QsgdParams::Norm::kMax};
    for (unsigned prefix : {0u, 3u}) {
      const std::vector<std::byte> good =
          k.s == 0 ? terngrad_payload(v, bucket, prefix) : qsgd_payload(v, p, prefix);
      for (std::size_t at : {0, 15, 16, 63, 64, 700, 1023, 1100, 2559, 2560, 2990, 2999}) {
        std::vector<std::byte> bad = good;
        set_field(bad, prefix, bucket, fw, at, k.field);
        for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
          const Outcome fast =
              k.s == 0 ? terngrad_decode(bad, prefix, bucket, d, mode, KernelPath::kFast)
                       : qsgd_decode(bad, prefix, p, d, mode, KernelPath::kFast);
          const Outcome ref =
              k.s == 0 ? terngrad_decode(bad, prefix, bucket, d, mode, KernelPath::kReference)
                       : qsgd_decode(bad, prefix, p, d, mode, KernelPath::kReference);
          ASSERT_FALSE(ref.error.empty()) << "s=" << k.s << " at=" << at;
          ASSERT_EQ(fast.error, ref.error) << "s=" << k.s << " at=" << at;
          if (prefix == 0) expect_in_place_matches(bad, k.s, bucket, d, mode, ref);
          EXPECT_NE(ref.error.find(std::to_string(at / bucket * bucket)), std::string::npos)
              << ref.error;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

// Cut-off payloads and invalid scales: the same error (or the same floats) from both paths.
TEST(DecodeKernelsTest, TruncationAndBadScalesGiveTheReferenceError) {
  const std::size_t d = 2100;
  for (std::uint32_t s : {0u, 1u, 7u, 127u}) {
    for (std::uint32_t bucket : {512u, 0u}) {
      const std::vector<float> v = gradient(d, s + 40);
      const QsgdParams p{.levels = s, .bucket = bucket, .norm = QsgdParams::Norm::kMax};
      for (unsigned prefix : {0u, 3u}) {
        const std::vector<std::byte> good =
            s == 0 ? terngrad_payload(v, bucket, prefix) : qsgd_payload(v, p, prefix);
        const auto decode = [&](std::span<const std::byte> msg, KernelPath path) {
          return s == 0 ? terngrad_decode(msg, prefix, bucket, d, DecodeMode::kAccumulate, path)
                        : qsgd_decode(msg, prefix, p, d, DecodeMode::kAccumulate, path);
        };
        for (std::size_t cut = 0; cut < good.size(); cut += 1 + cut / 7) {
          const std::span<const std::byte> msg(good.data(), cut);
          const Outcome ref = decode(msg, KernelPath::kReference);
          ASSERT_FALSE(ref.error.empty()) << "cut=" << cut;
          ASSERT_EQ(decode(msg, KernelPath::kFast), ref) << "s=" << s << " cut=" << cut;
          if (prefix == 0) expect_in_place_matches(msg, s, bucket, d, DecodeMode::kAccumulate, ref);
        }
        // Scales of the second bucket (bits prefix + 32 + 512·fw): negative, -0, infinity, NaN.
        if (bucket == 0) continue;
        const unsigned fw = s == 0 ? 2 : static_cast<unsigned>(std::bit_width(s)) + 1;
        for (std::uint32_t scale : {0xBF800000U, 0x80000000U, 0x7F800000U, 0x7FC00001U}) {
          std::vector<std::byte> bad = good;
          const std::size_t at = prefix + 32 + 512 * fw;
          for (unsigned k = 0; k < 32; ++k) {
            const auto mask = std::byte{static_cast<unsigned char>(1U << ((at + k) % 8))};
            bad[(at + k) / 8] =
                ((scale >> k) & 1) != 0 ? (bad[(at + k) / 8] | mask) : (bad[(at + k) / 8] & ~mask);
          }
          const Outcome ref = decode(bad, KernelPath::kReference);
          ASSERT_NE(ref.error.find("invalid scale"), std::string::npos) << ref.error;
          ASSERT_EQ(decode(bad, KernelPath::kFast), ref) << "s=" << s << " scale=" << scale;
          if (prefix == 0) expect_in_place_matches(bad, s, bucket, d, DecodeMode::kAccumulate, ref);
        }
      }
    }
  }
}

}  // namespace
}  // namespace thinwire::codec
