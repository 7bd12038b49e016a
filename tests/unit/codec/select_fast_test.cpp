// select_top_k on vectors large enough (d >= 16 * 32768 = 2^19) for the sample-bracketed path and
// its filtering pass (a Highway kernel: this program runs once per SIMD target), against the
// full-sort oracle: random, heavily tied, and inputs built so that the strided sample misses the
// large values (the bracket fails and the radix selection must take over).
#include <gtest/gtest.h>

#include <vector>

#include "sparse_test_util.hpp"
#include "thinwire/codec/select.hpp"

namespace thinwire::codec {
namespace {

using testing::top_k_oracle;

constexpr std::size_t kD = 600'001;  // at 300'001 (below 2^19) the bracket was never taken

void expect_matches(const std::vector<float>& v, const char* what) {
  std::vector<std::uint32_t> got;
  for (const std::size_t k : {std::size_t{1}, std::size_t{37}, std::size_t{3000}, kD / 2, kD - 1}) {
    select_top_k(v, k, got);
    ASSERT_EQ(got, top_k_oracle(v, k)) << what << ", k = " << k;
  }
}

TEST(SelectTopKFastTest, LargeRandomAndTiedVectors) {
  expect_matches(testing::normal_vector(5, kD), "normal");
  expect_matches(testing::tied_vector(6, kD), "tied");
}

TEST(SelectTopKFastTest, SampleThatMissesTheLargeValues) {
  // The sample reads every stride-th element from stride/2 on (stride = d / 32768 = 18, so
  // indices = 9 mod 18, = 0 mod 3); put all the large values at indices = 2 mod 3, so that the
  // sampled values are all equal and the bracket is degenerate.
  std::vector<float> v(kD, 1.0f);
  for (std::size_t i = 2; i < kD; i += 3) v[i] = 2.0f + static_cast<float>(i % 1000);
  expect_matches(v, "adversarial");
}

}  // namespace
}  // namespace thinwire::codec
