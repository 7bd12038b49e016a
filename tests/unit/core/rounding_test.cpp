#include "thinwire/core/rounding.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace thinwire {
namespace {

// Bytes b0..b15 as four little-endian words (the __m128i layout).
AesBlock block(const std::uint8_t (&b)[16]) {
  AesBlock x{};
  for (int i = 0; i < 16; ++i) {
    x[static_cast<std::size_t>(i / 4)] |= std::uint32_t{b[i]} << (8 * (i % 4));
  }
  return x;
}

TEST(RoundingTest, SboxMatchesTheStandard) {
  const auto& box = aes_detail::kSbox;
  EXPECT_EQ(box[0x00], 0x63);
  EXPECT_EQ(box[0x01], 0x7C);
  EXPECT_EQ(box[0x53], 0xED);  // FIPS-197's worked example
  EXPECT_EQ(box[0xFF], 0x16);
  bool seen[256] = {};
  for (const std::uint8_t y : box) seen[y] = true;
  for (const bool s : seen) EXPECT_TRUE(s);  // a permutation
}

// FIPS-197 appendix B, round 1 of the example cipher: state at the start of round 1, the round
// key, and the state at the start of round 2 (which is what AESENC returns).
TEST(RoundingTest, AesRoundMatchesTheStandardExample) {
  const AesBlock in = block({0x19, 0x3d, 0xe3, 0xbe, 0xa0, 0xf4, 0xe2, 0x2b, 0x9a, 0xc6, 0x8d, 0x2a,
                             0xe9, 0xf8, 0x48, 0x08});
  const AesBlock key = block({0xa0, 0xfa, 0xfe, 0x17, 0x88, 0x54, 0x2c, 0xb1, 0x23, 0xa3, 0x39,
                              0x39, 0x2a, 0x6c, 0x76, 0x05});
  const AesBlock out = block({0xa4, 0x9c, 0x7f, 0xf2, 0x68, 0x9f, 0x35, 0x2b, 0x6b, 0x5b, 0xea,
                              0x43, 0x02, 0x6a, 0x50, 0x49});
  EXPECT_EQ(aes_round(in, key), out);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.1,aes"))) AesBlock hardware_round(const AesBlock& x,
                                                              const AesBlock& k) {
  const __m128i y = _mm_aesenc_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.data())),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(k.data())));
  AesBlock out{};
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data()), y);
  return out;
}

TEST(RoundingTest, AesRoundMatchesTheInstruction) {
  if (!__builtin_cpu_supports("aes")) GTEST_SKIP() << "no AES-NI on this CPU";
  std::mt19937 gen(5);
  for (int t = 0; t < 2000; ++t) {
    AesBlock x{};
    AesBlock k{};
    for (auto& w : x) w = static_cast<std::uint32_t>(gen());
    for (auto& w : k) w = static_cast<std::uint32_t>(gen());
    ASSERT_EQ(aes_round(x, k), hardware_round(x, k)) << "trial " << t;
  }
}
#endif

TEST(RoundingTest, CursorMatchesDirectEvaluation) {
  const RoundingKey key(RngKey::make(3, 0, 9, RngPurpose::kQuantize));
  RoundingCursor cursor(key);
  for (std::uint64_t i = 0; i < 3 * kRoundingBlock + 7; ++i) {
    const std::uint32_t r = cursor.bits24(i);
    ASSERT_LT(r, 1U << 24);
    ASSERT_EQ(r, key.bits24(i)) << "i=" << i;
  }
  // Out of order, far away, and back.
  EXPECT_EQ(cursor.bits24(1000003), key.bits24(1000003));
  EXPECT_EQ(cursor.bits24(5), key.bits24(5));
}

TEST(RoundingTest, StreamsDependOnTheKey) {
  const RoundingKey a(RngKey::make(3, 0, 9, RngPurpose::kQuantize));
  const RoundingKey b(RngKey::make(3, 0, 10, RngPurpose::kQuantize));
  int same = 0;
  for (std::uint64_t i = 0; i < 4096; ++i) same += a.bits24(i) == b.bits24(i) ? 1 : 0;
  EXPECT_LE(same, 2);  // 4096 · 2^-24 expected
}

// n = 2^18 values as uniforms in [0, 1): mean 1/2 and variance 1/12 (standard errors ~5.6e-4
// and ~1.6e-4; the bounds are about 6 of them), every one of the 24 bits set about half the time
// (σ ~ 1e-3), and neighbours (lag 1, lag 4 = the next quad, lag 1024 = the next block)
// uncorrelated (σ of the correlation ~ 2e-3).
TEST(RoundingTest, ValuesLookUniformAndIndependent) {
  const RoundingKey key(RngKey::make(11, 2, 3, RngPurpose::kQuantize));
  const std::size_t n = std::size_t{1} << 18;
  std::vector<double> u(n);
  RoundingCursor cursor(key);
  std::vector<std::size_t> ones(24, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t r = cursor.bits24(i);
    for (unsigned b = 0; b < 24; ++b) ones[b] += (r >> b) & 1;
    u[i] = static_cast<double>(r) * 0x1.0p-24;
  }
  double sum = 0.0;
  double sum2 = 0.0;
  for (const double x : u) {
    sum += x;
    sum2 += x * x;
  }
  const double mean = sum / static_cast<double>(n);
  const double var = sum2 / static_cast<double>(n) - mean * mean;
  EXPECT_NEAR(mean, 0.5, 3.5e-3);
  EXPECT_NEAR(var, 1.0 / 12.0, 1e-3);
  for (unsigned b = 0; b < 24; ++b) {
    EXPECT_NEAR(static_cast<double>(ones[b]) / static_cast<double>(n), 0.5, 6e-3) << "bit " << b;
  }
  for (const std::size_t lag : {std::size_t{1}, std::size_t{4}, std::size_t{1024}}) {
    double c = 0.0;
    for (std::size_t i = 0; i + lag < n; ++i) c += (u[i] - 0.5) * (u[i + lag] - 0.5);
    const double corr = c / static_cast<double>(n - lag) / (1.0 / 12.0);
    EXPECT_NEAR(corr, 0.0, 1.2e-2) << "lag " << lag;
  }
}

// round_up24(r, t) over all 2^24 values of r is 1 exactly ⌈t⌉ times, for t in [0, 2^24).
TEST(RoundingTest, RoundUpHasProbabilityCeilTOver2To24) {
  for (const float t : {0.0f, 1e-30f, 0.5f, 1.0f, 12345.25f, 0x1.0p24f - 0.5f, 0x1.0p23f + 1.0f}) {
    std::uint64_t ups = 0;
    for (std::uint32_t r = 0; r < (1U << 24); ++r) ups += round_up24(r, t);
    EXPECT_EQ(ups, static_cast<std::uint64_t>(std::ceil(static_cast<double>(t)))) << "t=" << t;
    // The double form agrees.
    std::uint64_t ups_d = 0;
    for (std::uint32_t r = 0; r < (1U << 24); r += 4099) {
      ups_d += round_up24(r, static_cast<double>(t)) == round_up24(r, t) ? 0 : 1;
    }
    EXPECT_EQ(ups_d, 0U);
  }
  // t = 2^24 (a probability of exactly 1) always rounds up.
  EXPECT_EQ(round_up24(0, 0x1.0p24f), 1U);
}

}  // namespace
}  // namespace thinwire
