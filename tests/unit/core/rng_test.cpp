#include "thinwire/core/rng.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

namespace thinwire {
namespace {

TEST(RngTest, SameKeySameNumbers) {
  const RngKey a = RngKey::make(42, 3, 7, RngPurpose::kQuantize);
  const RngKey b = RngKey::make(42, 3, 7, RngPurpose::kQuantize);
  for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(a.bits(i), b.bits(i));
}

TEST(RngTest, EveryKeyComponentChangesTheStream) {
  const RngKey base = RngKey::make(42, 3, 7, RngPurpose::kQuantize);
  const std::set<std::uint64_t> firsts = {
      base.bits(0),
      RngKey::make(43, 3, 7, RngPurpose::kQuantize).bits(0),
      RngKey::make(42, 4, 7, RngPurpose::kQuantize).bits(0),
      RngKey::make(42, 3, 8, RngPurpose::kQuantize).bits(0),
      RngKey::make(42, 3, 7, RngPurpose::kSparsify).bits(0),
      base.derive(1).bits(0),
  };
  EXPECT_EQ(firsts.size(), 6u);
}

// Mean and variance of U[0,1) over n draws; tolerance is 6 standard errors
// (sd of the mean = sqrt(1/12 / n)).
TEST(RngTest, UniformMomentsMatch) {
  const RngKey key = RngKey::make(9, 0, 0, RngPurpose::kTest);
  const int n = 1 << 20;
  double sum = 0;
  double sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double u = key.uniform(static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.5, 6 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sum_sq / n - mean * mean, 1.0 / 12, 0.002);
}

TEST(RngTest, BelowStaysInRange) {
  RngStream s(RngKey::make(1, 2, 3, RngPurpose::kTest));
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const auto v = s.next_below(7);
    ASSERT_LT(v, 7u);
    ++counts[v];
  }
  // Binomial(70000, 1/7): sd ~ 92.6; 6 sd.
  for (int c : counts) EXPECT_NEAR(c, 10000, 560);
}

TEST(RngTest, NormalMoments) {
  RngStream s(RngKey::make(5, 0, 0, RngPurpose::kTest));
  const int n = 200000;
  double sum = 0;
  double sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double x = s.next_normal();
    sum += x;
    sum_sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 6 / std::sqrt(n));
  EXPECT_NEAR(sum_sq / n, 1.0, 6 * std::sqrt(2.0 / n));
}

}  // namespace
}  // namespace thinwire
