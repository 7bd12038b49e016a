// The scan kernels (src/tune/scan_kernels.cpp, Highway) against plain loops that state their
// contract (scan_kernels.hpp: 16 interleaved partial sums, a fixed tree, no fused multiply-add),
// bit for bit. CTest runs this program once per SIMD target the CPU has (--simd-target), so every
// target is held to the same floats.
#include "src/tune/scan_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace thinwire::tune::scan {
namespace {

constexpr std::size_t kLanes = 16;

// ---- The oracle: element i to partial sum i mod 16, then acc[t] += acc[t + w], w = 8, 4, 2, 1.
template <class T, class Term>
T tree_sum(const float* u, std::size_t n, Term term) {
  T acc[kLanes] = {};
  for (std::size_t i = 0; i < n; ++i) acc[i % kLanes] += term(u[i]);
  for (std::size_t w = kLanes / 2; w > 0; w /= 2) {
    for (std::size_t t = 0; t < w; ++t) acc[t] += acc[t + w];
  }
  return acc[0];
}

double square_d(float x) {
  const auto y = static_cast<double>(x);
  return y * y;
}
float square_f(float x) { return x * x; }
float abs_f(float x) { return std::fabs(x); }
std::uint32_t key(float x) { return magnitude_key_of(std::bit_cast<std::uint32_t>(x)); }
std::uint32_t max_key(const float* u, std::size_t n) {
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, key(u[i]));
  return m;
}
float variance_term(float x, float scale, float cap) {
  const float t = std::min(x * scale, cap);
  const float f = t - static_cast<float>(static_cast<std::int32_t>(t));
  return f - f * f;
}

std::vector<float> gradient(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-30, 30);
  std::vector<float> v(n);
  for (float& x : v) x = std::ldexp(normal(rng), exponent(rng) / 3);
  if (n > 3) v[n / 3] = 0.0f;
  if (n > 5) v[n / 2] = -0.0f;
  return v;
}

const std::size_t kLengths[] = {0, 1, 5, 15, 16, 17, 63, 64, 65, 127, 1000, 4096 + 7, 20000};

TEST(ScanKernelsTest, BlockStatsAreThePlainLoops) {
  for (const std::size_t d : kLengths) {
    const std::vector<float> v = gradient(d, d + 1);
    const std::size_t nb = block_count(d);
    std::vector<double> sq(nb);
    std::vector<std::uint32_t> mk(nb);
    std::vector<float> l1(nb);
    std::vector<double> sq2(nb);
    std::vector<std::uint32_t> mk2(nb);
    block_stats(v.data(), d, sq.data(), mk.data(), l1.data());
    block_stats(v.data(), d, sq2.data(), mk2.data());
    std::vector<float> sqf(nb);
    std::vector<std::uint32_t> mkf(nb);
    std::vector<float> l1f(nb);
    block_stats_fp32(v.data(), d, sqf.data(), mkf.data(), l1f.data());
    double norm = 0.0;
    for (std::size_t b = 0; b < nb; ++b) {
      const float* u = v.data() + b * kBlock;
      const std::size_t n = std::min(kBlock, d - b * kBlock);
      SCOPED_TRACE(testing::Message() << "d = " << d << ", block " << b);
      const double want = tree_sum<double>(u, n, square_d);
      norm += want;
      EXPECT_EQ(std::bit_cast<std::uint64_t>(sq[b]), std::bit_cast<std::uint64_t>(want));
      EXPECT_EQ(std::bit_cast<std::uint64_t>(sq2[b]), std::bit_cast<std::uint64_t>(want));
      EXPECT_EQ(mk[b], max_key(u, n));
      EXPECT_EQ(mk2[b], max_key(u, n));
      EXPECT_EQ(mkf[b], max_key(u, n));
      const float l1_want = tree_sum<float>(u, n, abs_f);
      EXPECT_EQ(std::bit_cast<std::uint32_t>(l1[b]), std::bit_cast<std::uint32_t>(l1_want));
      EXPECT_EQ(std::bit_cast<std::uint32_t>(l1f[b]), std::bit_cast<std::uint32_t>(l1_want));
      EXPECT_EQ(std::bit_cast<std::uint32_t>(sqf[b]),
                std::bit_cast<std::uint32_t>(tree_sum<float>(u, n, square_f)));
    }
    EXPECT_EQ(std::bit_cast<std::uint64_t>(blocked_squared_norm(v.data(), d)),
              std::bit_cast<std::uint64_t>(norm));
  }
}

TEST(ScanKernelsTest, LevelSumsAreThePlainLoops) {
  for (const std::size_t n :
       {std::size_t{1}, std::size_t{7}, std::size_t{16}, std::size_t{33}, std::size_t{64}}) {
    const std::vector<float> u = gradient(n, 100 + n);
    float scale = 0.0f;
    for (const float x : u) scale = std::max(scale, std::fabs(x));
    for (const float inv : {1.0f / scale, 0.37f / scale, 3.0f}) {
      double got[9] = {};
      level_sums(u.data(), n, inv, got);
      float a[kBlock] = {};
      for (std::size_t i = 0; i < n; ++i) a[i] = std::fabs(u[i]);
      for (std::size_t j = 0; j < 9; ++j) {
        const auto cap = static_cast<float>((2u << j) - 1);  // 1, 3, 7, ..., 511
        const float s = inv * cap;
        float acc[kLanes] = {};
        for (std::size_t i = 0; i < kBlock; ++i) acc[i % kLanes] += variance_term(a[i], s, cap);
        float sum = 0.0f;
        for (const float x : acc) sum += x;
        SCOPED_TRACE(testing::Message() << "n = " << n << ", inv = " << inv << ", j = " << j);
        EXPECT_EQ(std::bit_cast<std::uint64_t>(got[j]),
                  std::bit_cast<std::uint64_t>(static_cast<double>(sum)));
      }
    }
  }
}

TEST(ScanKernelsTest, SquareRootsAreThePlainLoop) {
  for (const std::size_t n : kLengths) {
    std::vector<float> x = gradient(n, 200 + n);
    for (float& y : x) y = y * y;
    std::vector<float> got(n);
    square_roots(x.data(), n, got.data());
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(
          std::bit_cast<std::uint32_t>(got[i]),
          std::bit_cast<std::uint32_t>(static_cast<float>(std::sqrt(static_cast<double>(x[i])))))
          << "n = " << n << ", i = " << i;
    }
  }
}

TEST(ScanKernelsTest, BucketVarianceSumsAreThePlainLoops) {
  constexpr std::size_t kRun = 1024;
  for (const std::size_t n : kLengths) {
    const std::vector<float> v = gradient(n, 300 + n);
    for (const std::size_t bucket : {std::size_t{64}, std::size_t{512}, std::size_t{3000}, n}) {
      if (bucket == 0) continue;
      const std::size_t buckets = (n + bucket - 1) / bucket;
      std::vector<float> inv(buckets);
      for (std::size_t k = 0; k < buckets; ++k) {
        const float m =
            std::bit_cast<float>(max_key(v.data() + k * bucket, std::min(bucket, n - k * bucket)));
        inv[k] = m == 0.0f ? 0.0f : 7.0f / m;
      }
      std::vector<double> got(buckets);
      bucket_variance_sums(v.data(), n, bucket, inv.data(), 7.0f, got.data());
      for (std::size_t k = 0; k < buckets; ++k) {
        const std::size_t len = std::min(bucket, n - k * bucket);
        double want = 0.0;
        for (std::size_t run = 0; run < len; run += kRun) {
          want += static_cast<double>(
              tree_sum<float>(v.data() + k * bucket + run, std::min(kRun, len - run),
                              [&](float x) { return variance_term(std::fabs(x), inv[k], 7.0f); }));
        }
        EXPECT_EQ(std::bit_cast<std::uint64_t>(got[k]), std::bit_cast<std::uint64_t>(want))
            << "n = " << n << ", bucket = " << bucket << ", k = " << k;
      }
    }
  }
}

}  // namespace
}  // namespace thinwire::tune::scan
