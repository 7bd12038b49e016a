// The error statements of allreduce.hpp: deterministic bounds for codecs with a factor a,
// unbiasedness and the variance formulas over seeds, and error feedback's telescoping sums.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>

#include "collective_test_support.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/collective/allreduce.hpp"

namespace thinwire::collective {
namespace {

using testing::gather_all;
using testing::gaussian;
using testing::norm;

// Deterministic factor a of allreduce.hpp for a chunk of n elements: ‖Q(v) − v‖ ≤ a·‖v‖.
double factor_a(const codec::Codec& c, std::size_t n) {
  if (n == 0) return 0.0;
  if (const auto* topk = dynamic_cast<const codec::TopKCodec*>(&c)) {
    return std::sqrt(1.0 - static_cast<double>(topk->kept(n)) / static_cast<double>(n));
  }
  const auto& p = dynamic_cast<const codec::QsgdCodec&>(c).params();
  const std::size_t bucket = p.bucket == 0 ? n : std::min<std::size_t>(p.bucket, n);
  return std::sqrt(static_cast<double>(bucket)) / p.levels;
}

// Variance factor ω for a chunk of n elements: E‖Q(v) − v‖² ≤ ω·‖v‖².
double factor_omega(const codec::Codec& c, std::size_t n) {
  if (n == 0) return 0.0;
  if (const auto* randk = dynamic_cast<const codec::RandKCodec*>(&c)) {
    return static_cast<double>(n) / static_cast<double>(randk->kept(n)) - 1.0;
  }
  const auto& p = dynamic_cast<const codec::QsgdCodec&>(c).params();
  const double b = static_cast<double>(p.bucket == 0 ? n : std::min<std::size_t>(p.bucket, n));
  const double s = p.levels;
  return std::min(b / (s * s), std::sqrt(b) / s);
}

// The ring's partial sums of chunk c in ring order: S_h = Σ_{j<h} x_{c+j}, h = 1..M.
std::vector<std::vector<double>> ring_partial_sums(const std::vector<std::vector<float>>& xs,
                                                   Chunk chunk, int c) {
  const int m = static_cast<int>(xs.size());
  std::vector<std::vector<double>> sums;
  std::vector<double> s(chunk.size, 0.0);
  for (int h = 0; h < m; ++h) {
    const auto& x = xs[static_cast<std::size_t>((c + h) % m)];
    for (std::size_t i = 0; i < chunk.size; ++i) s[i] += x[chunk.begin + i];
    sums.push_back(s);
  }
  return sums;
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x * x;
  return std::sqrt(s);
}

std::vector<std::vector<float>> all_inputs(std::uint64_t seed, int m, std::size_t d) {
  std::vector<std::vector<float>> xs;
  for (int r = 0; r < m; ++r) xs.push_back(gaussian(seed, r, d));
  return xs;
}

std::vector<double> exact_mean(const std::vector<std::vector<float>>& xs, std::size_t d) {
  std::vector<double> mean(d, 0.0);
  for (const auto& x : xs) {
    for (std::size_t i = 0; i < d; ++i) mean[i] += x[i];
  }
  for (double& v : mean) v /= static_cast<double>(xs.size());
  return mean;
}

using BoundParam = std::tuple<AllreduceAlgorithm, int, std::size_t>;
class AllreduceBoundTest : public ::testing::TestWithParam<BoundParam> {};

// ‖R − S/M‖ against the deterministic bounds: all-gather (a/M)·Σ‖x_m‖; ring per chunk
// (1/M)·Σ_h a(1+a)^{M−h}‖S_h‖. Slack: float rounding, 1e-5 relative.
TEST_P(AllreduceBoundTest, ErrorIsWithinTheDeterministicBound) {
  const auto [algorithm, m, d] = GetParam();
  for (const char* spec : {"topk:k=0.1", "topk:k=3", "qsgd:s=16,bucket=16", "qsgd:s=8,bucket=4"}) {
    const auto codec = codec::make_codec(spec);
    const auto xs = all_inputs(21, m, d);
    const std::vector<double> mean = exact_mean(xs, d);
    test::run_world(m, [&, algorithm = algorithm, m = m, d = d](comm::Transport& t) {
      std::vector<float> x = xs[static_cast<std::size_t>(t.rank())];
      (void)allreduce(t, x, *codec, {.algorithm = algorithm, .seed = 4});
      if (algorithm == AllreduceAlgorithm::kAllgather) {
        double bound = 0;
        for (const auto& xm : xs) bound += factor_a(*codec, d) * norm(xm) / m;
        EXPECT_LE(testing::distance(x, mean), bound * (1 + 1e-5) + 1e-6) << spec;
        return;
      }
      for (int c = 0; c < m; ++c) {
        const Chunk chunk = balanced_chunk(d, m, c);
        const auto sums = ring_partial_sums(xs, chunk, c);
        const double a = factor_a(*codec, chunk.size);
        double bound = 0;
        for (int h = 1; h <= m; ++h) {
          bound += a * std::pow(1 + a, m - h) * norm(sums[static_cast<std::size_t>(h - 1)]);
        }
        bound /= m;
        const std::span<const float> got = std::span(x).subspan(chunk.begin, chunk.size);
        const std::span<const double> want = std::span(mean).subspan(chunk.begin, chunk.size);
        EXPECT_LE(testing::distance(got, want), bound * (1 + 1e-5) + 1e-6)
            << spec << " chunk " << c;
      }
    });
  }
}

std::string bound_name(const ::testing::TestParamInfo<BoundParam>& info) {
  return std::string(allreduce_algorithm_name(std::get<0>(info.param))) + "_M" +
         std::to_string(std::get<1>(info.param)) + "_d" + std::to_string(std::get<2>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sweep, AllreduceBoundTest,
                         ::testing::Combine(::testing::Values(AllreduceAlgorithm::kAllgather,
                                                              AllreduceAlgorithm::kRing),
                                            ::testing::ValuesIn(testing::kWorldSizes),
                                            ::testing::ValuesIn(testing::kLengths)),
                         bound_name);

// Over N seeds: per-element means of R and per-seed squared errors ‖R − S/M‖².
struct SeedStats {
  std::vector<double> mean;
  std::vector<double> var;  // per element, sample variance
  double mse = 0;           // mean over seeds of ‖R − S/M‖²
  double mse_sd = 0;        // sample sd of ‖R − S/M‖² over seeds
};

SeedStats run_seeds(comm::Transport& t, const codec::Codec& codec, AllreduceAlgorithm algorithm,
                    const std::vector<float>& x0, const std::vector<double>& target, int n) {
  const std::size_t d = x0.size();
  std::vector<double> sum(d, 0.0);
  std::vector<double> sum_sq(d, 0.0);
  double e_sum = 0;
  double e_sum_sq = 0;
  for (int seed = 0; seed < n; ++seed) {
    std::vector<float> x = x0;
    (void)allreduce(t, x, codec,
                    {.algorithm = algorithm, .seed = static_cast<std::uint64_t>(seed) + 100});
    double e = 0;
    for (std::size_t i = 0; i < d; ++i) {
      sum[i] += x[i];
      sum_sq[i] += static_cast<double>(x[i]) * x[i];
      e += (x[i] - target[i]) * (x[i] - target[i]);
    }
    e_sum += e;
    e_sum_sq += e * e;
  }
  SeedStats s;
  for (std::size_t i = 0; i < d; ++i) {
    s.mean.push_back(sum[i] / n);
    s.var.push_back(std::max(0.0, (sum_sq[i] - sum[i] * sum[i] / n) / (n - 1)));
  }
  s.mse = e_sum / n;
  s.mse_sd = std::sqrt(std::max(0.0, (e_sum_sq - e_sum * e_sum / n) / (n - 1)));
  return s;
}

using UnbiasedParam = std::tuple<AllreduceAlgorithm, int>;
class AllreduceUnbiasedTest : public ::testing::TestWithParam<UnbiasedParam> {};

// Unbiased codecs give E R = S/M. With N seeds, Σ_i (mean_i − target_i)² has expectation
// Σ_i var_i / N for an unbiased estimator; a bias b per element would add d·b². We allow 2× the
// expectation: with d = 120 independent terms its relative sd is about √(2/d) ≈ 0.13, so a
// correct implementation is ~8 sd inside. The mean squared error is then checked against the
// variance statements of allreduce.hpp, with 6 sd of its own sampling error.
TEST_P(AllreduceUnbiasedTest, UnbiasedCodecsAverageToTheMeanWithTheStatedVariance) {
  const auto [algorithm, m] = GetParam();
  constexpr std::size_t d = 120;
  constexpr int n = 48;
  for (const char* spec : {"qsgd:s=4", "qsgd:s=2,bucket=8", "randk:k=0.25"}) {
    const auto codec = codec::make_codec(spec);
    const auto xs = all_inputs(33, m, d);
    const std::vector<double> mean = exact_mean(xs, d);
    test::run_world(m, [&, algorithm = algorithm, m = m](comm::Transport& t) {
      const SeedStats s =
          run_seeds(t, *codec, algorithm, xs[static_cast<std::size_t>(t.rank())], mean, n);
      double dev = 0;
      double expected = 0;
      for (std::size_t i = 0; i < d; ++i) {
        dev += (s.mean[i] - mean[i]) * (s.mean[i] - mean[i]);
        expected += s.var[i] / n;
      }
      EXPECT_GT(expected, 0.0) << spec;
      EXPECT_LE(dev, 2 * expected + 1e-10) << spec;

      double bound = 0;  // E‖R − S/M‖², exact for the all-gather, a bound for the ring
      if (algorithm == AllreduceAlgorithm::kAllgather) {
        const auto* qsgd = dynamic_cast<const codec::QsgdCodec*>(codec.get());
        for (const auto& x : xs) {
          bound += qsgd != nullptr ? codec::qsgd_variance(x, qsgd->params())
                                   : factor_omega(*codec, d) * norm(x) * norm(x);
        }
        bound /= static_cast<double>(m) * m;
        EXPECT_NEAR(s.mse, bound, 6 * s.mse_sd / std::sqrt(n) + 1e-9) << spec;
      } else {
        for (int c = 0; c < m; ++c) {
          const Chunk chunk = balanced_chunk(d, m, c);
          const auto sums = ring_partial_sums(xs, chunk, c);
          const double w = factor_omega(*codec, chunk.size);
          for (int h = 1; h <= m; ++h) {
            const double sh = norm(sums[static_cast<std::size_t>(h - 1)]);
            bound += w * std::pow(1 + w, m - h) * sh * sh;
          }
        }
        bound /= static_cast<double>(m) * m;
        EXPECT_LE(s.mse, bound + 6 * s.mse_sd / std::sqrt(n) + 1e-9) << spec;
      }
    });
  }
}

std::string unbiased_name(const ::testing::TestParamInfo<UnbiasedParam>& info) {
  return std::string(allreduce_algorithm_name(std::get<0>(info.param))) + "_M" +
         std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Sweep, AllreduceUnbiasedTest,
                         ::testing::Combine(::testing::Values(AllreduceAlgorithm::kAllgather,
                                                              AllreduceAlgorithm::kRing),
                                            ::testing::ValuesIn(testing::kWorldSizes)),
                         unbiased_name);

// Shared random-k: over iterations (each a fresh index set) the mean tends to S/M, and
// E‖R − S/M‖² = (d/k − 1)·‖S/M‖² exactly; same tolerances as above.
TEST(SharedRandkTest, UnbiasedWithTheStatedVariance) {
  constexpr std::size_t d = 90;
  constexpr int n = 64;
  const auto codec = codec::make_codec("randk:k=0.2,shared_seed=5");
  for (const int m : testing::kWorldSizes) {
    const auto xs = all_inputs(8, m, d);
    const std::vector<double> mean = exact_mean(xs, d);
    test::run_world(m, [&](comm::Transport& t) {
      std::vector<double> sum(d, 0.0);
      std::vector<double> sum_sq(d, 0.0);
      double e_sum = 0;
      for (int it = 0; it < n; ++it) {
        std::vector<float> x = xs[static_cast<std::size_t>(t.rank())];
        (void)allreduce_shared_randk(t, x, *codec, {.iteration = static_cast<std::uint64_t>(it)});
        for (std::size_t i = 0; i < d; ++i) {
          sum[i] += x[i];
          sum_sq[i] += static_cast<double>(x[i]) * x[i];
          e_sum += (x[i] - mean[i]) * (x[i] - mean[i]);
        }
      }
      double dev = 0;
      double expected = 0;
      for (std::size_t i = 0; i < d; ++i) {
        const double mi = sum[i] / n;
        dev += (mi - mean[i]) * (mi - mean[i]);
        expected += (sum_sq[i] - sum[i] * sum[i] / n) / (n - 1) / n;
      }
      EXPECT_LE(dev, 2 * expected + 1e-10) << "M = " << m;
      // (d/k − 1)·‖S/M‖² with k = 18: the squared error of one iteration concentrates well
      // (90 terms, 18 of them kept), 25 % covers its spread over 64 iterations.
      const double exact = (static_cast<double>(d) / 18 - 1) * norm(mean) * norm(mean);
      EXPECT_NEAR(e_sum / n, exact, 0.25 * exact) << "M = " << m;
    });
  }
}

// Error feedback telescopes: Σ_t R_t + (1/M)·Σ_m e_m = T·S/M for the all-gather, whose message
// carries e + x (allreduce.hpp). Deterministic codec, constant inputs, T = 20 rounds.
TEST(AllreduceErrorFeedbackTest, AllgatherResidualsTelescope) {
  const std::shared_ptr<const codec::Codec> topk = codec::make_codec("topk:k=0.1");
  for (const int m : testing::kWorldSizes) {
    constexpr std::size_t d = 50;
    constexpr int rounds = 20;
    const auto xs = all_inputs(12, m, d);
    const std::vector<double> mean = exact_mean(xs, d);
    test::run_world(m, [&](comm::Transport& t) {
      AllreduceResidual ef(topk, AllreduceAlgorithm::kAllgather, d, t.rank(), m);
      std::vector<double> total(d, 0.0);
      for (int round = 0; round < rounds; ++round) {
        std::vector<float> x = xs[static_cast<std::size_t>(t.rank())];
        (void)allreduce_allgather(t, x, *topk, {.error_feedback = &ef});
        for (std::size_t i = 0; i < d; ++i) total[i] += x[i];
      }
      const auto residuals = gather_all(t, ef.residual());
      for (std::size_t i = 0; i < d; ++i) {
        double e = 0;
        for (const auto& r : residuals) e += r[i];
        EXPECT_NEAR(total[i] + e / m, rounds * mean[i], 1e-4 * rounds) << "element " << i;
      }
      EXPECT_GT(norm(ef.residual()), 0.0);
    });
  }
}

// Ring: the owner's residual telescopes over its chunk. With a deterministic codec the test can
// replay the hops: the owner's partial sum p is the same every round, so
// Σ_t R_t[chunk] + e_T = T·p/M.
TEST(AllreduceErrorFeedbackTest, RingOwnerResidualTelescopes) {
  const std::shared_ptr<const codec::Codec> topk = codec::make_codec("topk:k=0.2");
  for (const int m : testing::kWorldSizes) {
    constexpr std::size_t d = 60;
    constexpr int rounds = 15;
    const auto xs = all_inputs(13, m, d);
    test::run_world(m, [&](comm::Transport& t) {
      const int owned = ring_owned_chunk(t.rank(), m);
      const Chunk chunk = balanced_chunk(d, m, owned);
      // Replay the reduce-scatter of chunk `owned`: it starts at rank `owned`, the owner is last.
      std::vector<float> p(xs[static_cast<std::size_t>(owned)].begin() + chunk.begin,
                           xs[static_cast<std::size_t>(owned)].begin() + chunk.begin + chunk.size);
      for (int h = 1; h < m; ++h) {
        const auto& x = xs[static_cast<std::size_t>((owned + h) % m)];
        std::vector<float> next(x.begin() + chunk.begin, x.begin() + chunk.begin + chunk.size);
        codec::decode(topk->encode(p), next, codec::DecodeMode::kAccumulate);
        p = next;
      }
      AllreduceResidual ef(topk, AllreduceAlgorithm::kRing, d, t.rank(), m);
      ASSERT_EQ(ef.dimension(), chunk.size);
      std::vector<double> total(chunk.size, 0.0);
      for (int round = 0; round < rounds; ++round) {
        std::vector<float> x = xs[static_cast<std::size_t>(t.rank())];
        (void)allreduce_ring(t, x, *topk, {.error_feedback = &ef});
        for (std::size_t i = 0; i < chunk.size; ++i) total[i] += x[chunk.begin + i];
      }
      for (std::size_t i = 0; i < chunk.size; ++i) {
        EXPECT_NEAR(total[i] + ef.residual()[i], rounds * (p[i] / static_cast<float>(m)),
                    1e-4 * rounds)
            << "rank " << t.rank() << " element " << i;
      }
    });
  }
}

// A residual is built for one (algorithm, d, rank, M); any other call is refused before a message
// is sent, with a message that names both.
TEST(AllreduceErrorFeedbackTest, AResidualBuiltForAnotherCallIsRejected) {
  if (test::kMpiWorld) GTEST_SKIP() << "a failing rank aborts an MPI job";
  const std::shared_ptr<const codec::Codec> topk = codec::make_codec("topk:k=0.1");
  test::run_world(1, [&](comm::Transport& t) {
    std::vector<float> x(10, 1.0f);
    AllreduceResidual nine(topk, AllreduceAlgorithm::kAllgather, 9, 0, 1);
    try {
      (void)allreduce_allgather(t, x, *topk, {.error_feedback = &nine});
      ADD_FAILURE() << "a residual for 9 elements encoded 10";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("built for the allgather of 9 elements on rank 0 of 1, "
                                           "used for the allgather of 10 elements"),
                std::string::npos)
          << e.what();
    }
    AllreduceResidual ring(topk, AllreduceAlgorithm::kRing, 10, 0, 1);
    EXPECT_THROW((void)allreduce_allgather(t, x, *topk, {.error_feedback = &ring}),
                 InvalidArgument);
    AllreduceResidual gather(topk, AllreduceAlgorithm::kAllgather, 10, 0, 1);
    EXPECT_THROW((void)allreduce_ring(t, x, *topk, {.error_feedback = &gather}), InvalidArgument);
    AllreduceResidual other_world(topk, AllreduceAlgorithm::kAllgather, 10, 0, 2);
    EXPECT_THROW((void)allreduce_allgather(t, x, *topk, {.error_feedback = &other_world}),
                 InvalidArgument);
    EXPECT_EQ(x, std::vector<float>(10, 1.0f));  // nothing was encoded or sent
    EXPECT_THROW((void)allreduce_shared_randk(t, x, *codec::make_codec("randk:k=2,shared_seed=1"),
                                              {.error_feedback = &gather}),
                 InvalidArgument);
    (void)allreduce_allgather(t, x, *topk, {.error_feedback = &gather});  // the right call runs
  });
}

// The residual takes its length from the call it is built for: d for the all-gather, the owned
// chunk for the ring (d = 61 over 4 ranks: chunks of 16, 15, 15, 15). shared_randk and a rank
// outside the world have none.
TEST(AllreduceErrorFeedbackTest, ResidualIsSizedPerAlgorithm) {
  const std::shared_ptr<const codec::Codec> codec = codec::make_codec("topk:k=0.2");
  constexpr std::size_t d = 61;
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(AllreduceResidual(codec, AllreduceAlgorithm::kAllgather, d, rank, 4).dimension(), d);
    EXPECT_EQ(AllreduceResidual(codec, AllreduceAlgorithm::kRing, d, rank, 4).dimension(),
              balanced_chunk(d, 4, ring_owned_chunk(rank, 4)).size);
  }
  // Rank 3 owns chunk 0, the longer one.
  EXPECT_EQ(AllreduceResidual(codec, AllreduceAlgorithm::kRing, d, 3, 4).dimension(), 16U);
  EXPECT_THROW(AllreduceResidual(codec, AllreduceAlgorithm::kSharedRandk, d, 0, 4),
               InvalidArgument);
  EXPECT_THROW(AllreduceResidual(codec, AllreduceAlgorithm::kRing, d, 4, 4), InvalidArgument);
  EXPECT_THROW(AllreduceResidual(codec, AllreduceAlgorithm::kRing, d, 0, 0), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::collective
