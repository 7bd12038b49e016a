// The step model of the dynamic rule (docs/tuning.md): the secant smoothness estimate, and the
// rule's choice against brute force on a quadratic whose decrease is known in closed form and
// measured by taking the steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/tune/curvature.hpp"
#include "thinwire/tune/rho.hpp"
#include "thinwire/tune/selector.hpp"
#include "thinwire/tune/tuner.hpp"

namespace thinwire::tune {
namespace {

std::vector<float> gaussian_vector(std::size_t d, std::uint64_t seed) {
  RngStream rng(RngKey{seed});
  std::vector<float> v(d);
  for (float& x : v) x = static_cast<float>(rng.next_normal());
  return v;
}

TEST(SecantCurvatureTest, IsTheCurvatureOfAQuadraticAlongTheMove) {
  // f(x) = ½·Σ a_i x_i², g = a ⊙ x. Moving along coordinate 2 only, the secant is a_2; along
  // (1, 1) on coordinates 0 and 1 it is √((a_0² + a_1²)/2).
  const std::vector<float> a{1.0f, 7.0f, 3.0f};
  const auto grad = [&](const std::vector<float>& x) {
    std::vector<float> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) g[i] = a[i] * x[i];
    return g;
  };
  SecantCurvature c;
  std::vector<float> x{1.0f, 1.0f, 1.0f};
  c.observe(x, grad(x));
  EXPECT_EQ(c.smoothness(), 0.0);  // one point has no secant
  x[2] = 0.5f;
  c.observe(x, grad(x));
  EXPECT_DOUBLE_EQ(c.smoothness(), 3.0);
  EXPECT_DOUBLE_EQ(c.last_move_squared(), 0.25);
  x[0] = 0.0f;
  x[1] = 0.0f;
  c.observe(x, grad(x));
  EXPECT_DOUBLE_EQ(c.smoothness(), 0.5 * 3.0 + 0.5 * std::sqrt((1.0 + 49.0) / 2.0));
  // The state restores to the same estimate and the same next secant.
  SecantCurvature restored;
  restored.restore(std::vector<float>(c.model().begin(), c.model().end()),
                   std::vector<float>(c.gradient().begin(), c.gradient().end()), c.smoothness(),
                   c.last_move_squared());
  x[2] = 0.25f;
  c.observe(x, grad(x));
  restored.observe(x, grad(x));
  EXPECT_EQ(c.smoothness(), restored.smoothness());
}

// f(x) = (L/2)·‖x‖² has g = L·x and f(x) − f(x − γq) = γ⟨g, q⟩ − (Lγ²/2)·‖q‖².
double decrease(std::span<const float> g, std::span<const float> q, double l, double gamma) {
  double gq = 0.0;
  double qq = 0.0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    gq += static_cast<double>(g[i]) * q[i];
    qq += static_cast<double>(q[i]) * q[i];
  }
  return gamma * gq - 0.5 * l * gamma * gamma * qq;
}

// One worker (M = 1), no momentum, no error feedback, QSGD: the rule with the exact L as L̂ and
// ‖g‖² as the signal against the measured mean decrease of each level (the step really taken,
// 400 encodings each) divided by the level's price, on the same grid the selector scores.
TEST(StepModelTest, UnbiasedRuleRanksLevelsAsTheirMeasuredDecreasePerBit) {
  const std::size_t d = 512;
  const std::vector<float> g = gaussian_vector(d, 3);
  const auto cost = make_cost_model("linear:latency=20us,bandwidth=100Mbit");
  for (const double gamma_l : {0.3, 1.0, 1.6}) {  // the step γ·L
    const double l = 2.0;
    const double gamma = gamma_l / l;
    TuneContext context{.smoothness = l,
                        .lr = gamma,
                        .workers = 1,
                        .gradient_squared = squared_norm(g),
                        .average_squared = squared_norm(g)};
    auto tuner = make_tuner({.tuner = "dynamic",
                             .codec = "qsgd:s=4,bucket=0,norm=l2,coding=elias",
                             .cost = cost->spec()});
    const Decision chosen = tuner->decide(0, g, context);

    double best = -std::numeric_limits<double>::infinity();
    double chosen_score = std::numeric_limits<double>::quiet_NaN();
    std::vector<float> q(d);
    for (const std::uint32_t bucket : {0u, 64u, 256u, 1024u}) {
      if (bucket >= d) continue;  // the same single bucket as 0
      for (std::uint32_t s = 1; s <= 256; s *= 2) {
        const auto c =
            codec::make_codec("qsgd:s=" + std::to_string(s) + ",bucket=" + std::to_string(bucket) +
                              ",norm=l2,coding=elias");
        double sum_decrease = 0.0;
        double sum_bits = 0.0;
        constexpr std::uint64_t kDraws = 400;
        for (std::uint64_t draw = 0; draw < kDraws; ++draw) {
          const auto message = c->encode(g, {.seed = 11, .rank = 0, .iteration = draw});
          codec::decode(message, q, codec::DecodeMode::kOverwrite);
          sum_decrease += decrease(g, q, l, gamma);
          sum_bits += 8.0 * static_cast<double>(message.size());
        }
        const double score =
            (sum_decrease / kDraws) /
            cost->cost(static_cast<std::uint64_t>(std::llround(sum_bits / kDraws)));
        best = std::max(best, score);
        if (s == static_cast<std::uint32_t>(chosen.level) &&
            chosen.codec_spec.find("bucket=" + std::to_string(bucket) + ",") != std::string::npos) {
          chosen_score = score;
        }
      }
    }
    ASSERT_TRUE(std::isfinite(chosen_score)) << chosen.codec_spec;
    // The measured score of the rule's level is the best one up to the Monte Carlo error.
    EXPECT_GE(chosen_score, 0.97 * best) << "γL = " << gamma_l << ": chose " << chosen.codec_spec
                                         << " (" << chosen_score << "), best measured " << best;
  }
}

// Error feedback: the larger L̂·γ, the more a residual perturbs the steps that follow, and the
// rule keeps more of v; where no level has a positive predicted decrease, it sends everything.
TEST(StepModelTest, ErrorFeedbackPenaltyGrowsTheChosenK) {
  const std::size_t d = 400;
  std::vector<float> v = gaussian_vector(d, 5);
  for (std::size_t i = 0; i < d; ++i)
    v[i] *= static_cast<float>(std::exp(-0.01 * static_cast<double>(i)));
  const double g2 = squared_norm(v);
  auto tuner = make_tuner({.tuner = "dynamic", .codec = "topk:k=1", .cost = "bits"});
  double previous = 0.0;
  for (const double step : {0.05, 0.2, 0.5, 0.9}) {
    const Decision d1 = tuner->decide(
        0, v,
        {.smoothness = step, .lr = 1.0, .error_feedback = true, .gradient_squared = 0.3 * g2});
    EXPECT_GE(d1.level, previous) << "L̂γ = " << step;
    previous = d1.level;
  }
  EXPECT_GT(previous, 1.0);
  // Δ_k = 0.3·‖v‖² − 4·‖v − top_k(v)‖² > 0 only where almost everything is kept.
  const Decision all = tuner->decide(
      0, v, {.smoothness = 2.0, .lr = 1.0, .error_feedback = true, .gradient_squared = 1e-9 * g2});
  EXPECT_EQ(all.level, static_cast<double>(d));
}

// The price of the iteration: a fixed cost per iteration makes tiny messages a false economy.
TEST(StepModelTest, FixedIterationCostRaisesTheChosenLevel) {
  const std::vector<float> v = gaussian_vector(1000, 9);
  auto tuner = make_tuner({.tuner = "dynamic", .codec = "topk:k=1", .cost = "bits"});
  const Decision alone = tuner->decide(0, v, {.copies = 1.0, .fixed = 0.0});
  const Decision with_downlink = tuner->decide(0, v, {.copies = 1.0, .fixed = 1e5});
  EXPECT_GT(with_downlink.level, 2.0 * alone.level);
  EXPECT_DOUBLE_EQ(with_downlink.price, with_downlink.bits + 1e5);
}

}  // namespace
}  // namespace thinwire::tune
