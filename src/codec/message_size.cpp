#include "thinwire/codec/message_size.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "thinwire/codec/message.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/codec/wangni.hpp"
#include "thinwire/core/bit_io.hpp"

namespace thinwire::codec {
namespace {

// Params sections: each codec's own constant, the one its encoder writes and sizes with.
constexpr std::uint64_t kTopKParamsBytes = TopKCodec::kParamsBytes;
constexpr std::uint64_t kTernGradParamsBytes = TernGradCodec::kParamsBytes;
constexpr std::uint64_t kRandKParamsBytes = RandKCodec::kParamsBytes;
constexpr std::uint64_t kRandKSharedParamsBytes =
    RandKCodec::kParamsBytes + RandKCodec::kSharedSeedParamsBytes;
constexpr std::uint64_t kWangniParamsBytes = WangniCodec::kParamsBytes;
constexpr std::uint64_t kScaleBits = 32;
constexpr std::uint64_t kValueBits = 32;
// E⌈X/8⌉·8 − E X for a random payload of X bits whose residue mod 8 is near uniform.
constexpr double kMeanPaddingBits = 3.5;

std::uint64_t fixed_index_width(std::uint64_t d) noexcept {
  return d <= 1 ? 0 : static_cast<std::uint64_t>(std::bit_width(d - 1));
}

// Exact bits of ascending indices: Elias-delta gaps or fixed ⌈log2 d⌉-bit fields (sparse_coding).
std::uint64_t index_bits(std::span<const std::uint32_t> kept_sorted, std::size_t d,
                         IndexCoding index) noexcept {
  if (index == IndexCoding::kFixed) return kept_sorted.size() * fixed_index_width(d);
  std::uint64_t bits = 0;
  std::uint64_t next = 0;
  for (const std::uint32_t i : kept_sorted) {
    bits += EliasDelta::bits(i + 1 - next);
    next = std::uint64_t{i} + 1;
  }
  return bits;
}

// Whole-message bits for a payload of exactly `payload_bits` bits.
std::uint64_t exact_message_bits(std::uint64_t params_bytes, std::uint64_t payload_bits) noexcept {
  return 8 * (kHeaderBytes + params_bytes) + (payload_bits + 7) / 8 * 8;
}

// Whole-message bits for a payload of (expected) `payload_bits` bits; `random` says whether the
// size varies with the codec's random numbers.
double message_bits(std::uint64_t params_bytes, double payload_bits, bool random) noexcept {
  if (!random) {
    return static_cast<double>(
        exact_message_bits(params_bytes, static_cast<std::uint64_t>(std::llround(payload_bits))));
  }
  return static_cast<double>(8 * (kHeaderBytes + params_bytes)) + payload_bits + kMeanPaddingBits;
}

// bits(2^a) − bits(2^a − 1) for a = 1..63: where Elias gamma and delta lengths grow.
template <IntegerCode Code>
std::array<double, 64> code_steps() noexcept {
  std::array<double, 64> steps{};
  for (unsigned a = 1; a < 64; ++a) {
    const std::uint64_t t = std::uint64_t{1} << a;
    steps[a] = static_cast<double>(Code::bits(t)) - static_cast<double>(Code::bits(t - 1));
  }
  return steps;
}

std::size_t bucket_length(std::size_t d, std::uint32_t bucket) noexcept {
  return bucket == 0 || bucket > d ? d : static_cast<std::size_t>(bucket);
}

// The QSGD bucket scale exactly as the encoder computes it (qsgd.cpp: 2-norm accumulated in
// double then rounded to fp32, or the max-norm).
float qsgd_scale(std::span<const float> u, QsgdParams::Norm norm) noexcept {
  if (norm == QsgdParams::Norm::kMax) {
    float m = 0.0f;
    for (float x : u) m = std::max(m, std::fabs(x));
    return m;
  }
  double sum = 0.0;
  for (float x : u) sum += static_cast<double>(x) * static_cast<double>(x);
  return static_cast<float>(std::sqrt(sum));
}

// Per-thread scratch for the prefix products (tuners run on many worker threads at once).
std::vector<double>& fast_scratch() {
  thread_local std::vector<double> scratch;
  return scratch;
}

}  // namespace

double expected_gap_bits(std::span<const double> q, bool delta, bool terminator,
                         std::vector<double>& scratch) {
  static const std::array<double, 64> kGammaSteps = code_steps<EliasGamma>();
  static const std::array<double, 64> kDeltaSteps = code_steps<EliasDelta>();
  const std::array<double, 64>& steps = delta ? kDeltaSteps : kGammaSteps;
  const double first_bits = 1.0;  // bits(1) is 1 for both codes
  const std::size_t n = q.size();
  // log_sum[m] = Σ_{j<m, q_j<1} log(1 − q_j); certain[m] = #{j < m : q_j >= 1}.
  scratch.assign(2 * (n + 1), 0.0);
  double* log_sum = scratch.data();
  double* certain = scratch.data() + n + 1;
  for (std::size_t j = 0; j < n; ++j) {
    const double qj = std::clamp(q[j], 0.0, 1.0);
    log_sum[j + 1] = log_sum[j] + (qj < 1.0 ? std::log1p(-qj) : 0.0);
    certain[j + 1] = certain[j] + (qj >= 1.0 ? 1.0 : 0.0);
  }
  // Without underflow the window products are ratios of prefix products: a division instead of
  // an exp per term (the prefix product stays above e^-700 > 1e-304, a normal double).
  const bool fast = log_sum[n] > -700.0;
  std::vector<double>& product = fast_scratch();
  if (fast) {
    product.resize(n + 1);
    for (std::size_t j = 0; j <= n; ++j) product[j] = std::exp(log_sum[j]);
  }
  // E[bits(gap ending at i)] given that i is kept (i = n: the terminator).
  const auto gap_bits = [&](std::size_t i) {
    double bits = first_bits;
    for (unsigned a = 1; a < 64; ++a) {
      const std::uint64_t t = std::uint64_t{1} << a;
      if (t > i + 1) break;
      const std::size_t from = i + 1 - static_cast<std::size_t>(t);  // elements [from, i) dropped
      if (certain[i] - certain[from] > 0.5) break;  // longer gaps are impossible too
      const double log_p = log_sum[i] - log_sum[from];
      // P(gap >= t) < e^-40 (and smaller for every longer gap): below double's resolution of a
      // sum of at most 64·d bits, so the rest of the series is dropped.
      if (log_p < -40.0) break;
      bits += steps[a] * (fast ? product[i] / product[from] : std::exp(log_p));
    }
    return bits;
  };
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double qi = std::clamp(q[i], 0.0, 1.0);
    if (qi > 0.0) total += qi * gap_bits(i);
  }
  if (terminator) total += gap_bits(n);
  return total;
}

std::uint64_t topk_message_bits(std::span<const std::uint32_t> kept_sorted, std::size_t d,
                                IndexCoding index) {
  return exact_message_bits(kTopKParamsBytes,
                            index_bits(kept_sorted, d, index) + kValueBits * kept_sorted.size());
}

double qsgd_payload_bits(std::span<const float> v, const QsgdParams& p,
                         std::vector<double>& scratch) {
  const std::size_t d = v.size();
  if (d == 0) return 0.0;
  const std::size_t bucket = bucket_length(d, p.bucket);
  const double s = p.levels;
  const auto packed_width = static_cast<double>(1 + qsgd_level_bits(p.levels));
  std::vector<double> q;  // keep probabilities of one bucket (Elias only)
  double total = 0.0;
  for (std::size_t first = 0; first < d; first += bucket) {
    const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
    total += kScaleBits;
    const float scale = qsgd_scale(u, p.norm);
    if (scale == 0.0f) continue;
    if (p.coding == QsgdParams::Coding::kPacked) {
      total += packed_width * static_cast<double>(u.size());
      continue;
    }
    // Level ℓ+1 with probability f = s·r − ℓ, else ℓ (SPEC §2): sign bit when non-zero, level in
    // Elias gamma, gap when non-zero.
    const double inv = s / static_cast<double>(scale);
    q.resize(u.size());
    for (std::size_t i = 0; i < u.size(); ++i) {
      const double sr = std::min(static_cast<double>(std::fabs(u[i])) * inv, s);
      const double floor_sr = std::floor(sr);
      const double f = sr - floor_sr;
      const auto level = static_cast<std::uint64_t>(floor_sr);
      if (level == 0) {
        q[i] = f;
        total += f * (1.0 + 1.0);  // sign + gamma(1)
      } else {
        q[i] = 1.0;
        total += 1.0 + (1.0 - f) * EliasGamma::bits(level) + f * EliasGamma::bits(level + 1);
      }
    }
    const bool delta = qsgd_delta_gaps(u.size(), p.levels);
    total += expected_gap_bits(q, delta, /*terminator=*/true, scratch);
  }
  return total;
}

double qsgd_message_bits(std::span<const float> v, const QsgdParams& p,
                         std::vector<double>& scratch) {
  const double payload = qsgd_payload_bits(v, p, scratch);
  return message_bits(kQsgdParamsBytes, payload, p.coding == QsgdParams::Coding::kElias);
}

std::uint64_t qsgd_packed_message_bits(std::uint64_t buckets, std::uint64_t nonzero_elements,
                                       std::uint32_t levels) noexcept {
  const auto packed_width = std::uint64_t{1} + qsgd_level_bits(levels);
  return exact_message_bits(kQsgdParamsBytes,
                            kScaleBits * buckets + packed_width * nonzero_elements);
}

double topk_qsgd_message_bits(std::span<const std::uint32_t> kept_sorted,
                              std::span<const float> kept_values, std::size_t d, IndexCoding index,
                              const QsgdParams& qsgd) {
  std::vector<double> scratch;
  const double values = qsgd_payload_bits(kept_values, qsgd, scratch);
  return message_bits(kTopKParamsBytes + kQsgdParamsBytes,
                      static_cast<double>(index_bits(kept_sorted, d, index)) + values,
                      qsgd.coding == QsgdParams::Coding::kElias);
}

std::uint64_t terngrad_message_bits(std::span<const float> v, const TernGradParams& p) {
  const std::size_t d = v.size();
  std::uint64_t payload = 0;
  if (d > 0) {
    const std::size_t bucket = bucket_length(d, p.bucket);
    for (std::size_t first = 0; first < d; first += bucket) {
      const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
      payload += kScaleBits;
      if (terngrad_scale(u, p.clip) != 0.0f) payload += 2 * u.size();
    }
  }
  return exact_message_bits(kTernGradParamsBytes, payload);
}

double randk_message_bits(std::size_t d, std::size_t k, bool shared_seed) {
  k = std::min(k, d);
  if (shared_seed) return static_cast<double>(exact_message_bits(kRandKSharedParamsBytes, 32 * k));
  if (k == 0) return static_cast<double>(exact_message_bits(kRandKParamsBytes, 0));
  // Every gap g of a uniform k-subset of [0, d) has P(g >= t) = C(d−t+1, k)/C(d, k).
  const auto log_choose = [](double n, double r) {
    return std::lgamma(n + 1) - std::lgamma(r + 1) - std::lgamma(n - r + 1);
  };
  const auto dd = static_cast<double>(d);
  const auto kk = static_cast<double>(k);
  const double log_all = log_choose(dd, kk);
  double per_gap = 1.0;  // bits(1)
  for (unsigned a = 1; a < 64; ++a) {
    const std::uint64_t t = std::uint64_t{1} << a;
    if (t > d - k + 1) break;
    const double step =
        static_cast<double>(EliasDelta::bits(t)) - static_cast<double>(EliasDelta::bits(t - 1));
    per_gap += step * std::exp(log_choose(dd - static_cast<double>(t) + 1, kk) - log_all);
  }
  const bool random = k < d;  // k = d keeps every index: all gaps are 1
  return message_bits(kRandKParamsBytes, kk * per_gap + static_cast<double>(32 * k), random);
}

double wangni_message_bits(std::span<const float> v, double density, std::vector<double>& scratch) {
  return wangni_message_bits_at_cap(v, wangni_cap(v, density), scratch);
}

double wangni_message_bits_at_cap(std::span<const float> v, float cap,
                                  std::vector<double>& scratch) {
  const auto cap_d = static_cast<double>(cap);
  std::vector<double> p(v.size());
  double kept = 0.0;
  double value_bits = 0.0;
  bool random = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float a = std::fabs(v[i]);
    if (a == 0.0f) {
      p[i] = 0.0;
    } else if (a >= cap) {
      p[i] = 1.0;
      value_bits += 1.0 + 32.0;  // flag + exact fp32
    } else {
      p[i] = static_cast<double>(a) / cap_d;
      value_bits += p[i] * (1.0 + 1.0);  // flag + sign
      random = true;
    }
    kept += p[i];
  }
  // The count is Elias-delta(N + 1); its length is a step function of N, taken at E N.
  const double count_bits =
      static_cast<double>(EliasDelta::bits(static_cast<std::uint64_t>(std::llround(kept)) + 1));
  const double gaps = expected_gap_bits(p, /*delta=*/true, /*terminator=*/false, scratch);
  return message_bits(kWangniParamsBytes, kScaleBits + count_bits + gaps + value_bits, random);
}

}  // namespace thinwire::codec
