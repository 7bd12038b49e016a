#include "thinwire/data/sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

std::vector<std::size_t> shard_of(std::size_t n) {
  std::vector<std::size_t> s(n);
  for (std::size_t i = 0; i < n; ++i) s[i] = 3 * i + 1;  // arbitrary row ids
  return s;
}

std::vector<std::size_t> copy(std::span<const std::size_t> s) { return {s.begin(), s.end()}; }

TEST(SamplerTest, EpochCoversTheShardExactlyOnce) {
  MinibatchSampler sampler(shard_of(103), {.batch_size = 10, .seed = 1, .rank = 0});
  ASSERT_EQ(sampler.batches_per_epoch(), 11u);  // ten of 10, one of 3
  for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::size_t> seen;
    for (std::size_t b = 0; b < 11; ++b) {
      const auto batch = sampler.batch(epoch * 11 + b);
      EXPECT_EQ(batch.size(), b < 10 ? 10u : 3u);
      seen.insert(seen.end(), batch.begin(), batch.end());
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, shard_of(103));
  }
}

TEST(SamplerTest, CounterBasedAndSeeded) {
  const SamplerOptions options{.batch_size = 8, .seed = 42, .rank = 3};
  MinibatchSampler a(shard_of(50), options);
  MinibatchSampler b(shard_of(50), options);
  // Random access in any order gives the same batches as a fresh sampler.
  const std::vector<std::size_t> b20 = copy(b.batch(20));
  (void)a.batch(3);
  (void)a.batch(100);
  EXPECT_EQ(copy(a.batch(20)), b20);
  EXPECT_EQ(copy(a.batch(0)), copy(b.batch(0)));
  // Epochs reshuffle; ranks and seeds change the stream.
  EXPECT_NE(copy(a.batch(0)), copy(a.batch(a.batches_per_epoch())));
  MinibatchSampler other_rank(shard_of(50), {.batch_size = 8, .seed = 42, .rank = 4});
  MinibatchSampler other_seed(shard_of(50), {.batch_size = 8, .seed = 43, .rank = 3});
  EXPECT_NE(copy(a.batch(0)), copy(other_rank.batch(0)));
  EXPECT_NE(copy(a.batch(0)), copy(other_seed.batch(0)));
}

TEST(SamplerTest, DropLastAndClamping) {
  MinibatchSampler drop(shard_of(25), {.batch_size = 10, .drop_last = true});
  EXPECT_EQ(drop.batches_per_epoch(), 2u);
  EXPECT_EQ(drop.batch(1).size(), 10u);
  EXPECT_EQ(drop.epoch_of(2), 1u);
  MinibatchSampler big(shard_of(5), {.batch_size = 64});
  EXPECT_EQ(big.batch_size(), 5u);
  EXPECT_EQ(big.batches_per_epoch(), 1u);
  EXPECT_EQ(big.batch(7).size(), 5u);
  EXPECT_THROW(MinibatchSampler({}, {}), InvalidArgument);
  EXPECT_THROW(MinibatchSampler(shard_of(5), {.batch_size = 0}), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::data
