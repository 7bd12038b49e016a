#include "thinwire/problem/problem.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <numeric>
#include <vector>

#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/data/synthetic.hpp"
#include "thinwire/problem/linear.hpp"
#include "thinwire/problem/mlp.hpp"

namespace thinwire::problem {
namespace {

using data::SyntheticTask;

Dataset softmax_data(std::size_t n = 60) {
  return data::make_synthetic({.n = n,
                               .d = 5,
                               .cond = 4,
                               .task = SyntheticTask::kSoftmax,
                               .classes = 3,
                               .noise = 0.1,
                               .seed = 8});
}

Dataset logistic_data() {
  return data::make_synthetic({.n = 80, .d = 6, .cond = 8, .noise = 0.2, .seed = 9});
}

std::vector<double> random_vector(std::size_t n, std::uint64_t seed) {
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kTest));
  std::vector<double> x(n);
  for (double& v : x) v = rng.next_normal();
  return x;
}

TEST(ProblemTest, FactoryBuildsEveryProblemWithItsDimension) {
  const Dataset s = softmax_data();
  const Dataset l = logistic_data();
  EXPECT_EQ(make_problem("logistic", l)->dim(), 6u);
  EXPECT_EQ(make_problem("least-squares:lambda=0.5", l)->dim(), 6u);
  EXPECT_EQ(make_problem("softmax", s)->dim(), 15u);
  EXPECT_EQ(make_problem("mlp:hidden=4x2", s)->dim(), 5u * 4 + 4 + 4 * 2 + 2 + 2 * 3 + 3);
  EXPECT_EQ(make_problem("mlp:hidden=256x128", ProblemShape{784, 10})->dim(), 235146u);
  for (const char* spec : {"logistic:lambda=0.25", "softmax:lambda=0", "least-squares:lambda=1e-08",
                           "mlp:hidden=4x2,lambda=0.5"}) {
    const auto p = make_problem(spec, std::string(spec).starts_with("logistic") ? l : s);
    EXPECT_EQ(make_problem(p->spec(), std::string(spec).starts_with("logistic") ? l : s)->spec(),
              p->spec());
  }
  EXPECT_EQ(make_problem("mlp:hidden=4x2,lambda=0.5", s)->spec(), "mlp:hidden=4x2,lambda=0.5");
}

TEST(ProblemTest, FactoryErrors) {
  const Dataset s = softmax_data();
  EXPECT_THROW((void)make_problem("svm", s), InvalidArgument);
  EXPECT_THROW((void)make_problem("logistic", s), InvalidArgument);  // 3 classes
  EXPECT_THROW((void)make_problem("softmax:lamda=1", s), InvalidArgument);
  EXPECT_THROW((void)make_problem("softmax:lambda=-1", s), InvalidArgument);
  EXPECT_THROW((void)make_problem("mlp", s), InvalidArgument);  // hidden required
  EXPECT_THROW((void)make_problem("mlp:hidden=4x0", s), InvalidArgument);
  EXPECT_THROW((void)make_problem("mlp:hidden=4y2", s), InvalidArgument);
  EXPECT_THROW((void)make_problem("softmax", ProblemShape{5, 0}), InvalidArgument);
}

TEST(ProblemTest, ArgumentChecks) {
  const Dataset s = softmax_data();
  const auto p = make_problem("softmax", s);
  std::vector<float> x(p->dim());
  std::vector<float> g(p->dim());
  std::vector<float> short_x(p->dim() - 1);
  EXPECT_THROW((void)p->loss(short_x, Batch::all(s)), InvalidArgument);
  EXPECT_THROW((void)p->loss_and_gradient(x, Batch::all(s), short_x), InvalidArgument);
  const std::vector<std::size_t> outside = {0, 60};
  EXPECT_THROW((void)p->loss(x, Batch::of(s, outside)), InvalidArgument);
  EXPECT_THROW((void)p->loss(x, Batch::of(s, {})), InvalidArgument);
  const Dataset other =
      data::make_synthetic({.n = 10, .d = 4, .task = SyntheticTask::kSoftmax, .classes = 3});
  EXPECT_THROW((void)p->loss(x, Batch::all(other)), InvalidArgument);  // 4 features, not 5
  const Dataset regression =
      data::make_synthetic({.n = 10, .d = 5, .task = SyntheticTask::kLeastSquares});
  EXPECT_THROW((void)p->loss(x, Batch::all(regression)), InvalidArgument);  // no classes
  const auto ls = make_problem("least-squares", regression);
  std::vector<std::int32_t> out(10);
  std::vector<float> w(5);
  EXPECT_THROW(ls->predict(w, Batch::all(regression), out), InvalidArgument);
  const auto mlp = make_problem("mlp:hidden=3", s);
  std::vector<float> m(mlp->dim());
  EXPECT_THROW((void)mlp->loss(m, Batch::all(data::to_sparse(s))), InvalidArgument);
}

TEST(ProblemTest, SmoothnessConstants) {
  const Dataset l = logistic_data();
  const Eigen::MatrixXd a = l.dense().cast<double>();
  const double top = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(a.transpose() * a / 80.0)
                         .eigenvalues()
                         .maxCoeff();
  EXPECT_NEAR(gram_max_eigenvalue(Batch::all(l)), top, 1e-9 * top);
  EXPECT_NEAR(gram_max_eigenvalue(Batch::all(data::to_sparse(l))), top, 1e-9 * top);
  EXPECT_NEAR(*make_problem("least-squares:lambda=0.5", l)->smoothness(Batch::all(l)), top + 0.5,
              1e-9 * top);
  EXPECT_NEAR(*make_problem("logistic:lambda=0.5", l)->smoothness(Batch::all(l)), top / 4 + 0.5,
              1e-9 * top);
  // On a minibatch: the eigenvalue of that batch's rows.
  const std::vector<std::size_t> rows = {1, 5, 9, 33};
  Eigen::MatrixXd b(4, 6);
  for (int i = 0; i < 4; ++i)
    b.row(i) = a.row(static_cast<Eigen::Index>(rows[static_cast<std::size_t>(i)]));
  const double top_b = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(b.transpose() * b / 4.0)
                           .eigenvalues()
                           .maxCoeff();
  EXPECT_NEAR(gram_max_eigenvalue(Batch::of(l, rows)), top_b, 1e-9 * top_b);
  EXPECT_FALSE(make_problem("mlp:hidden=3", softmax_data())->smoothness(Batch::all(l)));
}

// ‖∇f(x) - ∇f(y)‖ ≤ L‖x - y‖ for random pairs: the constants are valid upper bounds.
TEST(ProblemTest, SmoothnessBoundsGradientChanges) {
  const Dataset l = logistic_data();
  const Dataset s = softmax_data();
  for (const auto& [spec, data] :
       {std::pair{"logistic:lambda=0.1", &l}, std::pair{"softmax:lambda=0.1", &s}}) {
    const auto p = make_problem(spec, *data);
    const double L = *p->smoothness(Batch::all(*data));
    std::vector<double> gx(p->dim());
    std::vector<double> gy(p->dim());
    for (std::uint64_t t = 0; t < 20; ++t) {
      const std::vector<double> x = random_vector(p->dim(), 2 * t);
      std::vector<double> y = random_vector(p->dim(), 2 * t + 1);
      for (double& v : y) v *= 0.1;  // near points, where curvature is largest
      (void)p->loss_and_gradient(x, Batch::all(*data), gx);
      (void)p->loss_and_gradient(y, Batch::all(*data), gy);
      double dg = 0;
      double dx = 0;
      for (std::size_t j = 0; j < x.size(); ++j) {
        dg += (gx[j] - gy[j]) * (gx[j] - gy[j]);
        dx += (x[j] - y[j]) * (x[j] - y[j]);
      }
      EXPECT_LE(std::sqrt(dg), L * std::sqrt(dx) * (1 + 1e-12)) << spec;
    }
  }
}

TEST(ProblemTest, PredictAndAccuracy) {
  const Dataset l = logistic_data();
  LogisticRegression p(6, 0.0);
  const std::vector<float> w = {1, 0, 0, 0, 0, 0};
  std::vector<std::int32_t> out(l.rows());
  p.predict(w, Batch::all(l), out);
  std::size_t agree = 0;
  for (std::size_t i = 0; i < l.rows(); ++i) {
    EXPECT_EQ(out[i], l.dense()(static_cast<Eigen::Index>(i), 0) > 0 ? 1 : 0);
    agree += out[i] == l.classes()[i] ? 1 : 0;
  }
  EXPECT_DOUBLE_EQ(p.accuracy(w, Batch::all(l)), static_cast<double>(agree) / 80.0);
  const std::vector<std::size_t> rows = {0, 1};
  EXPECT_THROW(p.predict(w, Batch::of(l, rows), out), InvalidArgument);  // out has 80 entries
}

TEST(ProblemTest, MlpInitAndLayout) {
  Mlp mlp(200, 10, {.hidden = {300, 50}, .lambda = 0});
  ASSERT_EQ(mlp.layers().size(), 3u);
  EXPECT_EQ(mlp.layers()[0].weights, 0u);
  EXPECT_EQ(mlp.layers()[0].bias, 60000u);
  EXPECT_EQ(mlp.layers()[1].weights, 60300u);
  EXPECT_EQ(mlp.layers()[2].bias, 60300u + 15000 + 50 + 500);
  EXPECT_EQ(mlp.dim(), 60300u + 15050 + 510);
  std::vector<float> x(mlp.dim());
  mlp.init(x, 3);
  std::vector<float> again(mlp.dim());
  mlp.init(again, 3);
  EXPECT_EQ(x, again);
  mlp.init(again, 4);
  EXPECT_NE(x, again);
  // He: sd sqrt(2/200) = 0.1 for the first layer (60000 draws: sd of the sample sd ≈ 0.1/√120000,
  // 3e-4); Glorot sqrt(2/60) for the output layer (500 draws, ±6 %); zero biases.
  const auto sd = [&](std::size_t begin, std::size_t count) {
    double sum = 0;
    for (std::size_t i = begin; i < begin + count; ++i) sum += double{x[i]} * x[i];
    return std::sqrt(sum / static_cast<double>(count));
  };
  EXPECT_NEAR(sd(0, 60000), 0.1, 0.002);
  EXPECT_NEAR(sd(mlp.layers()[2].weights, 500), std::sqrt(2.0 / 60), 0.2 * std::sqrt(2.0 / 60));
  for (std::size_t i = 60000; i < 60300; ++i) ASSERT_EQ(x[i], 0.0f);
}

// A handful of full-batch gradient steps make a small MLP fit separable-ish data: the float path
// trains.
TEST(ProblemTest, MlpLearnsAndClonesAreIndependent) {
  const Dataset s = softmax_data(300);
  Mlp mlp(5, 3, {.hidden = {16}, .lambda = 1e-4});
  std::vector<float> x(mlp.dim());
  mlp.init(x, 1);
  std::vector<float> g(mlp.dim());
  const double before = mlp.accuracy(x, Batch::all(s));
  const double loss0 = mlp.loss(x, Batch::all(s));
  for (int step = 0; step < 300; ++step) {
    (void)mlp.loss_and_gradient(x, Batch::all(s), g);
    for (std::size_t j = 0; j < x.size(); ++j) x[j] -= 0.5f * g[j];
  }
  EXPECT_LT(mlp.loss(x, Batch::all(s)), 0.5 * loss0);
  EXPECT_GT(mlp.accuracy(x, Batch::all(s)), 0.9);
  EXPECT_GT(mlp.accuracy(x, Batch::all(s)), before);
  // A clone computes the same values with its own buffers.
  const auto copy = mlp.clone();
  std::vector<float> g2(mlp.dim());
  const std::vector<std::size_t> rows = {4, 2, 99};
  EXPECT_EQ(copy->loss_and_gradient(x, Batch::of(s, rows), g2),
            mlp.loss_and_gradient(x, Batch::of(s, rows), g));
  EXPECT_EQ(g, g2);
}

}  // namespace
}  // namespace thinwire::problem
