// Sgd: each update rule against its closed form on small vectors, state save/restore, and the
// argument checks. Inputs are exactly representable and the rules are evaluated in the same
// float order as the implementation, so the comparisons are exact.
#include "thinwire/optim/sgd.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::optim {
namespace {

TEST(Sgd, PlainStepIsXMinusLrTimesGradient) {
  Sgd sgd(3, {.lr = 0.5, .momentum = 0.0});
  std::vector<float> x{1.0f, -2.0f, 4.0f};
  const std::vector<float> g{2.0f, 4.0f, -8.0f};
  sgd.step(x, g);
  EXPECT_EQ(x, (std::vector<float>{0.0f, -4.0f, 8.0f}));
  EXPECT_TRUE(sgd.velocity().empty());  // no momentum, no buffer
}

TEST(Sgd, HeavyBallAccumulatesVelocity) {
  Sgd sgd(1, {.lr = 0.5, .momentum = 0.5});
  std::vector<float> x{0.0f};
  const std::vector<float> g{1.0f};
  sgd.step(x, g);  // v = 1, x = -0.5
  EXPECT_EQ(x[0], -0.5f);
  sgd.step(x, g);  // v = 0.5 + 1 = 1.5, x = -0.5 - 0.75
  EXPECT_EQ(x[0], -1.25f);
  EXPECT_EQ(sgd.velocity()[0], 1.5f);
}

TEST(Sgd, NesterovLooksAhead) {
  Sgd sgd(1, {.lr = 0.5, .momentum = 0.5, .nesterov = true});
  std::vector<float> x{0.0f};
  const std::vector<float> g{1.0f};
  sgd.step(x, g);  // v = 1, x -= 0.5 * (1 + 0.5 * 1)
  EXPECT_EQ(x[0], -0.75f);
}

TEST(Sgd, WeightDecayIsAddedToTheGradient) {
  Sgd sgd(1, {.lr = 0.25, .weight_decay = 0.5});
  std::vector<float> x{2.0f};
  const std::vector<float> g{1.0f};
  sgd.step(x, g);  // u = 1 + 0.5 * 2 = 2
  EXPECT_EQ(x[0], 1.5f);
}

TEST(Sgd, StepWithExplicitLearningRate) {
  Sgd sgd(1, {.lr = 100.0});
  std::vector<float> x{1.0f};
  const std::vector<float> g{1.0f};
  sgd.step(x, g, 0.5);
  EXPECT_EQ(x[0], 0.5f);
}

TEST(Sgd, RestoredVelocityContinuesTheTrajectory) {
  const std::vector<float> g{1.0f, -3.0f};
  Sgd a(2, {.lr = 0.1, .momentum = 0.9});
  std::vector<float> xa{0.0f, 0.0f};
  a.step(xa, g);
  Sgd b(2, {.lr = 0.1, .momentum = 0.9});
  b.set_velocity(a.velocity());
  std::vector<float> xb = xa;
  a.step(xa, g);
  b.step(xb, g);
  EXPECT_EQ(xa, xb);
}

TEST(Sgd, RejectsBadArguments) {
  EXPECT_THROW(Sgd(1, {.lr = -1.0}), InvalidArgument);
  EXPECT_THROW(Sgd(1, {.momentum = 1.0}), InvalidArgument);
  EXPECT_THROW(Sgd(1, {.weight_decay = -0.1}), InvalidArgument);
  Sgd sgd(2, {});
  std::vector<float> x(3);
  const std::vector<float> g(2);
  EXPECT_THROW(sgd.step(x, g), InvalidArgument);
  EXPECT_THROW(sgd.set_velocity(std::vector<float>(5)), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::optim

namespace thinwire::optim {
namespace {

TEST(Sgd, DecreasingStepIsLrOverOnePlusTOverT) {
  const Sgd constant(1, {.lr = 0.5});
  EXPECT_EQ(constant.lr_at(1000), 0.5);
  const Sgd decaying(1, {.lr = 0.5, .lr_decay = 100});
  EXPECT_EQ(decaying.lr_at(0), 0.5);
  EXPECT_DOUBLE_EQ(decaying.lr_at(100), 0.25);
  EXPECT_DOUBLE_EQ(decaying.lr_at(300), 0.125);
  EXPECT_THROW(Sgd(1, {.lr = 0.5, .lr_decay = -1}), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::optim
