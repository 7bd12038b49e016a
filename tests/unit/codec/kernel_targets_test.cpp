// Every Highway kernel (src/codec/kernels/) against its scalar oracle on every SIMD target this CPU
// supports, switched in-process with kernels::use_target; and the messages of the bucketed and
// cast codecs byte for byte alike on every target (the same seed gives the same bytes). Sizes
// cover multiples and non-multiples of every lane count (1..16), the chunk and the rounding block.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cast.hpp"
#include "kernels/targets.hpp"
#include "qsgd_kernels.hpp"
#include "sparse_test_util.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/float_cast.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/codec/simd.hpp"
#include "thinwire/core/checksum.hpp"
#include "thinwire/core/rounding.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace thinwire::codec {
namespace {

constexpr std::size_t kSizes[] = {0, 1, 3, 7, 8, 15, 16, 17, 33, 100, 1023, 1024, 1025, 3000};

// Runs body() on every compiled target the CPU has, then goes back to the target in force before
// (the program may run under --simd-target, support/simd_main.cpp).
template <typename Body>
void for_each_target(Body body) {
  const std::int64_t before = kernels::current_target();
  const std::vector<std::int64_t> targets = kernels::compiled_targets();
  ASSERT_FALSE(targets.empty());
  for (const std::int64_t t : targets) {
    kernels::use_target(t);
    ASSERT_EQ(kernels::current_target(), t);
    SCOPED_TRACE(simd_target());
    body();
    if (::testing::Test::HasFatalFailure()) break;
  }
  kernels::use_target(before == targets.front() ? 0 : before);
}

std::vector<float> input(std::size_t d, std::uint64_t seed) {
  std::vector<float> v = testing::log_uniform_vector(testing::test_key(seed), d, -6.0, 6.0);
  for (std::size_t i = 0; i < d; i += 7) v[i] = -v[i];
  if (d > 3) v[3] = 0.0f;
  if (d > 5) v[5] = -0.0f;
  return v;
}

// The scalar oracle of qsgd_fields (the fp32 branch of stochastic_level in qsgd.cpp).
std::uint32_t qsgd_field(float x, std::uint32_t r, float inv, std::uint32_t s, unsigned width) {
  const std::uint32_t xbits = std::bit_cast<std::uint32_t>(x);
  const float ax = std::bit_cast<float>(xbits & 0x7FFFFFFFU);
  const float sr = std::min(ax * inv, static_cast<float>(s));
  const auto level0 = static_cast<std::uint32_t>(static_cast<std::int32_t>(sr));
  const std::uint32_t level = level0 + round_up24(r, (sr - static_cast<float>(level0)) * 0x1.0p24f);
  return level | (((xbits >> 31) & static_cast<std::uint32_t>(level != 0)) << width);
}

std::uint32_t terngrad_code(float x, std::uint32_t r, float scale, float inv) {
  const float ax = std::fabs(x);
  const auto keep =
      static_cast<std::uint32_t>(round_up24(r, std::min(ax, scale) * inv * 0x1.0p24f) != 0);
  return keep << static_cast<std::uint32_t>(x < 0.0f);
}

TEST(KernelTargetsTest, EveryTargetIsListedAndNamed) {
  const std::vector<std::string> names = simd_targets();
  ASSERT_FALSE(names.empty());
  const std::string now = simd_target();
  EXPECT_NE(std::find(names.begin(), names.end(), now), names.end());
  EXPECT_THROW(limit_simd_target("no-such-target"), InvalidArgument);
  limit_simd_target(names.back());
  EXPECT_EQ(simd_target(), names.back());
  limit_simd_target(names.front());
  EXPECT_EQ(simd_target(), names.front());
  limit_simd_target(now);
  EXPECT_EQ(simd_target(), now);
}

TEST(KernelTargetsTest, RoundingStreamMatchesTheSoftwareDefinition) {
  const RoundingKey key(RngKey::make(3, 0, 9, RngPurpose::kQuantize));
  std::vector<std::uint32_t> got(3000);
  for_each_target([&] {
    for (const std::uint64_t first : {0UL, 1UL, 3UL, 15UL, 16UL, 1000UL, 1023UL, 1024UL, 99999UL}) {
      for (const std::size_t n : kSizes) {
        kernels::rounding_bits(key, first, n, got.data());
        for (std::size_t k = 0; k < n; ++k) {
          ASSERT_EQ(got[k], key.bits24(first + k)) << "first " << first << " k " << k;
        }
      }
    }
  });
}

TEST(KernelTargetsTest, QsgdAndTernGradFieldsMatchTheOracle) {
  const RoundingKey key(RngKey::make(5, 1, 2, RngPurpose::kQuantize));
  for_each_target([&] {
    for (const std::size_t n : kSizes) {
      const std::vector<float> v = input(n, 40 + n);
      const float scale = n == 0 ? 1.0f : kernels::max_abs(v.data(), n);
      const float inv_s = scale == 0.0f ? 0.0f : 1.0f / scale;
      for (const std::uint32_t s : {1U, 7U, 127U, 1000U}) {
        const unsigned width = static_cast<unsigned>(std::bit_width(s));
        const float inv = static_cast<float>(s) * inv_s;
        std::vector<std::uint32_t> got(n);
        kernels::qsgd_fields(v.data(), n, 77, inv, s, width, key, got.data());
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(got[i], qsgd_field(v[i], key.bits24(77 + i), inv, s, width))
              << "n " << n << " s " << s << " i " << i;
        }
      }
      std::vector<std::uint32_t> codes(n);
      kernels::terngrad_fields(v.data(), n, 5, scale, inv_s, key, codes.data());
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(codes[i], terngrad_code(v[i], key.bits24(5 + i), scale, inv_s)) << i;
      }
    }
  });
}

TEST(KernelTargetsTest, ValueKernelsMatchTheOracle) {
  for_each_target([&] {
    for (const std::size_t n : kSizes) {
      std::vector<std::uint32_t> fields(n);
      std::vector<std::uint32_t> codes(n);
      for (std::size_t i = 0; i < n; ++i) {
        fields[i] = static_cast<std::uint32_t>((i * 2654435761U) >> 7) & 0xFF;  // 7-bit levels
        codes[i] = static_cast<std::uint32_t>(i * 7 % 3);
      }
      const double step = 0.3 / 100.0;
      for (const bool overwrite : {true, false}) {
        std::vector<float> got(n, 0.5f);
        const bool bad =
            kernels::qsgd_values(fields.data(), n, step, 100, 7, got.data(), overwrite);
        bool want_bad = false;
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint32_t level = fields[i] & 0x7F;
          const std::uint32_t neg = fields[i] >> 7;
          want_bad |= level > 100 || (neg != 0 && level == 0);
          const float m = std::bit_cast<float>(
              std::bit_cast<std::uint32_t>(static_cast<float>(step * level)) | (neg << 31));
          ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i]),
                    std::bit_cast<std::uint32_t>(overwrite ? m : 0.5f + m))
              << i;
        }
        EXPECT_EQ(bad, want_bad) << n;
        std::vector<float> tern(n, 0.5f);
        EXPECT_FALSE(kernels::terngrad_values(codes.data(), n, 0.75f, tern.data(), overwrite));
        for (std::size_t i = 0; i < n; ++i) {
          const float m = codes[i] == 1 ? 0.75f : codes[i] == 2 ? -0.75f : 0.0f;
          ASSERT_EQ(tern[i], overwrite ? m : 0.5f + m) << i;
        }
      }
      if (n > 0) {
        codes[n - 1] = 3;
        std::vector<float> tern(n);
        EXPECT_TRUE(kernels::terngrad_values(codes.data(), n, 1.0f, tern.data(), true)) << n;
      }
    }
  });
}

TEST(KernelTargetsTest, ReductionsHaveTheFixedOrderAndBitsTheirPositions) {
  for_each_target([&] {
    for (const std::size_t n : kSizes) {
      std::vector<float> v = input(n, 90 + n);
      double acc_abs[8] = {};
      double acc_sq[8] = {};
      double acc_var[8] = {};
      std::uint32_t m = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double x = v[i];
        acc_abs[i % 8] += std::fabs(x);
        acc_sq[i % 8] += x * x;
        const double sr = std::min(std::fabs(x) * 3.7, 16.0);
        const double f = sr - std::floor(sr);
        acc_var[i % 8] += f * (1.0 - f);
        m = std::max(m, std::bit_cast<std::uint32_t>(v[i]) & 0x7FFFFFFFU);
      }
      const auto fixed = [](const double* a) {
        return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
      };
      EXPECT_EQ(kernels::sum_abs(v.data(), n), fixed(acc_abs)) << n;
      EXPECT_EQ(kernels::sum_squares(v.data(), n), fixed(acc_sq)) << n;
      EXPECT_EQ(kernels::rounding_variance_sum(v.data(), n, 3.7, 16.0), fixed(acc_var)) << n;
      EXPECT_EQ(std::bit_cast<std::uint32_t>(kernels::max_abs(v.data(), n)), m) << n;
      EXPECT_TRUE(kernels::all_finite(v.data(), n));
      if (n > 0) {
        v[n - 1] = std::bit_cast<float>(0x7FC00000U);
        EXPECT_FALSE(kernels::all_finite(v.data(), n)) << n;
        v[n - 1] = -INFINITY;
        EXPECT_FALSE(kernels::all_finite(v.data(), n)) << n;
      }
      const std::size_t nb = n / 8;
      std::vector<std::uint8_t> signs(nb + 1, 0xAA);
      kernels::sign_bytes(v.data(), nb, signs.data());
      std::vector<std::uint32_t> fields(8 * nb);
      for (std::size_t i = 0; i < 8 * nb; ++i) fields[i] = static_cast<std::uint32_t>(i % 5) << 3;
      std::vector<std::uint8_t> nonzero(nb + 1, 0xAA);
      kernels::nonzero_bytes(fields.data(), nb, 0x10, nonzero.data());
      for (std::size_t j = 0; j < nb; ++j) {
        std::uint32_t want = 0;
        std::uint32_t want_nz = 0;
        for (std::size_t t = 0; t < 8; ++t) {
          want |= static_cast<std::uint32_t>(v[8 * j + t] < 0.0f) << t;
          want_nz |= static_cast<std::uint32_t>((fields[8 * j + t] & 0x10) != 0) << t;
        }
        ASSERT_EQ(signs[j], want) << j;
        ASSERT_EQ(nonzero[j], want_nz) << j;
      }
      EXPECT_EQ(signs[nb], 0xAA);
      std::vector<std::uint8_t> bits(n / 8 + 1);
      for (std::size_t j = 0; j < bits.size(); ++j)
        bits[j] = static_cast<std::uint8_t>(j * 37 + 11);
      for (const bool overwrite : {true, false}) {
        std::vector<float> out(n, 2.0f);
        kernels::sign_values(bits.data(), n, 0.5f, out.data(), overwrite);
        for (std::size_t i = 0; i < n; ++i) {
          const float x = ((bits[i / 8] >> (i % 8)) & 1) != 0 ? -0.5f : 0.5f;
          ASSERT_EQ(out[i], overwrite ? x : 2.0f + x) << i;
        }
      }
    }
  });
}

// Every fp32 exponent, the rounding boundaries of both formats, and every 16-bit pattern back.
TEST(KernelTargetsTest, CastsMatchTheScalarConversions) {
  std::vector<float> v;
  for (std::uint32_t e = 0; e < 256; ++e) {
    for (const std::uint32_t m : {0U, 1U, 0xFFFU, 0x1000U, 0x1001U, 0x2000U, 0x3000U, 0x7FFFU,
                                  0x8000U, 0x8001U, 0x18000U, 0x7FFFFFU, 0x400000U, 0x123456U}) {
      v.push_back(std::bit_cast<float>((e << 23) | m));
      v.push_back(std::bit_cast<float>(0x80000000U | (e << 23) | m));
    }
  }
  const std::vector<float> more = input(1001, 7);
  v.insert(v.end(), more.begin(), more.end());
  for_each_target([&] {
    for (const CastFormat format : {CastFormat::kFp16, CastFormat::kBf16}) {
      for (const std::size_t n : {v.size(), std::size_t{13}, std::size_t{0}}) {
        std::vector<std::uint16_t> got(n + 1, 0xABCD);
        bool finite = true;
        for (std::size_t i = 0; i < n; ++i) finite &= std::isfinite(v[i]);
        EXPECT_EQ(
            kernels::cast_to_16(format, v.data(), n, reinterpret_cast<std::byte*>(got.data())),
            finite);
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint16_t want =
              format == CastFormat::kFp16 ? float_to_half(v[i]) : float_to_bfloat16(v[i]);
          if (std::isnan(v[i])) continue;  // NaN payloads: rejected before they matter
          ASSERT_EQ(got[i], want) << std::hexfloat << v[i];
        }
        EXPECT_EQ(got[n], 0xABCD);
      }
      std::vector<std::uint16_t> all(65536);
      for (std::uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<std::uint16_t>(h);
      for (const bool overwrite : {true, false}) {
        std::vector<float> out(all.size(), 1.0f);
        EXPECT_FALSE(kernels::cast_from_16(format, reinterpret_cast<const std::byte*>(all.data()),
                                           all.size(), out.data(), overwrite));
        const std::uint16_t exp = format == CastFormat::kFp16 ? 0x7C00 : 0x7F80;
        for (std::uint32_t h = 0; h < 65536; ++h) {
          if ((h & exp) == exp) continue;
          const float x = format == CastFormat::kFp16
                              ? half_to_float(static_cast<std::uint16_t>(h))
                              : bfloat16_to_float(static_cast<std::uint16_t>(h));
          const float want = overwrite ? x : 1.0f + x;
          ASSERT_EQ(std::bit_cast<std::uint32_t>(out[h]), std::bit_cast<std::uint32_t>(want)) << h;
        }
        EXPECT_TRUE(kernels::cast_from_16(format, reinterpret_cast<const std::byte*>(all.data()),
                                          100, out.data(), overwrite));
      }
    }
  });
}

// The finite-input paths of the casts (fp16 through the CPU's conversion where it has one after
// clamping to ±65504, bf16 through a clamp of the magnitude) at their edges, in vectors with no
// infinity or NaN, and again with one in every vector (the integer path): saturation around
// 65504 / 65520 and the largest bf16, every subnormal half and the ties between them, the
// underflow to ±0, fp32 subnormals, ±0, and ties to even in the normal range; then a sweep of
// every exponent the formats round in, with the 13 / 16 dropped bits at and around half.
TEST(KernelTargetsTest, CastEdgesMatchTheScalarConversions) {
  std::vector<std::uint32_t> bits = {
      0x00000000U, 0x00000001U, 0x00008000U, 0x00018000U, 0x007FFFFFU, 0x00800000U, 0x33000000U,
      0x33000001U, 0x32FFFFFFU, 0x33800000U, 0x33C00000U, 0x337FFFFFU, 0x387FC000U, 0x387FE000U,
      0x387FFFFFU, 0x38800000U, 0x38801000U, 0x38803000U, 0x3F801000U, 0x3F803000U, 0x3F808000U,
      0x3F818000U, 0x3F800FFFU, 0x3F801001U, 0x477FE000U, 0x477FE001U, 0x477FEFFFU, 0x477FF000U,
      0x477FF001U, 0x47800000U, 0x49742400U, 0x7F7F7FFFU, 0x7F7F8000U, 0x7F7FFFFFU, 0x7F000000U};
  // Every subnormal half k·2^-24 and the ties (k + 1/2)·2^-24 between them.
  for (std::uint32_t k = 1; k < 2048; ++k) {
    bits.push_back(std::bit_cast<std::uint32_t>(static_cast<float>(k) * 0x1.0p-25f));
  }
  for (std::uint32_t e = 100; e < 146; ++e) {
    for (std::uint32_t hi = 0; hi < 1024; hi += 3) {
      for (const std::uint32_t lo : {0x0U, 0x1U, 0xFFFU, 0x1000U, 0x1001U, 0x1FFFU}) {
        bits.push_back((e << 23) | (hi << 13) | lo);
      }
    }
  }
  for (const std::uint32_t e : {0U, 1U, 126U, 127U, 253U, 254U}) {
    for (std::uint32_t hi = 0; hi < 128; ++hi) {
      for (const std::uint32_t lo : {0x0U, 0x7FFFU, 0x8000U, 0x8001U}) {
        bits.push_back((e << 23) | (hi << 16) | lo);
      }
    }
  }
  const std::size_t finite = bits.size();
  for (std::size_t i = 0; i < finite; ++i) bits.push_back(bits[i] | 0x80000000U);
  std::vector<float> v(bits.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::bit_cast<float>(bits[i]);
  // The same values with an infinity in every 4th lane.
  std::vector<float> mixed = v;
  for (std::size_t i = 0; i < mixed.size(); i += 4) mixed[i] = INFINITY;
  for_each_target([&] {
    for (const CastFormat format : {CastFormat::kFp16, CastFormat::kBf16}) {
      const auto oracle = [&](float x) {
        return format == CastFormat::kFp16 ? float_to_half(x) : float_to_bfloat16(x);
      };
      std::vector<std::uint16_t> got(v.size());
      EXPECT_TRUE(kernels::cast_to_16(format, v.data(), v.size(),
                                      reinterpret_cast<std::byte*>(got.data())));
      for (std::size_t i = 0; i < v.size(); ++i) {
        ASSERT_EQ(got[i], oracle(v[i])) << std::hexfloat << v[i];
      }
      EXPECT_FALSE(kernels::cast_to_16(format, mixed.data(), mixed.size(),
                                       reinterpret_cast<std::byte*>(got.data())));
      for (std::size_t i = 0; i < mixed.size(); ++i) {
        ASSERT_EQ(got[i], oracle(mixed[i])) << std::hexfloat << mixed[i];
      }
    }
  });
}

// The same seed gives the same message on every target, and it decodes to the same floats.
TEST(KernelTargetsTest, MessagesAreTheSameOnEveryTarget) {
  const char* specs[] = {"qsgd:s=7,bucket=512,norm=max",
                         "qsgd:s=127,bucket=512,norm=max",
                         "qsgd:s=1,bucket=64,norm=max",
                         "qsgd:s=16,bucket=100",
                         "qsgd:s=300,bucket=0,coding=elias",
                         "terngrad",
                         "terngrad:bucket=100",
                         "sign",
                         "sign:bucket=512",
                         "sign:bucket=7",
                         "fp16",
                         "bf16",
                         "topk:k=0.01",
                         "randk:k=0.1",
                         "randk:k=0.01,shared_seed=3"};
  for (const char* spec : specs) {
    SCOPED_TRACE(spec);
    const std::unique_ptr<Codec> codec = make_codec(spec);
    for (const std::size_t n :
         {std::size_t{1}, std::size_t{1000}, std::size_t{4099}, std::size_t{70000}}) {
      const std::vector<float> v = input(n, n);
      const EncodeContext ctx{.seed = 17};
      std::vector<std::byte> want;
      std::vector<float> want_out;
      for_each_target([&] {
        const std::vector<std::byte> got = codec->encode(v, ctx);
        std::vector<float> out(n, 0.25f);
        decode(got, out, DecodeMode::kAccumulate);
        if (want.empty()) {
          want = got;
          want_out = out;
          return;
        }
        ASSERT_EQ(got, want) << n;
        ASSERT_EQ(std::memcmp(out.data(), want_out.data(), 4 * n), 0) << n;
      });
    }
  }
}

// The message checksum (Checksum64, whose stripes a Highway kernel accumulates) equals xxhash's
// own XXH3-64 on every target: every length around the 240-byte short-input limit, the 256-byte
// buffer and the 1024-byte blocks, whole and in pieces of every kind (a byte at a time, a message
// header then its body, random lengths).
TEST(KernelTargetsTest, ChecksumIsXxh3OnEveryTarget) {
  std::vector<std::byte> data(70000);
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (std::byte& b : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x >> 56);
  }
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 1100; ++n) lengths.push_back(n);
  for (const std::size_t n : {2047UL, 2048UL, 2049UL, 4095UL, 4096UL, 4097UL, 16383UL, 16384UL,
                              16385UL, 65536UL, 70000UL}) {
    lengths.push_back(n);
  }
  for_each_target([&] {
    std::uint64_t split = 1;
    for (const std::size_t n : lengths) {
      const std::span<const std::byte> bytes(data.data(), n);
      const std::uint64_t want = XXH3_64bits(bytes.data(), n);
      ASSERT_EQ(checksum64(bytes), want) << n;
      Checksum64 header_body;
      header_body.update(bytes.first(std::min<std::size_t>(n, 24)));
      header_body.update(bytes.subspan(std::min<std::size_t>(n, 24)));
      ASSERT_EQ(header_body.digest(), want) << n;
      Checksum64 pieces;
      for (std::size_t at = 0; at < n;) {
        split = split * 6364136223846793005ULL + 1442695040888963407ULL;
        // Mostly short pieces, sometimes a long one.
        const std::size_t len = std::min<std::size_t>(
            n - at, (split >> 60) == 0 ? (split >> 40) % 9000 : (split >> 40) % 300);
        pieces.update(bytes.subspan(at, len));
        at += len;
        if (at < n) {
          ASSERT_EQ(pieces.digest(), XXH3_64bits(bytes.data(), at)) << n << " " << at;
        }
      }
      ASSERT_EQ(pieces.digest(), want) << n;
      if (n <= 1100 && n % 7 == 0) {
        Checksum64 bytewise;
        for (std::size_t i = 0; i < n; ++i) bytewise.update(bytes.subspan(i, 1));
        ASSERT_EQ(bytewise.digest(), want) << n;
      }
    }
  });
}

}  // namespace
}  // namespace thinwire::codec
