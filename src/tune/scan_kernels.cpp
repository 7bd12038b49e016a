#include "scan_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define THINWIRE_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define THINWIRE_CLONES
#endif

namespace thinwire::tune::scan {
namespace {

constexpr std::size_t kLanes = 16;

// Σ u_i² over 16 partial sums (element i to sum i mod 16) combined as a fixed pairwise tree.
[[gnu::always_inline]] inline double block_sum(const float* u, std::size_t n) noexcept {
  double acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t t = 0; t < kLanes; ++t) {
      const auto x = static_cast<double>(u[i + t]);
      acc[t] += x * x;
    }
  }
  for (std::size_t t = 0; i + t < n; ++t) {
    const auto x = static_cast<double>(u[i + t]);
    acc[t] += x * x;
  }
  for (std::size_t w = kLanes / 2; w > 0; w /= 2) {
    for (std::size_t t = 0; t < w; ++t) acc[t] += acc[t + w];
  }
  return acc[0];
}

[[gnu::always_inline]] inline std::uint32_t block_max(const float* u, std::size_t n) noexcept {
  std::uint32_t m[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t t = 0; t < kLanes; ++t) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, u + i + t, 4);
      m[t] = std::max(m[t], magnitude_key_of(bits));
    }
  }
  for (std::size_t t = 0; i + t < n; ++t) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, u + i + t, 4);
    m[t] = std::max(m[t], magnitude_key_of(bits));
  }
  std::uint32_t out = 0;
  for (const std::uint32_t x : m) out = std::max(out, x);
  return out;
}

[[gnu::always_inline]] inline float block_l1(const float* u, std::size_t n) noexcept {
  float acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t t = 0; t < kLanes; ++t) acc[t] += std::fabs(u[i + t]);
  }
  for (std::size_t t = 0; i + t < n; ++t) acc[t] += std::fabs(u[i + t]);
  for (std::size_t w = kLanes / 2; w > 0; w /= 2) {
    for (std::size_t t = 0; t < w; ++t) acc[t] += acc[t + w];
  }
  return acc[0];
}

}  // namespace

THINWIRE_CLONES void block_stats(const float* v, std::size_t d, double* sumsq,
                                 std::uint32_t* max_key, float* l1) noexcept {
  const std::size_t full = d / kBlock;
  for (std::size_t b = 0; b < full; ++b) {
    sumsq[b] = block_sum(v + b * kBlock, kBlock);
    max_key[b] = block_max(v + b * kBlock, kBlock);
    if (l1 != nullptr) l1[b] = block_l1(v + b * kBlock, kBlock);
  }
  if (full * kBlock < d) {
    sumsq[full] = block_sum(v + full * kBlock, d - full * kBlock);
    max_key[full] = block_max(v + full * kBlock, d - full * kBlock);
    if (l1 != nullptr) l1[full] = block_l1(v + full * kBlock, d - full * kBlock);
  }
}

THINWIRE_CLONES void block_stats_fp32(const float* v, std::size_t d, float* sumsq,
                                      std::uint32_t* max_key, float* l1) noexcept {
  for (std::size_t first = 0, b = 0; first < d; first += kBlock, ++b) {
    const std::size_t n = std::min(kBlock, d - first);
    const float* u = v + first;
    float sq[kLanes] = {};
    float ab[kLanes] = {};
    std::uint32_t mk[kLanes] = {};
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (std::size_t t = 0; t < kLanes; ++t) {
        const float x = u[i + t];
        std::uint32_t bits = 0;
        std::memcpy(&bits, u + i + t, 4);
        sq[t] += x * x;
        ab[t] += std::fabs(x);
        mk[t] = std::max(mk[t], magnitude_key_of(bits));
      }
    }
    for (std::size_t t = 0; i + t < n; ++t) {
      const float x = u[i + t];
      std::uint32_t bits = 0;
      std::memcpy(&bits, u + i + t, 4);
      sq[t] += x * x;
      ab[t] += std::fabs(x);
      mk[t] = std::max(mk[t], magnitude_key_of(bits));
    }
    for (std::size_t w = kLanes / 2; w > 0; w /= 2) {
      for (std::size_t t = 0; t < w; ++t) {
        sq[t] += sq[t + w];
        ab[t] += ab[t + w];
        mk[t] = std::max(mk[t], mk[t + w]);
      }
    }
    sumsq[b] = sq[0];
    l1[b] = ab[0];
    max_key[b] = mk[0];
  }
}

THINWIRE_CLONES double blocked_squared_norm(const float* v, std::size_t d) noexcept {
  const std::size_t full = d / kBlock;
  double total = 0.0;
  for (std::size_t b = 0; b < full; ++b) total += block_sum(v + b * kBlock, kBlock);
  if (full * kBlock < d) total += block_sum(v + full * kBlock, d - full * kBlock);
  return total;
}

THINWIRE_CLONES void level_sums(const float* u, std::size_t n, float inv, double* out) noexcept {
  alignas(64) float a[kBlock] = {};  // |u_i|, zero-padded to a whole block (zeros add 0)
  for (std::size_t i = 0; i < n; ++i) a[i] = std::fabs(u[i]);
  float cap = 1.0f;
  float scale = inv;
  for (std::size_t j = 0; j < 9; ++j, cap *= 2.0f, scale *= 2.0f) {
    float acc[kLanes] = {};
    for (std::size_t i = 0; i < kBlock; i += kLanes) {
      for (std::size_t t = 0; t < kLanes; ++t) {
        const float sr = std::min(a[i + t] * scale, cap);
        const float f = sr - static_cast<float>(static_cast<std::int32_t>(sr));
        acc[t] += f - f * f;
      }
    }
    float sum = 0.0f;
    for (const float x : acc) sum += x;
    out[j] += static_cast<double>(sum);
  }
}

THINWIRE_CLONES void square_roots(const float* x, std::size_t n, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(std::sqrt(static_cast<double>(x[i])));
  }
}

THINWIRE_CLONES void bucket_variance_sums(const float* v, std::size_t n, std::size_t bucket,
                                          const float* inv, float s, double* out) noexcept {
  constexpr std::size_t kRun = 1024;
  for (std::size_t first = 0, k = 0; first < n; first += bucket, ++k) {
    const std::size_t len = std::min(bucket, n - first);
    const float scale = inv[k];
    double total = 0.0;
    for (std::size_t run = 0; run < len; run += kRun) {
      const float* u = v + first + run;
      const std::size_t m = std::min(kRun, len - run);
      float acc[kLanes] = {};
      const auto term = [scale, s](float x) {
        const float t = std::min(std::fabs(x) * scale, s);
        const float f = t - static_cast<float>(static_cast<std::int32_t>(t));
        return f - f * f;
      };
      std::size_t i = 0;
      for (; i + kLanes <= m; i += kLanes) {
        for (std::size_t t = 0; t < kLanes; ++t) acc[t] += term(u[i + t]);
      }
      for (std::size_t t = 0; i + t < m; ++t) acc[t] += term(u[i + t]);
      for (std::size_t w = kLanes / 2; w > 0; w /= 2) {
        for (std::size_t t = 0; t < w; ++t) acc[t] += acc[t + w];
      }
      total += static_cast<double>(acc[0]);
    }
    out[k] = total;
  }
}

}  // namespace thinwire::tune::scan
