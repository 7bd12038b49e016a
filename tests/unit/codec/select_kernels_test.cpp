// Top-k's filtering pass (kernels/select.cpp, Highway) against the loop it replaces, on the
// target this program runs on (CTest runs it once per SIMD target). select_top_k falls back to
// the radix selection whenever the filter's counts look wrong, so its own tests miss a filter
// that misfiles a lane; this one compares the outputs themselves.
#include "kernels/select.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <vector>

namespace thinwire::codec::kernels {
namespace {

struct Filtered {
  std::vector<std::uint32_t> above, index, key;
};

// The scalar loop: i to `above` if key > hi, else to index/key if key >= lo.
Filtered filter_oracle(const std::vector<float>& v, std::uint32_t lo, std::uint32_t hi) {
  Filtered f;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::uint32_t key = std::bit_cast<std::uint32_t>(v[i]) & 0x7FFFFFFFU;
    if (key > hi) {
      f.above.push_back(static_cast<std::uint32_t>(i));
    } else if (key >= lo) {
      f.index.push_back(static_cast<std::uint32_t>(i));
      f.key.push_back(key);
    }
  }
  return f;
}

TEST(SelectKernelsTest, FilterKeysFilesEveryLaneAsTheLoopDoes) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  for (const std::size_t d : {0, 1, 15, 16, 17, 100, 4099}) {
    std::vector<float> v(d);
    for (float& x : v) x = normal(rng);
    if (d > 10) v[7] = -v[3];  // a tie across signs
    for (const auto& [lo_value, hi_value] : {std::pair{1.0f, 2.0f}, std::pair{0.0f, 0.5f},
                                             std::pair{2.5f, 1e30f}, std::pair{0.0f, 0.0f}}) {
      const std::uint32_t lo = std::bit_cast<std::uint32_t>(lo_value);
      const std::uint32_t hi = std::bit_cast<std::uint32_t>(hi_value);
      const Filtered want = filter_oracle(v, lo, hi);
      std::vector<std::uint32_t> above(d + 1), index(d + 1), key(d + 1);
      const FilterProgress p =
          filter_keys(v.data(), d, lo, hi, above.data(), d, index.data(), key.data(), d);
      SCOPED_TRACE(::testing::Message()
                   << "d = " << d << ", lo = " << lo_value << ", hi = " << hi_value);
      ASSERT_FALSE(p.stopped);
      ASSERT_LE(p.done, d);
      ASSERT_GT(p.done + 16, d);  // at most a partial vector left (16 lanes on x86)
      // The kernel's part is the oracle's prefix below p.done.
      std::size_t n_above = 0;
      while (n_above < want.above.size() && want.above[n_above] < p.done) ++n_above;
      std::size_t n_between = 0;
      while (n_between < want.index.size() && want.index[n_between] < p.done) ++n_between;
      ASSERT_EQ(p.above, n_above);
      ASSERT_EQ(p.between, n_between);
      for (std::size_t j = 0; j < n_above; ++j) EXPECT_EQ(above[j], want.above[j]);
      for (std::size_t j = 0; j < n_between; ++j) {
        EXPECT_EQ(index[j], want.index[j]);
        EXPECT_EQ(key[j], want.key[j]);
      }
      // Capacities: one short of the above count stops before the vector that needs it.
      if (n_above > 0) {
        const FilterProgress q = filter_keys(v.data(), d, lo, hi, above.data(), n_above - 1,
                                             index.data(), key.data(), d);
        EXPECT_TRUE(q.stopped);
        EXPECT_LT(q.above, n_above);
      }
    }
  }
}

}  // namespace
}  // namespace thinwire::codec::kernels
