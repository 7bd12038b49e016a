// Closed-form tests of the training algorithms (train/algorithm.hpp) on their own, without a
// problem or a data set: every rank's gradient is a given function of its model, and the models
// after a few steps are compared with values computed by hand, or with another algorithm the
// configuration must reduce to (a lossless codec makes qlocal-sgd local-sgd, CHOCO with consensus
// step 1 exact gossip averaging, the parameter server all-reduce SGD).
//
// Each test names the mistake it catches: a worker that does not restart from the average, an
// average without its 1/M, CHOCO public copies that are never updated, error feedback that does
// not subtract what was sent.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "support/world.hpp"
#include "thinwire/train/algorithm.hpp"
#include "thinwire/train/config.hpp"

namespace thinwire::train {
namespace {

using Models = std::vector<std::vector<float>>;  // per rank
// A rank's gradient at its model, at iteration t.
using GradientOf =
    std::function<std::vector<float>(int rank, std::uint64_t t, std::span<const float> model)>;

TrainConfig base_config(AlgorithmKind algorithm, std::string sync, std::string codec,
                        std::uint64_t workers) {
  TrainConfig c;
  c.algorithm = algorithm;
  c.sync = std::move(sync);
  c.codec = std::move(codec);
  c.workers = workers;
  c.momentum = 0.0;
  c.iterations = 1;
  c.problem = "unused";
  c.data = "unused";
  return c;
}

// Runs `steps` iterations of the configured algorithm on `config.workers` thread ranks, every rank
// starting from x0, and returns each rank's published model.
Models run(TrainConfig config, std::span<const float> x0, std::uint64_t steps,
           const GradientOf& gradient) {
  resolve(config);
  const auto m = static_cast<int>(config.workers);
  Models out(static_cast<std::size_t>(m));
  std::mutex lock;
  test::run_world(m, [&](comm::Transport& transport) {
    AlgorithmContext context{.transport = &transport, .dimension = x0.size(), .seed = 7};
    const std::unique_ptr<Algorithm> algorithm = make_algorithm(config, context, x0);
    std::vector<float> model(x0.begin(), x0.end());
    for (std::uint64_t t = 0; t < steps; ++t) {
      std::vector<float> grad = gradient(transport.rank(), t, model);
      (void)algorithm->step(t, model, grad, true);
    }
    const std::span<const float> published = algorithm->published(model);
    const std::scoped_lock guard(lock);
    out[static_cast<std::size_t>(transport.rank())].assign(published.begin(), published.end());
  });
  return out;
}

// ∇ of ½‖x − c_m‖²: x − c_m, with c_m a different point on every rank.
std::vector<float> towards_centre(int rank, std::span<const float> x) {
  std::vector<float> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float centre = static_cast<float>(4 * rank) * static_cast<float>(i + 1);
    g[i] = x[i] - centre;
  }
  return g;
}

void expect_all_ranks(const Models& models, const std::vector<float>& expected) {
  for (std::size_t r = 0; r < models.size(); ++r) {
    ASSERT_EQ(models[r].size(), expected.size()) << "rank " << r;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_FLOAT_EQ(models[r][i], expected[i]) << "rank " << r << ", element " << i;
    }
  }
}

// ---- one step against a hand-computed value ---------------------------------------------------

// sgd: x1 = x0 − γ·(g_0 + g_1)/2 = (1, 2) − ½·((1, 0) + (3, 4))/2 = (0, 1). Without the 1/M of
// the average it would be (−1, 0).
TEST(AlgorithmClosedForm, SgdTakesTheAverageGradient) {
  const std::array<float, 2> x0 = {1.0f, 2.0f};
  const GradientOf constant = [](int rank, std::uint64_t, std::span<const float>) {
    return rank == 0 ? std::vector<float>{1.0f, 0.0f} : std::vector<float>{3.0f, 4.0f};
  };
  for (const char* sync : {"allgather", "ring", "ps"}) {
    SCOPED_TRACE(sync);
    TrainConfig c = base_config(AlgorithmKind::kSgd, sync, "identity", 2);
    c.lr = 0.5;
    expect_all_ranks(run(c, x0, 1, constant), {0.0f, 1.0f});
  }
}

// local-sgd and qlocal-sgd, H = 2, γ = ½ on ½‖x − c_m‖² (c_0 = 0, c_1 = (4, 8)): each local step
// halves the distance to c_m, so rank 0 goes (1, 2) → (½, 1) → (¼, ½) and rank 1
// (1, 2) → (2½, 5) → (3¼, 6½); the synchronization leaves both at the average (1¾, 3½).
TEST(AlgorithmClosedForm, LocalStepsThenEveryRankRestartsFromTheAverage) {
  const std::array<float, 2> x0 = {1.0f, 2.0f};
  const GradientOf gradient = [](int rank, std::uint64_t, std::span<const float> x) {
    return towards_centre(rank, x);
  };
  for (const AlgorithmKind kind : {AlgorithmKind::kLocalSgd, AlgorithmKind::kQlocalSgd}) {
    for (const char* sync : {"allgather", "ring"}) {
      SCOPED_TRACE(std::string(algorithm_name(kind)) + " " + sync);
      TrainConfig c = base_config(kind, sync, "identity", 2);
      c.lr = 0.5;
      c.local_steps = 2;
      expect_all_ranks(run(c, x0, 2, gradient), {1.75f, 3.5f});
      // One step more: a local step from the average, not from the rank's own model.
      const Models after = run(c, x0, 3, gradient);
      EXPECT_FLOAT_EQ(after[0][0], 0.875f);  // ½·1¾ + ½·0
      EXPECT_FLOAT_EQ(after[1][0], 2.875f);  // ½·1¾ + ½·4
      EXPECT_FLOAT_EQ(after[1][1], 5.75f);   // ½·3½ + ½·8
    }
  }
}

// Error feedback (sgd, top-1 with +ef, γ = 1, constant gradients g_0 = (4, 1, 0), g_1 =
// (0, 1.25, 3)): v = g + e, the message is top-1 of v, e ← v − sent.
//   t = 0: v_0 = (4, 1, 0) sends (4, 0, 0), e_0 = (0, 1, 0); v_1 = (0, 1.25, 3) sends (0, 0, 3),
//          e_1 = (0, 1.25, 0); the average is (2, 0, 1.5).
//   t = 1: v_0 = (4, 2, 0) sends (4, 0, 0); v_1 = (0, 2.5, 3) sends (0, 0, 3): (2, 0, 1.5).
//   t = 2: v_0 = (4, 3, 0) sends (4, 0, 0); v_1 = (0, 3.75, 3) sends (0, 3.75, 0): (2, 1.875, 0).
// x_3 = −(6, 1.875, 3). Without the subtraction e_0 would be (4, 1, 0) and rank 0 would send
// (8, 0, 0) at t = 1.
TEST(AlgorithmClosedForm, ErrorFeedbackKeepsWhatWasNotSent) {
  const std::array<float, 3> x0 = {0.0f, 0.0f, 0.0f};
  const GradientOf constant = [](int rank, std::uint64_t, std::span<const float>) {
    return rank == 0 ? std::vector<float>{4.0f, 1.0f, 0.0f} : std::vector<float>{0.0f, 1.25f, 3.0f};
  };
  for (const char* sync : {"allgather", "ps"}) {
    SCOPED_TRACE(sync);
    TrainConfig c = base_config(AlgorithmKind::kSgd, sync, "topk:k=1+ef", 2);
    c.lr = 1.0;
    expect_all_ranks(run(c, x0, 3, constant), {-6.0f, -1.875f, -3.0f});
  }
}

// ---- algorithms that must reduce to one another ------------------------------------------------

// Four ranks, d = 5, gradients of ½‖x − c_m‖² plus an iteration-dependent term, so the ranks'
// trajectories differ at every step.
std::vector<float> varied(int rank, std::uint64_t t, std::span<const float> x) {
  std::vector<float> g = towards_centre(rank, x);
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] += 0.125f * static_cast<float>((static_cast<std::uint64_t>(rank) + t + i) % 3);
  }
  return g;
}
constexpr std::array<float, 5> kStart = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f};

// With the identity codec qlocal-sgd (the change since the last synchronized model, averaged and
// added to it) is local-sgd (the models averaged), bit for bit on the all-gather: both sum the
// same floats in the same order only up to x̄ + mean(x − x̄) = mean(x), so the test allows one
// rounding of the model's magnitude.
TEST(AlgorithmReduces, LosslessQlocalSgdIsLocalSgd) {
  for (const std::uint64_t h : {1u, 3u}) {
    SCOPED_TRACE("H = " + std::to_string(h));
    TrainConfig local = base_config(AlgorithmKind::kLocalSgd, "allgather", "identity", 4);
    local.lr = 0.25;
    local.local_steps = h;
    TrainConfig qlocal = local;
    qlocal.algorithm = AlgorithmKind::kQlocalSgd;
    const Models a = run(local, kStart, 7, varied);
    const Models b = run(qlocal, kStart, 7, varied);
    for (std::size_t r = 0; r < a.size(); ++r) {
      for (std::size_t i = 0; i < kStart.size(); ++i) {
        EXPECT_NEAR(a[r][i], b[r][i], 1e-5f * (1.0f + std::abs(a[r][i])))
            << "rank " << r << ", element " << i;
      }
    }
  }
}

// CHOCO-gossip with consensus step 1 and a lossless codec: the public copies equal the models
// after every round, so x_i + Σ_j w_ij (x_j − x_i) = Σ_j w_ij x_j is exact gossip averaging
// (sgd --sync gossip), up to float rounding. With public copies that are never updated CHOCO
// never mixes the models.
TEST(AlgorithmReduces, ChocoWithStepOneAndLosslessCodecIsExactGossip) {
  TrainConfig gossip = base_config(AlgorithmKind::kSgd, "gossip:ring", "identity", 4);
  gossip.lr = 0.25;
  TrainConfig choco = base_config(AlgorithmKind::kChoco, "gossip:ring", "identity", 4);
  choco.lr = 0.25;
  choco.gossip_lr = 1.0;
  const Models a = run(gossip, kStart, 6, varied);
  const Models b = run(choco, kStart, 6, varied);
  for (std::size_t r = 0; r < a.size(); ++r) {
    for (std::size_t i = 0; i < kStart.size(); ++i) {
      EXPECT_NEAR(a[r][i], b[r][i], 1e-5f * (1.0f + std::abs(a[r][i])))
          << "rank " << r << ", element " << i;
    }
  }
  // The ranks do differ (gossip is not all-reduce): the comparison above says something.
  EXPECT_GT(std::abs(a[0][0] - a[2][0]), 0.1f);
}

// sgd over exact gossip (D-PSGD), by hand: four ranks on a ring, Metropolis–Hastings weights ⅓ for
// each neighbour and for the rank itself. The local step (lr ½ on ½‖x − c_r‖², c_r = 4r·(1, 2))
// takes (1, 2) to x_r = (½ + 2r, 1 + 4r); the round averages each rank with its two neighbours:
// rank 0 (x_3 + x_0 + x_1)/3 = (19/6, 19/3), rank 1 (5/2, 5), rank 2 (9/2, 9), rank 3 (23/6, 23/3).
// A round that does not mix leaves every rank at its local step.
TEST(AlgorithmClosedForm, GossipMixesEachRankWithItsNeighbours) {
  const std::array<float, 2> x0 = {1.0f, 2.0f};
  const GradientOf gradient = [](int rank, std::uint64_t, std::span<const float> x) {
    return towards_centre(rank, x);
  };
  for (const AlgorithmKind kind : {AlgorithmKind::kSgd, AlgorithmKind::kLocalSgd}) {
    SCOPED_TRACE(algorithm_name(kind));
    TrainConfig c = base_config(kind, "gossip:ring", "identity", 4);
    c.lr = 0.5;
    const Models models = run(c, x0, 1, gradient);
    const std::array<std::array<float, 2>, 4> expected = {
        {{19.0f / 6, 19.0f / 3}, {2.5f, 5.0f}, {4.5f, 9.0f}, {23.0f / 6, 23.0f / 3}}};
    for (std::size_t r = 0; r < 4; ++r) {
      for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_NEAR(models[r][i], expected[r][i], 1e-5f) << "rank " << r << ", element " << i;
      }
    }
  }
}

// CHOCO with a lossy codec, by hand: two ranks (W = ½ everywhere), top-1, consensus step γ = ½,
// lr ½ on ½‖x − c_m‖² (c_0 = 0, c_1 = (4, 8)), from (1, 2).
//   t = 0: local steps give x_0 = (½, 1), x_1 = (2½, 5); y = 0, so q_0 = top1(x_0) = (0, 1) and
//          q_1 = (0, 5); y_0 = (0, 1), y_1 = (0, 5); x_0 += ½·½·(y_1 − y_0) → (½, 2), x_1 → (2½,
//          4).
//   t = 1: local steps give x_0 = (¼, 1), x_1 = (3¼, 6); q_0 = top1(x_0 − y_0) = (¼, 0),
//          q_1 = top1((3¼, 1)) = (3¼, 0); y_0 = (¼, 1), y_1 = (3¼, 5); x_0 += ¼·(3, 4) → (1, 2),
//          x_1 → (2½, 5).
// Public copies that start from zero at every round instead of persisting give (¼, 2¼) on rank 0.
TEST(AlgorithmClosedForm, ChocoKeepsItsPublicCopiesAcrossRounds) {
  const std::array<float, 2> x0 = {1.0f, 2.0f};
  const GradientOf gradient = [](int rank, std::uint64_t, std::span<const float> x) {
    return towards_centre(rank, x);
  };
  TrainConfig c = base_config(AlgorithmKind::kChoco, "gossip:ring", "topk:k=1", 2);
  c.lr = 0.5;
  c.gossip_lr = 0.5;
  const Models models = run(c, x0, 2, gradient);
  EXPECT_FLOAT_EQ(models[0][0], 1.0f);
  EXPECT_FLOAT_EQ(models[0][1], 2.0f);
  EXPECT_FLOAT_EQ(models[1][0], 2.5f);
  EXPECT_FLOAT_EQ(models[1][1], 5.0f);
}

// The parameter server with lossless links (identity up and down) is all-reduce SGD.
TEST(AlgorithmReduces, LosslessParameterServerIsAllreduceSgd) {
  TrainConfig allgather = base_config(AlgorithmKind::kSgd, "allgather", "identity", 4);
  allgather.lr = 0.25;
  TrainConfig ps = allgather;
  ps.sync = "ps";
  const Models a = run(allgather, kStart, 6, varied);
  const Models b = run(ps, kStart, 6, varied);
  for (std::size_t r = 0; r < a.size(); ++r) {
    for (std::size_t i = 0; i < kStart.size(); ++i) {
      EXPECT_NEAR(a[r][i], b[r][i], 1e-5f * (1.0f + std::abs(a[r][i])))
          << "rank " << r << ", element " << i;
    }
  }
}

}  // namespace
}  // namespace thinwire::train
