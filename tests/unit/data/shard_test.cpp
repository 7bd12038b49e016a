#include "thinwire/data/shard.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

// n rows, 10 balanced classes (row i has class i mod 10), one dummy feature.
Dataset balanced(std::size_t n) {
  std::vector<std::int32_t> classes(n);
  for (std::size_t i = 0; i < n; ++i) classes[i] = static_cast<std::int32_t>(i % 10);
  std::vector<double> values(10);
  std::iota(values.begin(), values.end(), 0.0);
  return Dataset(DenseMatrix::Zero(static_cast<Eigen::Index>(n), 1), std::vector<float>(n),
                 std::move(classes), std::move(values), "balanced");
}

void expect_partition(const std::vector<Shard>& shards, std::size_t n) {
  std::vector<std::size_t> all;
  for (const Shard& s : shards) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::size_t> expected(n);
  std::iota(expected.begin(), expected.end(), std::size_t{0});
  EXPECT_EQ(all, expected);
}

// Mean over shards of the total-variation distance between the shard's label distribution and
// the (uniform) global one: 0 for perfectly iid shards, 0.9 when every shard holds one class.
double label_skew(const Dataset& d, const std::vector<Shard>& shards) {
  double total = 0;
  for (const Shard& s : shards) {
    std::vector<double> counts(10, 0.0);
    for (std::size_t r : s) counts[static_cast<std::size_t>(d.classes()[r])] += 1;
    double tv = 0;
    for (double c : counts) tv += std::fabs(c / static_cast<double>(s.size()) - 0.1);
    total += tv / 2;
  }
  return total / static_cast<double>(shards.size());
}

TEST(ShardTest, IidPartitionsIntoNearlyEqualShards) {
  for (const std::size_t workers : {1u, 3u, 4u, 7u}) {
    const auto shards = shard_iid(1001, workers, 5);
    ASSERT_EQ(shards.size(), workers);
    expect_partition(shards, 1001);
    for (const Shard& s : shards) {
      EXPECT_LE(s.size(), 1001 / workers + 1);
      EXPECT_GE(s.size(), 1001 / workers);
    }
  }
  EXPECT_EQ(shard_iid(100, 4, 5), shard_iid(100, 4, 5));
  EXPECT_NE(shard_iid(100, 4, 5), shard_iid(100, 4, 6));
  EXPECT_THROW((void)shard_iid(3, 4, 0), InvalidArgument);
  EXPECT_THROW((void)shard_iid(3, 0, 0), InvalidArgument);
}

TEST(ShardTest, DirichletPartitionsDeterministicallyAndSkewsForSmallAlpha) {
  const Dataset d = balanced(2000);
  const auto skewed = shard_dirichlet(d, 4, 0.05, 11);
  const auto mild = shard_dirichlet(d, 4, 1000.0, 11);
  expect_partition(skewed, 2000);
  expect_partition(mild, 2000);
  EXPECT_EQ(skewed, shard_dirichlet(d, 4, 0.05, 11));
  EXPECT_NE(skewed, shard_dirichlet(d, 4, 0.05, 12));
  // alpha = 0.05: each class lands almost entirely on one worker, so a shard holds a few classes
  // (TV near 0.6-0.8); alpha = 1000: proportions 1/4 ± 0.008, counts per class 50 ± ~7, TV ~0.05.
  EXPECT_GT(label_skew(d, skewed), 0.5);
  EXPECT_LT(label_skew(d, mild), 0.1);
  for (const Shard& s : skewed) EXPECT_GE(s.size(), 1u);
}

TEST(ShardTest, DirichletMinSizeAndErrors) {
  const Dataset d = balanced(200);
  for (const Shard& s : shard_dirichlet(d, 4, 0.1, 3, 20)) EXPECT_GE(s.size(), 20u);
  EXPECT_THROW((void)shard_dirichlet(d, 4, 0.0, 3), InvalidArgument);
  EXPECT_THROW((void)shard_dirichlet(d, 4, 0.1, 3, 60), InvalidArgument);  // 240 > 200 rows
  // 20 workers, 10 classes, alpha tiny: a class goes to one worker, so 10 shards stay empty.
  EXPECT_THROW((void)shard_dirichlet(d, 20, 1e-4, 3), InvalidArgument);
  const Dataset regression(DenseMatrix::Zero(10, 1), std::vector<float>(10));
  EXPECT_THROW((void)shard_dirichlet(regression, 2, 1.0, 3), InvalidArgument);
}

TEST(ShardTest, SchemeStrings) {
  const Dataset d = balanced(300);
  EXPECT_EQ(make_shards(d, 3, "iid", 1), shard_iid(300, 3, 1));
  EXPECT_EQ(make_shards(d, 3, "dirichlet:alpha=0.5", 1), shard_dirichlet(d, 3, 0.5, 1));
  EXPECT_EQ(make_shards(d, 3, "dirichlet:alpha=0.5,min=5", 1), shard_dirichlet(d, 3, 0.5, 1, 5));
  EXPECT_THROW((void)make_shards(d, 3, "dirichlet", 1), InvalidArgument);
  EXPECT_THROW((void)make_shards(d, 3, "dirichlet:alpha=0.5,beta=1", 1), InvalidArgument);
  EXPECT_THROW((void)make_shards(d, 3, "random", 1), InvalidArgument);
}

// Mean and variance of N Gamma(a, 1) draws against a and a: tolerances are 6 standard errors,
// sd(mean) = sqrt(a/N), sd(sample variance) ≈ sqrt((μ4 - σ⁴)/N) with μ4 = 3a² + 6a, σ⁴ = a².
TEST(ShardTest, GammaMomentsMatch) {
  constexpr int kDraws = 20000;
  for (const double a : {0.1, 0.5, 1.0, 3.7}) {
    RngStream rng(RngKey::make(1, 0, 0, RngPurpose::kTest));
    std::vector<double> x(kDraws);
    for (double& v : x) {
      v = sample_gamma(rng, a);
      ASSERT_GE(v, 0.0);
    }
    const double mean = std::accumulate(x.begin(), x.end(), 0.0) / kDraws;
    double var = 0;
    for (double v : x) var += (v - mean) * (v - mean);
    var /= kDraws;
    EXPECT_NEAR(mean, a, 6 * std::sqrt(a / kDraws)) << "shape " << a;
    EXPECT_NEAR(var, a, 6 * std::sqrt((2 * a * a + 6 * a) / kDraws)) << "shape " << a;
  }
  RngStream rng(RngKey::make(1, 0, 0, RngPurpose::kTest));
  EXPECT_THROW((void)sample_gamma(rng, 0.0), InvalidArgument);
}

TEST(ShardTest, DirichletDrawsSumToOneEvenForTinyAlpha) {
  RngStream rng(RngKey::make(2, 0, 0, RngPurpose::kTest));
  std::vector<double> p(8);
  double mean_first = 0;
  int concentrated = 0;
  for (int t = 0; t < 2000; ++t) {
    sample_dirichlet(rng, 1e-3, p);
    double sum = 0;
    for (double v : p) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
    }
    ASSERT_NEAR(sum, 1.0, 1e-12);
    concentrated += *std::max_element(p.begin(), p.end()) > 0.99 ? 1 : 0;
    mean_first += p[0] / 2000;
  }
  // log-Gammas are ≈ -1000·Exp(1): the largest beats the runner-up by more than log(100) unless
  // the two smallest of 8 exponentials are within 0.0046 (probability 1 - e^{-7·0.0046} ≈ 3 %).
  EXPECT_GT(concentrated, 1800);
  // E p_0 = 1/8 by symmetry; p_0 is ~Bernoulli(1/8): sd of the mean sqrt(7/64/2000) = 0.0074.
  EXPECT_NEAR(mean_first, 0.125, 6 * 0.0074);
}

}  // namespace
}  // namespace thinwire::data
