// Exact behaviour of the all-reduce algorithms: closed-form answers with the identity codec over
// the sweep of world sizes × lengths, traffic counts, agreement of all ranks, argument errors.
#include "thinwire/collective/allreduce.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <tuple>

#include "collective_test_support.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective {
namespace {

using testing::expect_same_on_all_ranks;
using testing::gaussian;
using testing::ramp;

// Σ_r (r + i) over M ranks, exactly (small integers).
float ramp_sum(int m, std::size_t i) {
  return static_cast<float>(m) * static_cast<float>(i) + static_cast<float>(m * (m - 1) / 2);
}

// Messages (and bytes, for the identity codec: 32-byte header + 4 per element) one rank sends.
std::uint64_t expected_messages(AllreduceAlgorithm algorithm, int m) {
  return algorithm == AllreduceAlgorithm::kAllgather ? static_cast<std::uint64_t>(m - 1)
                                                     : 2 * static_cast<std::uint64_t>(m - 1);
}

std::uint64_t expected_identity_bytes(AllreduceAlgorithm algorithm, int m, int rank,
                                      std::size_t d) {
  if (m == 1) return 0;
  const std::uint64_t headers = expected_messages(algorithm, m) * codec::kHeaderBytes;
  if (algorithm == AllreduceAlgorithm::kAllgather) return headers + (m - 1) * 4 * d;
  // Reduce-scatter sends every chunk but r+1, the all-gather every chunk but r+2.
  const std::size_t skip1 = balanced_chunk(d, m, (rank + 1) % m).size;
  const std::size_t skip2 = balanced_chunk(d, m, (rank + 2) % m).size;
  return headers + 4 * (2 * d - skip1 - skip2);
}

using SweepParam = std::tuple<AllreduceAlgorithm, int, std::size_t>;

class AllreduceSweepTest : public ::testing::TestWithParam<SweepParam> {};

TEST_P(AllreduceSweepTest, IdentityGivesTheClosedFormAverageAndSum) {
  const auto [algorithm, m, d] = GetParam();
  const codec::IdentityCodec identity;
  for (const Reduction reduction : {Reduction::kAverage, Reduction::kSum}) {
    test::run_world(m, [&, algorithm = algorithm, m = m, d = d](comm::Transport& t) {
      std::vector<float> x = ramp(t.rank(), d);
      const Result result =
          allreduce(t, x, identity, {.algorithm = algorithm, .reduction = reduction});
      for (std::size_t i = 0; i < d; ++i) {
        const float sum = ramp_sum(m, i);
        const float expected = reduction == Reduction::kSum ? sum : sum / static_cast<float>(m);
        if (x[i] != expected) {  // no ASSERT: this rank must still reach the check below
          ADD_FAILURE() << "rank " << t.rank() << " element " << i << ": " << x[i]
                        << " != " << expected;
          break;
        }
      }
      EXPECT_EQ(result.messages_sent, expected_messages(algorithm, m));
      EXPECT_EQ(result.bytes_sent, expected_identity_bytes(algorithm, m, t.rank(), d));
      EXPECT_GE(result.seconds, 0.0);
      expect_same_on_all_ranks(t, x);
    });
  }
}

TEST_P(AllreduceSweepTest, LossyCodecsGiveTheSameBitsOnEveryRank) {
  const auto [algorithm, m, d] = GetParam();
  for (const char* spec : {"qsgd:s=4", "topk:k=0.1", "randk:k=0.25", "sign"}) {
    const auto codec = codec::make_codec(spec);
    test::run_world(m, [&, algorithm = algorithm, d = d](comm::Transport& t) {
      std::vector<float> x = gaussian(5, t.rank(), d);
      (void)allreduce(t, x, *codec, {.algorithm = algorithm, .seed = 9, .iteration = 3});
      EXPECT_TRUE(std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v); }))
          << spec;
      expect_same_on_all_ranks(t, x);
    });
  }
}

std::string sweep_name(const ::testing::TestParamInfo<SweepParam>& info) {
  return std::string(allreduce_algorithm_name(std::get<0>(info.param))) + "_M" +
         std::to_string(std::get<1>(info.param)) + "_d" + std::to_string(std::get<2>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sweep, AllreduceSweepTest,
                         ::testing::Combine(::testing::Values(AllreduceAlgorithm::kAllgather,
                                                              AllreduceAlgorithm::kRing),
                                            ::testing::ValuesIn(testing::kWorldSizes),
                                            ::testing::ValuesIn(testing::kLengths)),
                         sweep_name);

using SizeParam = std::tuple<int, std::size_t>;
class SharedRandkSweepTest : public ::testing::TestWithParam<SizeParam> {};

TEST_P(SharedRandkSweepTest, ScaledProjectionOfTheExactMean) {
  const auto [m, d] = GetParam();
  const codec::RandKCodec randk(0.3, /*shared_seed=*/17);
  std::vector<std::uint32_t> kept;
  randk.indices(d, {.iteration = 4}, kept);
  for (const Reduction reduction : {Reduction::kAverage, Reduction::kSum}) {
    test::run_world(m, [&, m = m, d = d](comm::Transport& t) {
      std::vector<float> x = ramp(t.rank(), d);
      const Result result = allreduce(
          t, x, randk,
          {.algorithm = AllreduceAlgorithm::kSharedRandk, .reduction = reduction, .iteration = 4});
      double factor = randk.scale(d);
      if (reduction == Reduction::kAverage) factor /= m;
      std::vector<float> expected(d, 0.0f);
      for (const std::uint32_t i : kept) {
        expected[i] = static_cast<float>(static_cast<double>(ramp_sum(m, i)) * factor);
      }
      EXPECT_EQ(x, expected) << "rank " << t.rank();
      EXPECT_EQ(result.messages_sent, m == 1 ? 0u : 2u * static_cast<std::uint64_t>(m - 1));
      expect_same_on_all_ranks(t, x);
    });
  }
}

std::string size_name(const ::testing::TestParamInfo<SizeParam>& info) {
  return "M" + std::to_string(std::get<0>(info.param)) + "_d" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sweep, SharedRandkSweepTest,
                         ::testing::Combine(::testing::ValuesIn(testing::kWorldSizes),
                                            ::testing::ValuesIn(testing::kLengths)),
                         size_name);

TEST(AllreduceTest, AllgatherEncodesWithTheCallersContextExactly) {
  // With M = 1 the result is one decoded message, the one codec.encode gives for
  // EncodeContext{seed, 0, iteration}.
  const auto codec = codec::make_codec("qsgd:s=4");
  test::run_world(1, [&](comm::Transport& t) {
    std::vector<float> x = gaussian(1, 0, 300);
    std::vector<float> expected(x.size());
    codec::decode(codec->encode(x, {.seed = 7, .rank = 0, .iteration = 2}), expected,
                  codec::DecodeMode::kOverwrite);
    (void)allreduce_allgather(t, x, *codec, {.seed = 7, .iteration = 2});
    EXPECT_EQ(x, expected);
  });
}

TEST(AllreduceTest, SeedAndIterationChangeTheRandomNumbers) {
  const auto codec = codec::make_codec("qsgd:s=2");
  for (const AllreduceAlgorithm algorithm :
       {AllreduceAlgorithm::kAllgather, AllreduceAlgorithm::kRing}) {
    test::run_world(3, [&](comm::Transport& t) {
      const std::vector<float> x = gaussian(2, t.rank(), 200);
      std::vector<float> a = x;
      std::vector<float> b = x;
      std::vector<float> c = x;
      std::vector<float> again = x;
      (void)allreduce(t, a, *codec, {.algorithm = algorithm, .seed = 1, .iteration = 0});
      (void)allreduce(t, b, *codec, {.algorithm = algorithm, .seed = 2, .iteration = 0});
      (void)allreduce(t, c, *codec, {.algorithm = algorithm, .seed = 1, .iteration = 1});
      (void)allreduce(t, again, *codec, {.algorithm = algorithm, .seed = 1, .iteration = 0});
      EXPECT_NE(a, b);
      EXPECT_NE(a, c);
      EXPECT_EQ(a, again);
    });
  }
}

TEST(AllreduceTest, RingAndAllgatherAgreeForLosslessCodecs) {
  const codec::IdentityCodec identity;
  test::run_world(4, [&](comm::Transport& t) {
    std::vector<float> ring = gaussian(3, t.rank(), 101);
    std::vector<float> gather = ring;
    (void)allreduce_ring(t, ring, identity);
    (void)allreduce_allgather(t, gather, identity);
    // Different summation orders: equal up to float rounding of a 4-term sum.
    for (std::size_t i = 0; i < ring.size(); ++i) EXPECT_NEAR(ring[i], gather[i], 4e-6f);
  });
}

TEST(AllreduceTest, TagsKeepBackToBackCollectivesApart) {
  // Different algorithms run back to back with the same peers never take each other's messages.
  const auto codec = codec::make_codec("topk:k=0.5");
  test::run_world(3, [&](comm::Transport& t) {
    std::vector<float> a = ramp(t.rank(), 10);
    std::vector<float> b = ramp(t.rank(), 7);
    (void)allreduce_allgather(t, a, *codec);
    (void)allreduce_ring(t, b, *codec);
    expect_same_on_all_ranks(t, a);
    expect_same_on_all_ranks(t, b);
  });
}

TEST(AllreduceTest, AlgorithmNamesRoundTrip) {
  for (const AllreduceAlgorithm a : {AllreduceAlgorithm::kAllgather, AllreduceAlgorithm::kRing,
                                     AllreduceAlgorithm::kSharedRandk}) {
    EXPECT_EQ(parse_allreduce_algorithm(allreduce_algorithm_name(a)), a);
  }
  EXPECT_THROW((void)parse_allreduce_algorithm("tree"), InvalidArgument);
}

TEST(AllreduceTest, BalancedChunksCoverTheVector) {
  for (const std::size_t d : {0u, 1u, 5u, 7u, 1000u}) {
    for (const int parts : {1, 2, 3, 7}) {
      std::size_t next = 0;
      for (int c = 0; c < parts; ++c) {
        const Chunk chunk = balanced_chunk(d, parts, c);
        EXPECT_EQ(chunk.begin, next);
        EXPECT_LE(chunk.size, d / parts + 1);
        EXPECT_GE(chunk.size, d / parts);
        next += chunk.size;
      }
      EXPECT_EQ(next, d);
    }
  }
  EXPECT_THROW((void)balanced_chunk(10, 3, 3), InvalidArgument);
  EXPECT_THROW((void)balanced_chunk(10, 0, 0), InvalidArgument);
  EXPECT_EQ(ring_owned_chunk(2, 3), 0);
}

TEST(AllreduceTest, SharedRandkRejectsOtherCodecs) {
  const auto plain = codec::make_codec("randk:k=0.5");
  const codec::IdentityCodec identity;
  test::run_world(1, [&](comm::Transport& t) {
    std::vector<float> x(10, 1.0f);
    EXPECT_THROW((void)allreduce_shared_randk(t, x, *plain), InvalidArgument);
    EXPECT_THROW((void)allreduce_shared_randk(t, x, identity), InvalidArgument);
  });
}

TEST(AllreduceTest, NonFiniteInputIsRejected) {
  const codec::IdentityCodec identity;
  test::run_world(1, [&](comm::Transport& t) {
    std::vector<float> x = {1.0f, std::numeric_limits<float>::quiet_NaN()};
    EXPECT_THROW((void)allreduce_allgather(t, x, identity), InvalidArgument);
    EXPECT_THROW((void)allreduce_ring(t, x, identity), InvalidArgument);
  });
}

TEST(AllreduceTest, MismatchedLengthsAreAnErrorNotAWrongSum) {
  if (test::kMpiWorld) GTEST_SKIP() << "a failing rank aborts an MPI job";
  const codec::IdentityCodec identity;
  EXPECT_THROW(test::run_world(2,
                               [&](comm::Transport& t) {
                                 std::vector<float> x(t.rank() == 0 ? 4 : 5, 1.0f);
                                 (void)allreduce_allgather(t, x, identity);
                               }),
               InvalidArgument);
}

}  // namespace
}  // namespace thinwire::collective
