// The vectorized QSGD kernels against the scalar reference (KernelPath::kReference): identical
// payload bits for the same key and identical decoded floats, over sizes that are and are not
// multiples of the vector width (16), the chunk (1024), the rounding block (1024) and the bucket;
// plus the rounding stream's vector generator against its software definition.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_path.hpp"
#include "kernels/targets.hpp"
#include "qsgd_kernels.hpp"
#include "sparse_test_util.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/sign.hpp"
#include "thinwire/codec/simd.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/rounding.hpp"

namespace thinwire::codec {
namespace {

std::vector<float> heavy_tailed(std::size_t d, std::uint64_t seed) {
  std::vector<float> v = testing::log_uniform_vector(testing::test_key(seed), d, -6.0, 6.0);
  if (d > 3) v[3] = 0.0f;
  if (d > 5) v[5] = -0.0f;
  return v;
}

std::vector<std::byte> payload(std::span<const float> v, const QsgdParams& p, KernelPath path) {
  std::vector<std::byte> buf(qsgd_payload_max_bytes(v.size(), p) + 8);
  BitWriter w(buf);
  // A 3-bit prefix so that buckets start at unaligned bit positions.
  w.put(5, 3);
  qsgd_encode_payload(v, p, RngKey::make(11, 2, 3, RngPurpose::kQuantize), w, path);
  buf.resize(w.finish());
  return buf;
}

std::vector<std::uint32_t> decode_bits(std::span<const std::byte> bytes, const QsgdParams& p,
                                       std::size_t d, DecodeMode mode, KernelPath path) {
  std::vector<float> out(d, 0.25f);
  BitReader r(bytes);
  EXPECT_EQ(r.get(3), 5u);
  qsgd_decode_payload(r, p, out, mode, path);
  std::vector<std::uint32_t> bits(d);
  std::memcpy(bits.data(), out.data(), 4 * d);
  return bits;
}

TEST(QsgdKernelsTest, FastAndReferenceGiveIdenticalBitsAndValues) {
  const std::size_t sizes[] = {1, 5, 15, 16, 17, 63, 511, 512, 513, 1023, 1024, 1025, 3001, 5000};
  const std::uint32_t levels[] = {1, 2, 3, 7, 8, 15, 31, 127, 255, 1000, kQsgdMaxLevels};
  const std::uint32_t buckets[] = {0, 7, 512, 1000};
  int cases = 0;
  for (std::size_t d : sizes) {
    const std::vector<float> v = heavy_tailed(d, d);
    for (std::uint32_t s : levels) {
      for (std::uint32_t bucket : buckets) {
        for (auto norm : {QsgdParams::Norm::kMax, QsgdParams::Norm::kL2}) {
          for (auto coding : {QsgdParams::Coding::kPacked, QsgdParams::Coding::kElias}) {
            if (coding == QsgdParams::Coding::kElias && s > 1000) continue;  // slow, same code
            const QsgdParams p{.levels = s, .bucket = bucket, .norm = norm, .coding = coding};
            const auto fast = payload(v, p, KernelPath::kFast);
            const auto ref = payload(v, p, KernelPath::kReference);
            ASSERT_EQ(fast, ref) << "d=" << d << " " << qsgd_params_spec(p);
            for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
              ASSERT_EQ(decode_bits(fast, p, d, mode, KernelPath::kFast),
                        decode_bits(fast, p, d, mode, KernelPath::kReference))
                  << "d=" << d << " " << qsgd_params_spec(p);
            }
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 1000);
}

// The whole-bucket runs (qsgd_pack_buckets, taken when the payload starts on a byte boundary and
// the bucket is a multiple of 16) against the reference: buckets that are odd multiples of 16 (a
// rounding block then starts in the middle of a pair of groups), a zero bucket, a bucket with a
// subnormal scale (the double path, which stops a run), and a partial last bucket.
// The input of the whole-bucket run tests: 40 buckets (and 37 elements more when `tail`), bucket 3
// all zeros, bucket 7 subnormal (its scale takes the double path).
std::vector<float> run_test_vector(std::uint32_t bucket, bool tail) {
  const std::size_t d = std::size_t{40} * bucket + (tail ? 37 : 0);
  std::vector<float> v = heavy_tailed(d, bucket + d);
  std::fill_n(v.begin() + 3 * bucket, bucket, 0.0f);
  for (std::size_t i = 7 * bucket; i < 8 * bucket; ++i) v[i] = (i % 3 == 0 ? -1 : 1) * 1e-42f;
  return v;
}

// The bytes encode(w) writes through a writer w over `capacity` bytes, starting on a byte (so
// that the runs can be taken).
template <typename Encode>
std::vector<std::byte> aligned_payload(std::size_t capacity, Encode encode) {
  std::vector<std::byte> buf(capacity);
  BitWriter w(buf);
  encode(w);
  buf.resize(w.finish());
  return buf;
}

constexpr RngKey kRunKey = RngKey::make(11, 2, 3, RngPurpose::kQuantize);

TEST(QsgdKernelsTest, WholeBucketRunsMatchTheReference) {
  for (const std::uint32_t bucket : {16U, 48U, 512U, 528U}) {
    for (const bool tail : {false, true}) {
      const std::vector<float> v = run_test_vector(bucket, tail);
      for (const std::uint32_t s : {1U, 5U, 7U, 100U, 127U}) {
        const QsgdParams p{.levels = s, .bucket = bucket};
        const std::size_t capacity = qsgd_payload_max_bytes(v.size(), p);
        const auto ref = aligned_payload(capacity, [&](BitWriter& w) {
          qsgd_encode_payload(v, p, kRunKey, w, KernelPath::kReference);
        });
        for (const unsigned threads : {1U, 3U}) {
          const auto fast = aligned_payload(capacity, [&](BitWriter& w) {
            qsgd_encode_payload(v, p, kRunKey, w, KernelPath::kFast, threads);
          });
          ASSERT_EQ(fast, ref) << "d=" << v.size() << " " << qsgd_params_spec(p) << " threads "
                               << threads;
        }
      }
    }
  }
}

// TernGrad's whole-bucket runs (kernels::terngrad_pack_buckets) against the reference, as above.
TEST(TernGradKernelsTest, WholeBucketRunsMatchTheReference) {
  for (const std::uint32_t bucket : {16U, 48U, 512U, 528U}) {
    for (const bool tail : {false, true}) {
      const std::vector<float> v = run_test_vector(bucket, tail);
      const TernGradParams p{.bucket = bucket};
      const std::size_t capacity = 8 * v.size() + 64;
      const auto ref = aligned_payload(capacity, [&](BitWriter& w) {
        terngrad_encode_payload(v, p, kRunKey, w, KernelPath::kReference);
      });
      for (const unsigned threads : {1U, 3U}) {
        const auto fast = aligned_payload(capacity, [&](BitWriter& w) {
          terngrad_encode_payload(v, p, kRunKey, w, KernelPath::kFast, threads);
        });
        ASSERT_EQ(fast, ref) << "d=" << v.size() << " bucket=" << bucket << " threads " << threads;
      }
    }
  }
}

// Near the largest floats the inverse of the scale is subnormal and coarse, so an element at the
// scale can get p = |x|·fl(1/scale) = 1 + 2^-22 in fp32, and ⌈p·2^24⌉ + r reaches 2^25 when the
// rounding value r is 2^24 - 4 or more: the element must still be kept. The test finds such an r
// in the stream (one element in 2^22), puts that element at such a scale, and compares with the
// reference.
TEST(TernGradKernelsTest, KeepsAnElementWhoseProbabilityRoundsAboveOne) {
  float scale = 0x1.8p127f;
  while (scale * (1.0f / scale) < 0x1.000004p0f && std::isfinite(scale)) {
    scale = std::nextafter(scale, INFINITY);
  }
  ASSERT_TRUE(std::isfinite(scale));
  const auto ceiling = static_cast<std::uint32_t>(std::ceil(scale * (1.0f / scale) * 0x1.0p24));
  const std::uint32_t enough = (1U << 25) - ceiling;  // r from here on carries into bit 25
  constexpr std::size_t kSpan = 1 << 16;
  std::vector<std::uint32_t> r(kSpan);
  RngKey key{};
  std::size_t at = kSpan;
  for (std::uint64_t iteration = 0; at == kSpan; ++iteration) {
    ASSERT_LT(iteration, 100000U);
    key = RngKey::make(11, 2, iteration, RngPurpose::kQuantize);
    kernels::rounding_bits(RoundingKey(key), 0, kSpan, r.data());
    at = static_cast<std::size_t>(
        std::find_if(r.begin(), r.end(), [&](std::uint32_t x) { return x >= enough; }) - r.begin());
  }
  constexpr std::size_t kBucket = 512;
  std::vector<float> v((at / kBucket + 1) * kBucket, 0.0f);
  for (std::size_t i = at / kBucket * kBucket; i < v.size(); ++i) v[i] = i % 2 ? scale : -scale;
  const TernGradParams p{.bucket = kBucket};
  const auto encode = [&](KernelPath path) {
    return aligned_payload(8 * v.size() + 64,
                           [&](BitWriter& w) { terngrad_encode_payload(v, p, key, w, path); });
  };
  const auto fast = encode(KernelPath::kFast);
  ASSERT_EQ(fast, encode(KernelPath::kReference)) << "element " << at;
  std::vector<float> out(v.size());
  BitReader reader(fast);
  terngrad_decode_payload(reader, kBucket, out, DecodeMode::kOverwrite);
  EXPECT_EQ(out[at], v[at]) << "element " << at;
}

// A non-finite element inside a run gives the reference's error.
TEST(QsgdKernelsTest, WholeBucketRunsRejectNonFiniteInput) {
  std::vector<float> v = heavy_tailed(20 * 512, 4);
  v[9 * 512 + 100] = std::nanf("");
  const QsgdParams p{.levels = 7, .bucket = 512};
  const auto message = [&](KernelPath path) {
    std::vector<std::byte> buf(qsgd_payload_max_bytes(v.size(), p));
    BitWriter w(buf);
    try {
      qsgd_encode_payload(v, p, RngKey::make(1, 0, 0, RngPurpose::kQuantize), w, path);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string fast = message(KernelPath::kFast);
  EXPECT_NE(fast.find("element 4708"), std::string::npos) << fast;
  EXPECT_EQ(fast, message(KernelPath::kReference));
}

// Elias with s = √d and one bucket (the QSGD paper's setting): long gaps and levels that do and do
// not fit one 64-bit window.
TEST(QsgdKernelsTest, EliasWithSqrtDLevels) {
  for (std::size_t d : {20000, 65537}) {
    const std::vector<float> v = heavy_tailed(d, 3);
    const auto s = static_cast<std::uint32_t>(std::sqrt(static_cast<double>(d)));
    for (auto norm : {QsgdParams::Norm::kMax, QsgdParams::Norm::kL2}) {
      const QsgdParams p{
          .levels = s, .bucket = 0, .norm = norm, .coding = QsgdParams::Coding::kElias};
      const auto fast = payload(v, p, KernelPath::kFast);
      ASSERT_EQ(fast, payload(v, p, KernelPath::kReference)) << "d=" << d;
      for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
        ASSERT_EQ(decode_bits(fast, p, d, mode, KernelPath::kFast),
                  decode_bits(fast, p, d, mode, KernelPath::kReference))
            << "d=" << d;
      }
    }
  }
}

// The Elias-gamma encoder kernel (kernels::qsgd_elias_gamma) and the windowed table decoder on
// every SIMD target, against the scalar reference: gaps past the kernel's code table (256) and
// past 2^16, levels at s (its longest code, up to the kernel's largest s), s just above that (no
// kernel), sizes around its 256-element groups, and unaligned bucket starts.
TEST(QsgdKernelsTest, EliasKernelMatchesTheReferenceOnEveryTarget) {
  const std::int64_t before = kernels::current_target();
  for (const std::int64_t target : kernels::compiled_targets()) {
    kernels::use_target(target);
    SCOPED_TRACE(simd_target());
    for (std::uint32_t s :
         {3u, 4096u, kernels::kEliasKernelMaxLevels, kernels::kEliasKernelMaxLevels + 1}) {
      for (std::size_t d : {std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{257},
                            std::size_t{3000}, std::size_t{140000}}) {
        // Mostly zeros (long gaps) with a few maximal elements (level s under the max norm) and a
        // heavy-tailed stretch.
        std::vector<float> v(d, 0.0f);
        const std::vector<float> tail = heavy_tailed(std::min<std::size_t>(d, 700), d);
        std::copy(tail.begin(), tail.end(),
                  v.begin() + static_cast<std::ptrdiff_t>(d - tail.size()));
        for (std::size_t i = 0; i < d; i += 70001) v[i] = (i % 2 == 0 ? 1.0f : -1.0f) * 64.0f;
        for (std::uint32_t bucket : {0u, 1000u}) {
          for (auto norm : {QsgdParams::Norm::kMax, QsgdParams::Norm::kL2}) {
            const QsgdParams p{
                .levels = s, .bucket = bucket, .norm = norm, .coding = QsgdParams::Coding::kElias};
            const auto fast = payload(v, p, KernelPath::kFast);
            ASSERT_EQ(fast, payload(v, p, KernelPath::kReference))
                << "d=" << d << " " << qsgd_params_spec(p);
            for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
              ASSERT_EQ(decode_bits(fast, p, d, mode, KernelPath::kFast),
                        decode_bits(fast, p, d, mode, KernelPath::kReference))
                  << "d=" << d << " " << qsgd_params_spec(p);
            }
          }
        }
      }
    }
  }
  kernels::use_target(before);
}

// Every level at s (the longest codes) in a buffer of exactly qsgd_payload_max_bytes: the kernel
// leaves the last groups to the checked loop before its 8-byte stores could pass the end, and the
// bits are still the reference's.
TEST(QsgdKernelsTest, EliasKernelStopsBeforeTheBufferEnd) {
  for (std::uint32_t s : {255u, 4096u, kernels::kEliasKernelMaxLevels}) {
    const std::size_t d = 5000;
    const std::vector<float> v(d, -4.0f);  // every |x| = max: level s, 2·⌊log2 s⌋ + 3 bits each
    const QsgdParams p{.levels = s,
                       .bucket = 0,
                       .norm = QsgdParams::Norm::kMax,
                       .coding = QsgdParams::Coding::kElias};
    std::vector<std::vector<std::byte>> out;
    for (auto path : {KernelPath::kFast, KernelPath::kReference}) {
      std::vector<std::byte> buf(qsgd_payload_max_bytes(d, p));
      BitWriter w(buf);
      qsgd_encode_payload(v, p, RngKey::make(1, 0, 0, RngPurpose::kQuantize), w, path);
      buf.resize(w.finish());
      out.push_back(buf);
    }
    EXPECT_EQ(out[0], out[1]) << "s=" << s;
    EXPECT_EQ(out[0].size(), (32 + d * (1 + 1 + EliasGamma::bits(s)) + 1 + 7) / 8) << "s=" << s;
  }
}

// Hand-built Elias buckets whose codes straddle 64-bit words at every bit offset (a prefix of 0 to
// 63 bits): long gaps (up to 2^31) and levels up to s = 2^20 between runs of short triples; the
// windowed table decoder reads the same values and stops at the same bit as the bit-by-bit
// reference, in both modes.
TEST(QsgdKernelsTest, EliasDecoderReadsCodesAcrossWordsAtEveryOffset) {
  const std::uint32_t s = kQsgdMaxLevels;
  const std::uint64_t d = 3000;
  struct Triple {
    std::uint64_t gap;
    bool negative;
    std::uint64_t level;
  };
  std::vector<Triple> triples;
  for (int i = 0; i < 40; ++i)
    triples.push_back(
        {1 + static_cast<std::uint64_t>(i % 3), i % 2 == 1, 1 + static_cast<std::uint64_t>(i % 4)});
  triples.push_back({1000, true, s});
  triples.push_back({1, false, s - 1});
  for (int i = 0; i < 20; ++i) triples.push_back({2, false, 1});
  triples.push_back({700, false, 12345});
  std::uint64_t used = 0;
  for (const Triple& t : triples) used += t.gap;
  for (std::uint64_t prefix = 0; prefix < 64; ++prefix) {
    std::vector<std::byte> buf(2048);
    BitWriter w(buf);
    w.put(0, static_cast<unsigned>(prefix));
    w.put(std::bit_cast<std::uint32_t>(2.0f), 32);
    for (const Triple& t : triples) {
      EliasGamma::put(w, t.gap);
      w.put_bit(t.negative);
      EliasGamma::put(w, t.level);
    }
    EliasGamma::put(w, d + 1 - used);
    buf.resize(w.finish());
    const QsgdParams p{.levels = s, .bucket = 0, .coding = QsgdParams::Coding::kElias};
    for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
      std::vector<std::vector<float>> outs;
      std::vector<std::uint64_t> ends;
      for (auto path : {KernelPath::kFast, KernelPath::kReference}) {
        std::vector<float> out(d, 0.25f);
        BitReader r(buf);
        (void)r.get(static_cast<unsigned>(prefix));
        qsgd_decode_payload(r, p, out, mode, path);
        outs.push_back(out);
        ends.push_back(r.position());
      }
      ASSERT_EQ(std::memcmp(outs[0].data(), outs[1].data(), 4 * d), 0) << "prefix " << prefix;
      ASSERT_EQ(ends[0], ends[1]) << "prefix " << prefix;
      const float top = mode == DecodeMode::kOverwrite ? -2.0f : 0.25f - 2.0f;
      ASSERT_EQ(outs[0][used - 1 - 700 - 20 * 2 - 1], top) << "prefix " << prefix;
    }
  }
}

// Damaged Elias payloads (one flipped bit, or the end cut off): the table-driven fast decoder and
// the bit-by-bit reference either both reject the message with the same error, or both decode the
// same floats and stop at the same bit. Small s makes levels above s likely inside the table's
// 10-bit windows.
TEST(QsgdKernelsTest, EliasDamageIsSeenAlikeByBothPaths) {
  struct Outcome {
    std::string error;
    std::vector<std::uint32_t> bits;
    std::uint64_t position = 0;
    bool operator==(const Outcome&) const = default;
  };
  const auto decode = [](std::span<const std::byte> bytes, const QsgdParams& p, std::size_t d,
                         KernelPath path) {
    Outcome o;
    std::vector<float> out(d, 0.25f);
    BitReader r(bytes);
    try {
      (void)r.get(3);
      qsgd_decode_payload(r, p, out, DecodeMode::kOverwrite, path);
      o.bits.resize(d);
      std::memcpy(o.bits.data(), out.data(), 4 * d);
      o.position = r.position();
    } catch (const CorruptMessage& e) {
      o.error = e.what();
    }
    return o;
  };
  int rejected = 0;
  int decoded = 0;
  for (std::uint32_t s : {2u, 3u, 7u, 30u}) {
    const std::size_t d = 700;
    const QsgdParams p{.levels = s, .bucket = 256, .coding = QsgdParams::Coding::kElias};
    const std::vector<float> v = heavy_tailed(d, s);
    const std::vector<std::byte> good = payload(v, p, KernelPath::kReference);
    const RngKey pick = RngKey::make(s, 0, 0, RngPurpose::kTest);
    for (std::uint64_t trial = 0; trial < 300; ++trial) {
      std::vector<std::byte> bad = good;
      if (trial % 10 == 9) {
        bad.resize(1 + static_cast<std::size_t>(pick.uniform_double(trial) *
                                                static_cast<double>(good.size() - 1)));
      } else {
        const auto bit = static_cast<std::size_t>(pick.uniform_double(trial) *
                                                  static_cast<double>(8 * good.size()));
        bad[bit / 8] ^= std::byte{static_cast<unsigned char>(1U << (bit % 8))};
      }
      const Outcome fast = decode(bad, p, d, KernelPath::kFast);
      ASSERT_EQ(fast, decode(bad, p, d, KernelPath::kReference)) << "s=" << s << " trial " << trial;
      (fast.error.empty() ? decoded : rejected) += 1;
    }
  }
  EXPECT_GT(rejected, 100);  // the damage is seen, not only survived
  EXPECT_GT(decoded, 100);
}

// Invalid 4-bit fields (a level above s, a signed zero) are caught by both paths, whether they
// fall in the vector loop (first 32 fields of a 16-byte group) or in the tail.
TEST(QsgdKernelsTest, BothPathsRejectInvalidFields) {
  const QsgdParams p{.levels = 5, .bucket = 0, .norm = QsgdParams::Norm::kMax};
  for (std::size_t bad_at : {std::size_t{3}, std::size_t{31}, std::size_t{38}}) {
    for (std::uint64_t bad_field : {std::uint64_t{6}, std::uint64_t{8}}) {
      std::vector<std::byte> buf(64);
      BitWriter w(buf);
      w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
      for (std::size_t i = 0; i < 40; ++i) w.put(i == bad_at ? bad_field : i % 6, 4);
      buf.resize(w.finish());
      for (auto path : {KernelPath::kFast, KernelPath::kReference}) {
        std::vector<float> out(40);
        BitReader r(buf);
        EXPECT_THROW(qsgd_decode_payload(r, p, out, DecodeMode::kOverwrite, path), CorruptMessage)
            << bad_at << " " << bad_field;
      }
    }
  }
}

// The same for 8-bit fields (s = 100: levels 101..127 and the signed zero 0x80 are invalid), in
// the 16-field vector groups of the table decoder and in its tail.
TEST(QsgdKernelsTest, BothPathsRejectInvalidByteFields) {
  const QsgdParams p{.levels = 100, .bucket = 0, .norm = QsgdParams::Norm::kMax};
  for (std::size_t bad_at : {std::size_t{0}, std::size_t{17}, std::size_t{35}}) {
    for (std::uint64_t bad_field : {std::uint64_t{101}, std::uint64_t{127}, std::uint64_t{0x80}}) {
      std::vector<std::byte> buf(64);
      BitWriter w(buf);
      w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
      for (std::size_t i = 0; i < 37; ++i) {
        // Valid fields: levels 1..100, every third one negative (sign bit 0x80).
        const std::uint64_t valid = ((i * 37) % 100 + 1) | (i % 3 == 0 ? 0x80 : 0);
        w.put(i == bad_at ? bad_field : valid, 8);
      }
      buf.resize(w.finish());
      for (auto path : {KernelPath::kFast, KernelPath::kReference}) {
        std::vector<float> out(37);
        BitReader r(buf);
        EXPECT_THROW(qsgd_decode_payload(r, p, out, DecodeMode::kAccumulate, path), CorruptMessage)
            << bad_at << " " << bad_field;
      }
    }
  }
}

// Subnormal scales take the double-precision branch (s/scale overflows fp32); both paths agree.
TEST(QsgdKernelsTest, TinyScalesTakeTheSameBranchInBothPaths) {
  std::vector<float> v(2000);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = std::bit_cast<float>(static_cast<std::uint32_t>(i % 97)) * (i % 2 == 0 ? 1.0f : -1.0f);
  }
  for (std::uint32_t s : {1u, 7u, 127u}) {
    const QsgdParams p{.levels = s, .bucket = 512, .norm = QsgdParams::Norm::kMax};
    EXPECT_EQ(payload(v, p, KernelPath::kFast), payload(v, p, KernelPath::kReference));
  }
}

// A non-finite element is rejected by the fused check of the max-norm fast path.
TEST(QsgdKernelsTest, FastPathRejectsNonFiniteInput) {
  std::vector<float> v = heavy_tailed(3000, 1);
  v[2500] = std::nanf("");
  const QsgdParams p{.levels = 7, .bucket = 512, .norm = QsgdParams::Norm::kMax};
  EXPECT_THROW(payload(v, p, KernelPath::kFast), InvalidArgument);
  v[2500] = -INFINITY;
  EXPECT_THROW(payload(v, p, KernelPath::kFast), InvalidArgument);
}

std::vector<std::byte> terngrad_payload(std::span<const float> v, const TernGradParams& p,
                                        KernelPath path) {
  std::vector<std::byte> buf(v.size() / 4 + (v.size() + 1) * 4 + 16);
  BitWriter w(buf);
  w.put(5, 3);
  terngrad_encode_payload(v, p, RngKey::make(11, 2, 3, RngPurpose::kQuantize), w, path);
  buf.resize(w.finish());
  return buf;
}

std::vector<std::uint32_t> terngrad_decode_bits(std::span<const std::byte> bytes,
                                                std::uint32_t bucket, std::size_t d,
                                                DecodeMode mode, KernelPath path) {
  std::vector<float> out(d, 0.25f);
  BitReader r(bytes);
  EXPECT_EQ(r.get(3), 5u);
  terngrad_decode_payload(r, bucket, out, mode, path);
  std::vector<std::uint32_t> bits(d);
  std::memcpy(bits.data(), out.data(), 4 * d);
  return bits;
}

TEST(TernGradKernelsTest, FastAndReferenceGiveIdenticalBitsAndValues) {
  for (std::size_t d : {1, 5, 16, 17, 511, 512, 513, 1023, 1025, 3001, 5000}) {
    std::vector<float> v = heavy_tailed(d, d + 7);
    for (std::uint32_t bucket : {0u, 7u, 512u, 1000u}) {
      for (double clip : {0.0, 2.5}) {
        const TernGradParams p{.bucket = bucket, .clip = clip};
        const auto fast = terngrad_payload(v, p, KernelPath::kFast);
        ASSERT_EQ(fast, terngrad_payload(v, p, KernelPath::kReference))
            << "d=" << d << " bucket=" << bucket << " clip=" << clip;
        for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
          ASSERT_EQ(terngrad_decode_bits(fast, bucket, d, mode, KernelPath::kFast),
                    terngrad_decode_bits(fast, bucket, d, mode, KernelPath::kReference))
              << "d=" << d << " bucket=" << bucket;
        }
      }
    }
  }
  // Subnormal scales take the double branch in both paths.
  std::vector<float> tiny(2000);
  for (std::size_t i = 0; i < tiny.size(); ++i) {
    tiny[i] =
        std::bit_cast<float>(static_cast<std::uint32_t>(i % 97)) * (i % 2 == 0 ? 1.0f : -1.0f);
  }
  EXPECT_EQ(terngrad_payload(tiny, {.bucket = 512}, KernelPath::kFast),
            terngrad_payload(tiny, {.bucket = 512}, KernelPath::kReference));
}

// Whole messages with large buckets (and bucket = 0): the payload equals each bucket's scale from
// sign_scale followed by the reference bit loop.
TEST(SignKernelsTest, LargeBucketMessagesMatchTheReference) {
  for (std::size_t d : {std::size_t{1} << 16, (std::size_t{1} << 16) + 13, std::size_t{100003}}) {
    const std::vector<float> v = heavy_tailed(d, d);
    for (const std::uint32_t bucket : {0U, 70001U}) {
      std::vector<std::byte> expected((d / 8) + 64);
      BitWriter w(expected);
      const std::size_t b = bucket == 0 ? d : std::min<std::size_t>(bucket, d);
      for (std::size_t first = 0; first < d; first += b) {
        const std::span<const float> u = std::span(v).subspan(first, std::min(b, d - first));
        const float scale = sign_scale(u);
        w.put(std::bit_cast<std::uint32_t>(scale), 32);
        sign_encode_bucket(u, w, KernelPath::kReference);
      }
      expected.resize(w.finish());
      const std::vector<std::byte> message = SignCodec(bucket).encode(v);
      const MessageView view = parse_message(message);
      ASSERT_TRUE(
          std::equal(view.payload.begin(), view.payload.end(), expected.begin(), expected.end()))
          << "d=" << d << " bucket=" << bucket;
    }
  }
}

TEST(SignKernelsTest, FastAndReferenceGiveIdenticalBitsAndValues) {
  for (std::size_t d : {1, 5, 7, 8, 9, 63, 64, 65, 1023, 8192, 8199, 20000}) {
    const std::vector<float> v = heavy_tailed(d, d + 3);
    std::vector<std::byte> fast(d / 8 + 16);
    std::vector<std::byte> ref(d / 8 + 16);
    BitWriter wf(fast);
    BitWriter wr(ref);
    wf.put(5, 3);
    wr.put(5, 3);
    sign_encode_bucket(v, wf, KernelPath::kFast);
    sign_encode_bucket(v, wr, KernelPath::kReference);
    fast.resize(wf.finish());
    ref.resize(wr.finish());
    ASSERT_EQ(fast, ref) << "d=" << d;
    for (auto mode : {DecodeMode::kOverwrite, DecodeMode::kAccumulate}) {
      std::vector<float> a(d, 0.25f);
      std::vector<float> b(d, 0.25f);
      BitReader ra(fast);
      BitReader rb(fast);
      ra.skip(3);
      rb.skip(3);
      sign_decode_bucket(ra, 1.5f, a, mode, KernelPath::kFast);
      sign_decode_bucket(rb, 1.5f, b, mode, KernelPath::kReference);
      ASSERT_EQ(a, b) << "d=" << d;
      for (std::size_t i = 0; i < d; ++i) {
        ASSERT_EQ(b[i],
                  (mode == DecodeMode::kOverwrite ? 0.0f : 0.25f) + (v[i] < 0.0f ? -1.5f : 1.5f));
      }
    }
  }
}

// The rounding stream's vector generator (the target this process runs on; kernel_targets_test
// covers every target) gives the software values for every start and length: unaligned starts,
// runs across rounding blocks.
TEST(QsgdKernelsTest, RoundingBitsMatchTheSoftwareStream) {
  const RoundingKey key(RngKey::make(3, 0, 9, RngPurpose::kQuantize));
  std::vector<std::uint32_t> got(3000);
  for (const std::uint64_t first : {0UL, 1UL, 3UL, 15UL, 16UL, 1000UL, 1023UL, 1024UL, 99999UL}) {
    for (const std::size_t n : {1UL, 3UL, 16UL, 17UL, 48UL, 1025UL, 3000UL}) {
      kernels::rounding_bits(key, first, n, got.data());
      for (std::size_t k = 0; k < n; ++k) {
        ASSERT_EQ(got[k], key.bits24(first + k)) << "first " << first << " k " << k;
      }
    }
  }
}

}  // namespace
}  // namespace thinwire::codec
