#include "thinwire/data/synthetic.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

Eigen::MatrixXd covariance(const Dataset& d) {
  const Eigen::MatrixXd x = d.dense().cast<double>();
  return x.transpose() * x / static_cast<double>(x.rows());
}

// The sample covariance of n Gaussian rows has eigenvalues within ~2·sqrt(d/n) (relative) of the
// population ones (Marchenko-Pastur edge); n = 20000, d = 8 gives ±4 %, so the ratio is within
// ~8 % of cond. Tolerance 15 %.
TEST(SyntheticTest, ConditionNumberAsAsked) {
  for (const bool rotate : {false, true}) {
    for (const double cond : {1.0, 10.0, 100.0}) {
      const Dataset d = make_synthetic({.n = 20000,
                                        .d = 8,
                                        .cond = cond,
                                        .task = SyntheticTask::kLeastSquares,
                                        .seed = 3,
                                        .rotate = rotate});
      const Eigen::VectorXd ev =
          Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(covariance(d)).eigenvalues();
      EXPECT_NEAR(ev.maxCoeff() / ev.minCoeff(), cond, 0.15 * cond) << "rotate " << rotate;
      EXPECT_NEAR(ev.maxCoeff(), 1.0, 0.1);
    }
  }
}

TEST(SyntheticTest, RotationMakesTheCovarianceNonDiagonal) {
  const SyntheticOptions base{.n = 5000, .d = 6, .cond = 50, .seed = 1, .rotate = false};
  SyntheticOptions rotated = base;
  rotated.rotate = true;
  const Eigen::MatrixXd plain = covariance(make_synthetic(base));
  const Eigen::MatrixXd turned = covariance(make_synthetic(rotated));
  const auto off = [](const Eigen::MatrixXd& c) {
    return (c - Eigen::MatrixXd(c.diagonal().asDiagonal())).cwiseAbs().maxCoeff();
  };
  EXPECT_LT(off(plain), 0.05);  // sampling noise only: sd ~ 1/sqrt(5000) = 0.014
  EXPECT_GT(off(turned), 0.1);
}

TEST(SyntheticTest, DeterministicFromSeed) {
  const SyntheticOptions o{.n = 50, .d = 4, .cond = 5, .seed = 9};
  const Dataset a = make_synthetic(o);
  const Dataset b = make_synthetic(o);
  SyntheticOptions other = o;
  other.seed = 10;
  EXPECT_EQ(a.dense(), b.dense());
  EXPECT_EQ(std::vector<float>(a.targets().begin(), a.targets().end()),
            std::vector<float>(b.targets().begin(), b.targets().end()));
  EXPECT_NE(a.dense(), make_synthetic(other).dense());
}

// y = x·w* + noise·ε with signal variance 1: the least-squares fit leaves residual variance
// noise²·(1 - d/n) and explains R² = 1/(1 + noise²). 6-sigma tolerance on the residual variance:
// 6·noise²·sqrt(2/n).
TEST(SyntheticTest, LeastSquaresHasThePlantedNoise) {
  const double noise = 0.5;
  const Dataset d = make_synthetic({.n = 4000,
                                    .d = 5,
                                    .cond = 10,
                                    .task = SyntheticTask::kLeastSquares,
                                    .noise = noise,
                                    .seed = 2});
  const Eigen::MatrixXd x = d.dense().cast<double>();
  Eigen::VectorXd y(x.rows());
  for (Eigen::Index i = 0; i < y.size(); ++i) y[i] = d.targets()[static_cast<std::size_t>(i)];
  const Eigen::VectorXd w = x.colPivHouseholderQr().solve(y);
  const double residual = (x * w - y).squaredNorm() / static_cast<double>(x.rows());
  EXPECT_NEAR(residual, noise * noise * (1 - 5.0 / 4000),
              6 * noise * noise * std::sqrt(2.0 / 4000));
  EXPECT_NEAR((x * w).squaredNorm() / static_cast<double>(x.rows()), 1.0, 0.1);  // signal var 1
}

TEST(SyntheticTest, ClassificationLabels) {
  const Dataset logistic = make_synthetic({.n = 2000, .d = 5, .seed = 4});
  ASSERT_EQ(logistic.num_classes(), 2u);
  double positives = 0;
  for (std::size_t i = 0; i < logistic.rows(); ++i) {
    EXPECT_EQ(logistic.targets()[i], logistic.classes()[i] == 1 ? 1.0f : -1.0f);
    positives += logistic.classes()[i];
  }
  // Symmetric model: P(y = +1) = 1/2; sd of the count sqrt(2000)/2 ≈ 22, 6 sd = 134.
  EXPECT_NEAR(positives, 1000, 134);
  const Dataset softmax =
      make_synthetic({.n = 3000, .d = 6, .task = SyntheticTask::kSoftmax, .classes = 5, .seed = 4});
  ASSERT_EQ(softmax.num_classes(), 5u);
  std::vector<int> counts(5, 0);
  for (std::int32_t c : softmax.classes()) ++counts[static_cast<std::size_t>(c)];
  for (int c : counts) EXPECT_GT(c, 100);  // every class occurs
}

TEST(SyntheticTest, OptionsFromSpecAndErrors) {
  Spec spec =
      Spec::parse("synthetic:n=10,d=3,cond=4,task=softmax,classes=3,noise=0,seed=5,rotate=false");
  const SyntheticOptions o = synthetic_options(spec);
  spec.finish();
  EXPECT_EQ(o.n, 10u);
  EXPECT_EQ(o.d, 3u);
  EXPECT_EQ(o.cond, 4.0);
  EXPECT_EQ(o.task, SyntheticTask::kSoftmax);
  EXPECT_EQ(o.classes, 3u);
  EXPECT_EQ(o.noise, 0.0);
  EXPECT_EQ(o.seed, 5u);
  EXPECT_FALSE(o.rotate);
  EXPECT_THROW((void)make_synthetic({.cond = 0.5}), InvalidArgument);
  EXPECT_THROW((void)make_synthetic({.d = 1, .cond = 2}), InvalidArgument);
  EXPECT_THROW((void)make_synthetic({.n = 0}), InvalidArgument);
  EXPECT_THROW((void)make_synthetic({.classes = 3}), InvalidArgument);  // logistic
  EXPECT_THROW((void)make_synthetic({.task = SyntheticTask::kSoftmax, .classes = 1}),
               InvalidArgument);
  EXPECT_THROW((void)make_synthetic({.noise = -1}), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::data
