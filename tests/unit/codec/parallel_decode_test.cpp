// Multi-threaded decode (codec::decode with threads, src/codec/parallel_decode.hpp): for every
// thread count the floats must be bit-identical to the one-thread decode, in overwrite and
// accumulate mode, whether the pool runs the parts or a busy pool makes the caller run them; a
// damaged payload must throw the CorruptMessage the one-thread decoder throws, with the same
// text; and the thread count is validated. The reference is always the three-argument decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sparse_test_util.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

using testing::payload_of;
using testing::with_payload;

// 3·2^15 + 123: three parts of at least 2^15 elements, buckets that do not divide it.
constexpr std::size_t kThreeParts = 3 * (std::size_t{1} << 15) + 123;
// 2^18 + 77: up to eight parts, so seven threads get seven.
constexpr std::size_t kSevenParts = (std::size_t{1} << 18) + 77;

// Gradient-like values with zero buckets (a zero bucket sends only its scale, which moves every
// later bucket): at the start, around the part boundaries d/3 and 2d/3, and at the end.
std::vector<float> gradient_like(std::size_t d, std::uint64_t seed, bool zero_buckets = true) {
  std::vector<float> v = testing::log_uniform_vector(testing::test_key(seed), d, -5.0, 5.0);
  if (zero_buckets) {
    const auto zero = [&](std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < std::min(to, d); ++i) v[i] = 0.0f;
    };
    zero(0, 1200);
    zero(d / 3 - 1500, d / 3 + 1500);
    zero(2 * d / 3 - 1500, 2 * d / 3 + 1500);
    zero(d - 1200, d);
  }
  return v;
}

// Codecs that split their payloads: qsgd packed with 2, 4 and 8-bit fields and odd widths (3, 6
// bits), both norms, buckets that do and do not divide d and that end inside a byte; terngrad;
// sign with one bucket (the default) and with buckets.
const char* const kSplitSpecs[] = {
    "qsgd:s=1,bucket=512,norm=max,coding=packed",
    "qsgd:s=7,bucket=512,norm=max,coding=packed",
    "qsgd:s=127,bucket=512,norm=max,coding=packed",
    "qsgd:s=7,bucket=1000,norm=l2,coding=packed",
    "qsgd:s=1,bucket=333,norm=l2,coding=packed",
    "qsgd:s=127,bucket=777,norm=l2,coding=packed",
    "qsgd:s=3,bucket=4099,norm=max,coding=packed",
    "qsgd:s=16,bucket=512,norm=l2,coding=packed",
    "terngrad:bucket=512,clip=0",
    "terngrad:bucket=999,clip=2.5",
    "sign:bucket=0",
    "sign:bucket=512",
    "sign:bucket=333",
};
// Codecs that decode on one thread whatever the count (the default decode_payload_parallel).
const char* const kSerialSpecs[] = {"qsgd:s=16,bucket=512,norm=l2,coding=elias", "identity",
                                    "topk:k=0.01", "qsgd:s=7,bucket=0,norm=max,coding=packed"};

std::vector<std::uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<std::uint32_t> bits(v.size());
  std::transform(v.begin(), v.end(), bits.begin(),
                 [](float x) { return std::bit_cast<std::uint32_t>(x); });
  return bits;
}

// "" if a and b are the same bits, else where they first differ (readable where a vector
// comparison would print thousands of values).
std::string difference(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  if (a.size() != b.size()) {
    return "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      return "element " + std::to_string(i) + ": " + std::to_string(std::bit_cast<float>(a[i])) +
             " vs " + std::to_string(std::bit_cast<float>(b[i]));
    }
  }
  return "";
}

// decode() with `threads`, or the three-argument decode() for std::nullopt.
std::vector<float> decode_with(std::span<const std::byte> message, std::vector<float> out,
                               DecodeMode mode, std::optional<unsigned> threads) {
  if (threads) {
    decode(message, out, mode, *threads);
  } else {
    decode(message, out, mode);
  }
  return out;
}

void expect_same_floats_for_every_thread_count(const std::string& spec,
                                               const std::vector<float>& v) {
  const std::size_t d = v.size();
  const std::vector<std::byte> message = make_codec(spec)->encode(v, {.seed = 5, .iteration = d});
  const std::vector<float> fresh(d, -3.0f);
  const std::vector<float> base = gradient_like(d, d + 1, /*zero_buckets=*/false);
  for (const DecodeMode mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
    const std::vector<float>& start = mode == DecodeMode::kOverwrite ? fresh : base;
    const auto expected = bits_of(decode_with(message, start, mode, std::nullopt));
    for (const unsigned t : {1U, 2U, 3U, 7U}) {
      EXPECT_EQ(difference(bits_of(decode_with(message, start, mode, t)), expected), "")
          << spec << " d=" << d << " threads=" << t
          << (mode == DecodeMode::kOverwrite ? " overwrite" : " accumulate");
    }
  }
}

TEST(ParallelDecodeTest, SameFloatsForEveryThreadCount) {
  // With zero buckets the parts' first bits come from the walk over the scales, without them from
  // the dense layout that the parts confirm (parallel_decode.hpp): both ways.
  for (const std::size_t d : {kThreeParts, kSevenParts}) {
    for (const bool zero_buckets : {true, false}) {
      const std::vector<float> v = gradient_like(d, d, zero_buckets);
      for (const char* spec : kSplitSpecs) expect_same_floats_for_every_thread_count(spec, v);
    }
  }
  const std::vector<float> v = gradient_like(kThreeParts, 1);
  for (const char* spec : kSerialSpecs) expect_same_floats_for_every_thread_count(spec, v);
}

TEST(ParallelDecodeTest, ZeroTailBucketWithTheDenseLength) {
  // 396 buckets of 333 and a last one of 3 elements, all zero: its 3 missing bits leave the
  // payload as long as if it were not zero (d = 7 mod 8), so only its scale tells them apart.
  const std::size_t d = 396 * 333 + 3;
  std::vector<float> v = gradient_like(d, 9, /*zero_buckets=*/false);
  std::fill(v.end() - 3, v.end(), 0.0f);
  const auto message = make_codec("sign:bucket=333")->encode(v);
  ASSERT_EQ(payload_of(message).size(), (397 * 32 + d + 7) / 8);
  ASSERT_EQ(make_codec("sign:bucket=333")->max_decode_threads(d, 4), 4U);
  expect_same_floats_for_every_thread_count("sign:bucket=333", v);
}

TEST(ParallelDecodeTest, SmallAndEmptyVectorsDecodeOnOneThread) {
  for (const char* spec : kSplitSpecs) {
    for (const std::size_t d :
         {std::size_t{0}, std::size_t{1}, std::size_t{1000}, (std::size_t{1} << 16) - 1}) {
      expect_same_floats_for_every_thread_count(spec, gradient_like(d, d));
      EXPECT_EQ(make_codec(spec)->max_decode_threads(d, 7), 1U) << spec << " d=" << d;
    }
  }
}

TEST(ParallelDecodeTest, SplittingCodecsReportTheirParts) {
  // Parts of at least 2^15 elements, at most one per thread: 3 for kThreeParts, up to 7 (of the
  // 8 its size allows) for kSevenParts.
  for (const char* spec : kSplitSpecs) {
    const auto codec = make_codec(spec);
    EXPECT_EQ(codec->max_decode_threads(kThreeParts, 1), 1U) << spec;
    EXPECT_EQ(codec->max_decode_threads(kThreeParts, 2), 2U) << spec;
    EXPECT_EQ(codec->max_decode_threads(kThreeParts, 7), 3U) << spec;
    EXPECT_EQ(codec->max_decode_threads(kSevenParts, 7), 7U) << spec;
    EXPECT_EQ(codec->max_decode_threads(kSevenParts, 64), 8U) << spec;
  }
  for (const char* spec : kSerialSpecs) {
    EXPECT_EQ(make_codec(spec)->max_decode_threads(kSevenParts, 7), 1U) << spec;
  }
  // A bucket per part at most: two buckets, two parts.
  EXPECT_EQ(make_codec("terngrad:bucket=200000")->max_decode_threads(kSevenParts, 7), 2U);
}

TEST(ParallelDecodeTest, ZeroVectorsDecodeToZeros) {
  // Every bucket zero: the payload is only scales (and sign's single bucket has nothing to cut).
  const std::vector<float> zeros(kSevenParts, 0.0f);
  for (const char* spec : kSplitSpecs) {
    const auto message = make_codec(spec)->encode(zeros);
    std::vector<float> out(kSevenParts, 2.0f);
    decode(message, out, DecodeMode::kAccumulate, 7);
    EXPECT_EQ(out, std::vector<float>(kSevenParts, 2.0f)) << spec;
    decode(message, out, DecodeMode::kOverwrite, 7);
    EXPECT_EQ(out, zeros) << spec;
  }
}

TEST(ParallelDecodeTest, ConcurrentCallersGetTheSameFloats) {
  // Four callers at once: at most one holds the pool, the others decode their parts themselves.
  const std::vector<float> v = gradient_like(kSevenParts, 3);
  const auto message = make_codec("qsgd:s=7,bucket=512,norm=max,coding=packed")->encode(v);
  std::vector<float> expected(kSevenParts);
  decode(message, expected, DecodeMode::kOverwrite);
  std::vector<std::vector<float>> got(4, std::vector<float>(kSevenParts));
  {
    std::vector<std::jthread> callers;
    for (std::size_t c = 0; c < got.size(); ++c) {
      callers.emplace_back([&, c] {
        for (int rep = 0; rep < 3; ++rep) {
          decode(message, got[c], DecodeMode::kOverwrite, static_cast<unsigned>(2 + c));
        }
      });
    }
  }
  for (std::size_t c = 0; c < got.size(); ++c) {
    EXPECT_EQ(difference(bits_of(got[c]), bits_of(expected)), "") << c;
  }
}

TEST(ParallelDecodeTest, ThreadCountIsValidated) {
  const auto message = make_codec("sign")->encode(std::vector<float>(10, 1.0f));
  std::vector<float> out(10);
  for (const unsigned bad : {0U, 65U, 1000U}) {
    for (const bool verified : {true, false}) {
      try {
        if (verified) {
          decode(message, out, DecodeMode::kOverwrite, bad);
        } else {
          decode_unverified(message, out, DecodeMode::kOverwrite, bad);
        }
        ADD_FAILURE() << "threads=" << bad << " accepted";
      } catch (const InvalidArgument& e) {
        EXPECT_NE(std::string(e.what()).find("threads must be in [1, 64]"), std::string::npos)
            << e.what();
      }
    }
  }
  // Checked before the message: an invalid count is reported even for a corrupt message.
  EXPECT_THROW(decode(std::vector<std::byte>(3), out, DecodeMode::kOverwrite, 0), InvalidArgument);
  decode(message, out, DecodeMode::kOverwrite, 64);
  EXPECT_EQ(out, std::vector<float>(10, 1.0f));
}

// --- Damaged payloads -------------------------------------------------------------------------

// The outcome of decode_unverified (no checksum, so the damage reaches the payload decoder): the
// CorruptMessage text, or "" and the floats.
struct Outcome {
  std::string error;
  std::vector<std::uint32_t> bits;
};

Outcome outcome(std::span<const std::byte> message, std::size_t d, std::optional<unsigned> threads,
                DecodeMode mode = DecodeMode::kOverwrite) {
  std::vector<float> out(d, 1.5f);
  try {
    if (threads) {
      decode_unverified(message, out, mode, *threads);
    } else {
      decode_unverified(message, out, mode);
    }
  } catch (const CorruptMessage& e) {
    return {e.what(), {}};
  }
  return {"", bits_of(out)};
}

// The damaged message must fail (one thread) and fail the same way with three threads.
void expect_rejected_as_on_one_thread(std::span<const std::byte> message, std::size_t d,
                                      const std::string& what) {
  const Outcome one = outcome(message, d, std::nullopt);
  ASSERT_FALSE(one.error.empty()) << what << ": the one-thread decoder accepts it";
  for (const DecodeMode mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
    EXPECT_EQ(outcome(message, d, 3U, mode).error, one.error) << what;
  }
}

// Bit positions of every bucket's scale in a payload of scaled buckets (d elements, buckets of
// `bucket`, field_bits per element of a non-zero bucket): the test's own walk of the format.
std::vector<std::uint64_t> scale_positions(std::span<const std::byte> payload, std::size_t d,
                                           std::size_t bucket, unsigned field_bits) {
  std::vector<std::uint64_t> at;
  BitReader r(payload);
  for (std::size_t first = 0; first < d; first += bucket) {
    at.push_back(r.position());
    if (r.get(32) != 0) r.skip(std::uint64_t{std::min(bucket, d - first)} * field_bits);
  }
  return at;
}

void set_bits(std::vector<std::byte>& bytes, std::uint64_t pos, unsigned width,
              std::uint64_t value) {
  for (unsigned i = 0; i < width; ++i) {
    const auto bit = static_cast<std::byte>(1U << ((pos + i) % 8));
    std::byte& b = bytes[static_cast<std::size_t>((pos + i) / 8)];
    b = ((value >> i) & 1) != 0 ? (b | bit) : (b & ~bit);
  }
}

struct Damageable {
  const char* spec;
  std::size_t bucket;  // as the codec resolves it for kThreeParts
  unsigned field_bits;
};

const Damageable kDamageable[] = {
    {"qsgd:s=5,bucket=512,norm=max,coding=packed", 512, 4},
    {"qsgd:s=7,bucket=777,norm=l2,coding=packed", 777, 4},
    {"qsgd:s=127,bucket=512,norm=max,coding=packed", 512, 8},
    {"qsgd:s=1,bucket=1000,norm=max,coding=packed", 1000, 2},
    {"terngrad:bucket=512,clip=0", 512, 2},
    {"terngrad:bucket=333,clip=0", 333, 2},
    {"sign:bucket=512", 512, 1},
    {"sign:bucket=0", kThreeParts, 1},
};

TEST(ParallelDecodeTest, TruncatedAndExtendedPayloadsAreCorrupt) {
  const std::vector<float> v = gradient_like(kThreeParts, 11);
  for (const Damageable& c : kDamageable) {
    const auto message = make_codec(c.spec)->encode(v);
    const std::vector<std::byte> payload = payload_of(message);
    ASSERT_EQ(make_codec(c.spec)->max_decode_threads(kThreeParts, 3), 3U) << c.spec;
    for (const std::size_t cut : {std::size_t{1}, std::size_t{9}, payload.size() / 2}) {
      const std::vector<std::byte> shorter(payload.begin(),
                                           payload.end() - static_cast<std::ptrdiff_t>(cut));
      expect_rejected_as_on_one_thread(with_payload(message, shorter), kThreeParts,
                                       std::string(c.spec) + " short by " + std::to_string(cut));
    }
    for (const std::byte extra : {std::byte{0}, std::byte{1}}) {
      std::vector<std::byte> longer = payload;
      longer.push_back(extra);
      expect_rejected_as_on_one_thread(with_payload(message, longer), kThreeParts,
                                       std::string(c.spec) + " one byte longer");
    }
    expect_rejected_as_on_one_thread(with_payload(message, {}), kThreeParts,
                                     std::string(c.spec) + " empty");
  }
}

TEST(ParallelDecodeTest, BadScalesPaddingAndFieldsGiveTheOneThreadError) {
  const std::vector<float> v = gradient_like(kThreeParts, 12, /*zero_buckets=*/false);
  for (const Damageable& c : kDamageable) {
    const auto message = make_codec(c.spec)->encode(v);
    const std::vector<std::byte> payload = payload_of(message);
    const auto scales = scale_positions(payload, kThreeParts, c.bucket, c.field_bits);
    const std::string spec = c.spec;
    const std::size_t last = scales.size() - 1;
    // Scales of a bucket in the last part, the first bucket and the last one.
    for (const std::size_t b : {scales.size() * 3 / 4, std::size_t{0}, last}) {
      for (const float scale : {-1.0f, -0.0f, std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN()}) {
        auto damaged = payload;
        set_bits(damaged, scales[b], 32, std::bit_cast<std::uint32_t>(scale));
        expect_rejected_as_on_one_thread(
            with_payload(message, damaged), kThreeParts,
            spec + " scale " + std::to_string(scale) + " in bucket " + std::to_string(b));
      }
    }
    // A zero scale in front of a bucket's fields: the rest of the stream no longer fits.
    auto zeroed = payload;
    set_bits(zeroed, scales[scales.size() / 2], 32, 0);
    expect_rejected_as_on_one_thread(with_payload(message, zeroed), kThreeParts,
                                     spec + " zeroed scale");
    // A non-zero padding bit, where the stream leaves some.
    const std::uint64_t end =
        scales[last] + 32 + std::uint64_t{kThreeParts - last * c.bucket} * c.field_bits;
    if (end % 8 != 0) {
      auto padded = payload;
      set_bits(padded, 8 * payload.size() - 1, 1, 1);
      expect_rejected_as_on_one_thread(with_payload(message, padded), kThreeParts,
                                       spec + " padding");
    }
    if (spec.starts_with("sign")) continue;  // every sign bit is valid
    // Invalid fields (a level above s or a signed zero level for qsgd, code 3 for terngrad):
    // one in the last part; then one in each of the second and last parts, where the error must
    // name the earlier bucket as the one-thread decoder does.
    const std::uint64_t bad = spec.starts_with("terngrad") ? 3
                              : spec.find("s=5") != std::string::npos
                                  ? 7                                        // level 7 > s = 5
                                  : std::uint64_t{1} << (c.field_bits - 1);  // -0
    const auto field = [&](std::size_t b, std::size_t i) {
      return scales[b] + 32 + i * c.field_bits;
    };
    auto one_bad = payload;
    set_bits(one_bad, field(scales.size() * 5 / 6, 17), c.field_bits, bad);
    expect_rejected_as_on_one_thread(with_payload(message, one_bad), kThreeParts,
                                     spec + " bad field in the last part");
    auto two_bad = one_bad;
    set_bits(two_bad, field(scales.size() / 2, c.bucket - 1), c.field_bits, bad);
    expect_rejected_as_on_one_thread(with_payload(message, two_bad), kThreeParts,
                                     spec + " bad fields in two parts");
    EXPECT_NE(outcome(with_payload(message, two_bad), kThreeParts, 3U)
                  .error.find("element " + std::to_string(scales.size() / 2 * c.bucket) + " "),
              std::string::npos)
        << spec;
  }
}

TEST(ParallelDecodeTest, DamagedPayloadsFailOrDecodeAsOnOneThread) {
  // Single-bit flips all over real payloads (scales, fields, padding) and byte truncations:
  // whatever the one-thread decoder makes of each, three threads make the same. Payloads with
  // and without zero buckets (the two ways of finding the parts).
  for (const Damageable& c : kDamageable) {
    const std::vector<float> v = gradient_like(kThreeParts, 13, (&c - kDamageable) % 2 == 0);
    const auto message = make_codec(c.spec)->encode(v);
    const std::vector<std::byte> payload = payload_of(message);
    RngStream rng(RngKey::make(7, 0, 0, RngPurpose::kTest));
    int rejected = 0;
    for (int k = 0; k < 60; ++k) {
      auto damaged = payload;
      const std::uint64_t bit =
          k == 0 ? 8 * payload.size() - 1 : rng.next_below(8 * payload.size());
      damaged[bit / 8] ^= static_cast<std::byte>(1U << (bit % 8));
      if (k % 10 == 9) damaged.resize(damaged.size() - 1 - rng.next_below(16));
      const auto damaged_message = with_payload(message, damaged);
      const Outcome one = outcome(damaged_message, kThreeParts, std::nullopt);
      const Outcome three = outcome(damaged_message, kThreeParts, 3U);
      EXPECT_EQ(three.error, one.error) << c.spec << " bit " << bit;
      EXPECT_EQ(difference(three.bits, one.bits), "") << c.spec << " bit " << bit;
      rejected += one.error.empty() ? 0 : 1;
    }
    EXPECT_GT(rejected, 0) << c.spec;
  }
}

}  // namespace
}  // namespace thinwire::codec
