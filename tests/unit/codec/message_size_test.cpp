#include "thinwire/codec/message_size.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/codec/select.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/codec/wangni.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

// Heavy-tailed test vector (Gaussian times a log-uniform scale), with some exact zeros and ties.
std::vector<float> test_vector(std::size_t d, std::uint64_t seed) {
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kSparsify);
  std::vector<float> v(d);
  for (std::size_t i = 0; i < d; ++i) {
    const double u = key.uniform_double(3 * i);
    const double w = key.uniform_double(3 * i + 1);
    const double z = std::sqrt(-2.0 * std::log(1.0 - u)) * std::cos(6.283185307179586 * w);
    v[i] = static_cast<float>(z * std::exp2(6.0 * key.uniform_double(3 * i + 2) - 3.0));
  }
  for (std::size_t i = 0; i < d; i += 17) v[i] = 0.0f;
  for (std::size_t i = 5; i < d; i += 29) v[i] = 0.5f;
  return v;
}

double encoded_bits(const codec::Codec& c, std::span<const float> v, std::uint64_t seed = 0) {
  return 8.0 * static_cast<double>(c.encode(v, {.seed = seed, .rank = 0, .iteration = 3}).size());
}

// Mean and standard error of the encoded size over `n` seeds.
struct Sample {
  double mean;
  double stderr_;
};
Sample sample_bits(const codec::Codec& c, std::span<const float> v, int n) {
  double sum = 0.0;
  double sum_sq = 0.0;
  for (int s = 0; s < n; ++s) {
    const double b = encoded_bits(c, v, static_cast<std::uint64_t>(s) + 1);
    sum += b;
    sum_sq += b * b;
  }
  const double mean = sum / n;
  const double var = std::max(0.0, sum_sq / n - mean * mean);
  return {mean, std::sqrt(var / n)};
}

// The stochastic predictions are exact expectations except for the byte padding (taken as its
// mean, 3.5 bits; the truth is within [0, 7]) and, for wangni, the count's Elias code taken at
// E N (its length changes by 1-2 bits only across a power of two). So |mean − prediction| must be
// within 5 standard errors of the sample mean (a false alarm below 1e-6) plus 8 bits.
void expect_matches_mean(double predicted, const Sample& s, const char* what) {
  EXPECT_NEAR(predicted, s.mean, 5.0 * s.stderr_ + 8.0) << what;
}

TEST(BitsModelTest, ExpectedGapBitsMatchesEnumeration) {
  // All 2^n keep patterns of a short run, against the formula, for both codes.
  const std::vector<double> q = {0.3, 1.0, 0.0, 0.7, 0.05, 0.5, 0.9, 0.2, 0.6};
  const std::size_t n = q.size();
  for (const bool delta : {false, true}) {
    for (const bool terminator : {false, true}) {
      double expected = 0.0;
      for (std::uint32_t mask = 0; mask < (1u << n); ++mask) {
        double p = 1.0;
        double bits = 0.0;
        std::uint64_t next = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const bool kept = (mask >> i) & 1u;
          p *= kept ? q[i] : 1.0 - q[i];
          if (!kept) continue;
          const std::uint64_t gap = i + 1 - next;
          bits += delta ? EliasDelta::bits(gap) : EliasGamma::bits(gap);
          next = i + 1;
        }
        if (terminator) {
          const std::uint64_t gap = n + 1 - next;
          bits += delta ? EliasDelta::bits(gap) : EliasGamma::bits(gap);
        }
        expected += p * bits;
      }
      std::vector<double> scratch;
      EXPECT_NEAR(expected_gap_bits(q, delta, terminator, scratch), expected, 1e-9)
          << "delta=" << delta << " terminator=" << terminator;
    }
  }
}

TEST(BitsModelTest, TopKIsExact) {
  for (const std::size_t d : {1ul, 2ul, 7ul, 1000ul, 4099ul}) {
    const std::vector<float> v = test_vector(d, d);
    for (const double k : {1.0, 0.01, 0.1, 0.5, 1.0 * static_cast<double>(d)}) {
      for (const auto index : {codec::IndexCoding::kElias, codec::IndexCoding::kFixed}) {
        const codec::TopKCodec c(k, index);
        std::vector<std::uint32_t> kept;
        codec::select_top_k(v, c.kept(d), kept);
        EXPECT_EQ(static_cast<double>(topk_message_bits(kept, d, index)), encoded_bits(c, v))
            << "d=" << d << " k=" << k;
      }
    }
  }
}

TEST(BitsModelTest, QsgdPackedIsExact) {
  std::vector<float> v = test_vector(3000, 1);
  std::fill(v.begin() + 512, v.begin() + 1024, 0.0f);  // a zero bucket sends only its scale
  std::vector<double> scratch;
  for (const std::uint32_t s : {1u, 3u, 16u, 255u, 256u}) {
    for (const std::uint32_t bucket : {0u, 512u, 100u}) {
      for (const auto norm : {codec::QsgdParams::Norm::kL2, codec::QsgdParams::Norm::kMax}) {
        const codec::QsgdParams p{.levels = s, .bucket = bucket, .norm = norm};
        const codec::QsgdCodec c(p);
        EXPECT_EQ(qsgd_message_bits(v, p, scratch), encoded_bits(c, v))
            << "s=" << s << " bucket=" << bucket;
      }
    }
  }
}

TEST(BitsModelTest, QsgdEliasMatchesMeanOverSeeds) {
  const std::vector<float> v = test_vector(2000, 2);
  std::vector<double> scratch;
  for (const std::uint32_t s : {1u, 2u, 8u, 45u}) {
    for (const std::uint32_t bucket : {0u, 512u}) {
      const codec::QsgdParams p{
          .levels = s, .bucket = bucket, .coding = codec::QsgdParams::Coding::kElias};
      const codec::QsgdCodec c(p);
      expect_matches_mean(qsgd_message_bits(v, p, scratch), sample_bits(c, v, 200), "qsgd elias");
    }
  }
}

TEST(BitsModelTest, TopKWithQsgdValuesMatchesMean) {
  const std::size_t d = 3000;
  const std::vector<float> v = test_vector(d, 3);
  for (const auto coding :
       {codec::QsgdParams::Coding::kPacked, codec::QsgdParams::Coding::kElias}) {
    const codec::QsgdParams q{.levels = 4, .bucket = 0, .coding = coding};
    const codec::TopKCodec c(0.1, codec::IndexCoding::kElias, q);
    std::vector<std::uint32_t> kept;
    codec::select_top_k(v, c.kept(d), kept);
    std::vector<float> values;
    for (const auto i : kept) values.push_back(v[i]);
    const double predicted = topk_qsgd_message_bits(kept, values, d, codec::IndexCoding::kElias, q);
    if (coding == codec::QsgdParams::Coding::kPacked) {
      EXPECT_EQ(predicted, encoded_bits(c, v));
    } else {
      expect_matches_mean(predicted, sample_bits(c, v, 200), "topk+qsgd elias");
    }
  }
}

TEST(BitsModelTest, TernGradIsExact) {
  std::vector<float> v = test_vector(2500, 4);
  std::fill(v.begin(), v.begin() + 600, 0.0f);
  for (const std::uint32_t bucket : {0u, 512u, 64u}) {
    for (const double clip : {0.0, 2.5}) {
      const codec::TernGradParams p{.bucket = bucket, .clip = clip};
      const codec::TernGradCodec c(p);
      EXPECT_EQ(static_cast<double>(terngrad_message_bits(v, p)), encoded_bits(c, v))
          << "bucket=" << bucket;
    }
  }
}

TEST(BitsModelTest, RandKMatchesMean) {
  const std::vector<float> v = test_vector(5000, 5);
  for (const std::size_t k : {1ul, 10ul, 400ul, 2500ul, 5000ul}) {
    const codec::RandKCodec c(static_cast<double>(k));
    expect_matches_mean(randk_message_bits(v.size(), k, false), sample_bits(c, v, 100), "randk");
    const codec::RandKCodec shared(static_cast<double>(k), 7);
    EXPECT_EQ(randk_message_bits(v.size(), k, true), encoded_bits(shared, v)) << k;
  }
}

TEST(BitsModelTest, WangniMatchesMean) {
  const std::vector<float> v = test_vector(4000, 6);
  std::vector<double> scratch;
  for (const double density : {0.001, 0.01, 0.1, 0.5, 1.0}) {
    const codec::WangniCodec c(density);
    expect_matches_mean(wangni_message_bits(v, density, scratch), sample_bits(c, v, 150), "wangni");
  }
}

}  // namespace
}  // namespace thinwire::codec
