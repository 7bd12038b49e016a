#include "thinwire/codec/select.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "sparse_test_util.hpp"

namespace thinwire::codec {
namespace {

using testing::top_k_oracle;

void expect_matches_oracle(const std::vector<float>& v, const char* what) {
  std::vector<std::uint32_t> got;
  for (std::size_t k = 0; k <= v.size() + 1; ++k) {
    select_top_k(v, k, got);
    ASSERT_EQ(got, top_k_oracle(v, k)) << what << ", d = " << v.size() << ", k = " << k;
  }
}

TEST(SelectTopKTest, MatchesFullSortOnAdversarialInputs) {
  expect_matches_oracle({}, "empty");
  expect_matches_oracle({-3.0f}, "d = 1");
  expect_matches_oracle(std::vector<float>(17, 0.0f), "all zeros");
  expect_matches_oracle(std::vector<float>(33, -1.5f), "constant negative");
  expect_matches_oracle({0.0f, -0.0f, 0.0f, -0.0f, 1.0f, -0.0f}, "signed zeros tie");
  std::vector<float> huge(50, 1e-3f);
  huge[37] = std::numeric_limits<float>::max();
  expect_matches_oracle(huge, "one huge entry");
  std::vector<float> alternating(40);
  for (std::size_t i = 0; i < alternating.size(); ++i) {
    alternating[i] = (i % 2 == 0 ? 1.0f : -1.0f) * static_cast<float>(i % 5);
  }
  expect_matches_oracle(alternating, "ties across signs");
  std::vector<float> descending(30);
  for (std::size_t i = 0; i < descending.size(); ++i) descending[i] = -static_cast<float>(i);
  expect_matches_oracle(descending, "negative ramp");
  std::vector<float> denormal = {1e-45f, -1e-45f, 2e-45f, 0.0f, 1e-38f};
  expect_matches_oracle(denormal, "denormals");
}

TEST(SelectTopKTest, MatchesFullSortOnRandomInputs) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    for (const std::size_t d : {2U, 3U, 7U, 64U, 301U}) {
      expect_matches_oracle(testing::normal_vector(seed, d), "normal");
      expect_matches_oracle(testing::tied_vector(seed, d), "tied");
    }
  }
}

TEST(SelectTopKTest, LargeVectorWithManyTies) {
  const std::vector<float> v = testing::tied_vector(99, 20000);
  std::vector<std::uint32_t> got;
  for (const std::size_t k : {1U, 100U, 5000U, 9999U, 19999U}) {
    select_top_k(v, k, got);
    EXPECT_EQ(got, top_k_oracle(v, k)) << "k = " << k;
  }
}

TEST(SelectTopKTest, ReusesTheOutputVector) {
  std::vector<std::uint32_t> got = {5, 6, 7, 8, 9, 10};
  select_top_k(std::vector<float>{1.0f, 3.0f, 2.0f}, 2, got);
  EXPECT_EQ(got, (std::vector<std::uint32_t>{1, 2}));
}

}  // namespace
}  // namespace thinwire::codec
