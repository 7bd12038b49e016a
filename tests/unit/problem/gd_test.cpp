// Full-batch gradient descent with step 1/L reaches ‖∇f‖ < 1e-6 on L2-regularized logistic
// regression and on least squares: the problem's loss, gradient and smoothness constant agree.
//
// Rate: for μ-strongly convex, L-smooth f, GD with step 1/L gives
//   f(x_k) - f* ≤ (1 - μ/L)^k (f(x_0) - f*),  ‖∇f‖² ≤ 2L (f - f*),  f(x_0) - f* ≤ ‖∇f(x_0)‖²/(2μ)
// so ‖∇f(x_k)‖² ≤ κ (1 - 1/κ)^k ‖∇f(x_0)‖² with κ = L/μ, and k ≥ κ·ln(κ‖∇f(x_0)‖²/ε²) steps
// suffice. The tests assert that bound (a wrong L or a wrong gradient breaks it), and that every
// step decreases f (guaranteed for step 1/L by the descent lemma).
//
// Both paths run. The double path is the reference; float parameters stall near
// ‖∇f‖ ≈ L·ε_float·‖x*‖ (see problem.hpp), which on these small well-scaled problems (L < 2,
// ‖x*‖ ~ 1) is ~1e-8, measured 1.3e-8 (logistic) and 6.5e-8 (least squares): well below 1e-6.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <span>
#include <type_traits>
#include <vector>

#include "thinwire/data/synthetic.hpp"
#include "thinwire/problem/linear.hpp"

namespace thinwire::problem {
namespace {

using data::SyntheticTask;

template <class T>
double norm(const std::vector<T>& v) {
  double sum = 0;
  for (T x : v) sum += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(sum);
}

// Runs GD with step 1/L from x = 0 until ‖∇f‖ < eps; returns the number of steps (or max_steps).
// Every step must decrease f, up to the evaluation's rounding (relative 1e-15 in double, 1e-6 in
// float: a float loss is a double sum of float terms).
template <class T>
int gradient_descent(Problem& p, const Batch& batch, double L, double eps, int max_steps,
                     std::vector<T>& x, double& g0_norm) {
  const double slack = std::is_same_v<T, float> ? 1e-6 : 1e-15;
  std::vector<T> g(p.dim());
  x.assign(p.dim(), T(0));
  double f = p.loss_and_gradient(std::span<const T>(x), batch, std::span<T>(g));
  g0_norm = norm(g);
  for (int k = 0; k < max_steps; ++k) {
    if (norm(g) < eps) return k;
    for (std::size_t j = 0; j < x.size(); ++j) x[j] -= static_cast<T>(g[j] / L);
    const double next = p.loss_and_gradient(std::span<const T>(x), batch, std::span<T>(g));
    EXPECT_LE(next, f + slack * std::fabs(f)) << "step " << k << " increased f";
    f = next;
  }
  return max_steps;
}

int steps_bound(double kappa, double g0_norm, double eps) {
  return static_cast<int>(std::ceil(kappa * std::log(kappa * g0_norm * g0_norm / (eps * eps)))) + 1;
}

TEST(GdTest, LogisticRegressionReachesGradientNorm1e6) {
  const Dataset d = data::make_synthetic(
      {.n = 300, .d = 10, .cond = 10, .task = SyntheticTask::kLogistic, .noise = 0.3, .seed = 1});
  for (const Dataset& data : {d, data::to_sparse(d)}) {
    const double lambda = 0.05;
    LogisticRegression p(10, lambda);
    const double L = *p.smoothness(Batch::all(data));
    std::vector<double> x;
    double g0 = 0;
    const int steps = gradient_descent(p, Batch::all(data), L, 1e-6, 100000, x, g0);
    // μ ≥ λ (the loss part is convex), so κ ≤ L/λ.
    const int bound = steps_bound(L / lambda, g0, 1e-6);
    EXPECT_LE(steps, bound) << "L = " << L;
    std::vector<double> g(10);
    (void)p.loss_and_gradient(x, Batch::all(data), g);
    EXPECT_LT(norm(g), 1e-6);
    std::vector<float> xf;
    EXPECT_LE(gradient_descent(p, Batch::all(data), L, 1e-6, 100000, xf, g0), bound) << "float";
    // The solution classifies the (noisy, 0.3) training data well.
    EXPECT_GT(p.accuracy(xf, Batch::all(data)), 0.85);
  }
}

TEST(GdTest, LeastSquaresReachesGradientNorm1e6) {
  const Dataset d = data::make_synthetic({.n = 300,
                                          .d = 8,
                                          .cond = 20,
                                          .task = SyntheticTask::kLeastSquares,
                                          .noise = 0.1,
                                          .seed = 2});
  const double lambda = 0.01;
  LeastSquares p(8, lambda);
  const double L = *p.smoothness(Batch::all(d));
  // μ = λ_min(XᵀX/n) + λ exactly (the Hessian is constant).
  const Eigen::MatrixXd a = d.dense().cast<double>();
  const Eigen::VectorXd ev =
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(a.transpose() * a / 300.0).eigenvalues();
  EXPECT_NEAR(L, ev.maxCoeff() + lambda, 1e-9 * L);
  const double mu = ev.minCoeff() + lambda;
  std::vector<double> x;
  double g0 = 0;
  const int steps = gradient_descent(p, Batch::all(d), L, 1e-6, 100000, x, g0);
  const int bound = steps_bound(L / mu, g0, 1e-6);
  EXPECT_LE(steps, bound) << "L = " << L << ", mu = " << mu;
  std::vector<float> xf;
  EXPECT_LE(gradient_descent(p, Batch::all(d), L, 1e-6, 100000, xf, g0), bound) << "float";
  // The minimizer solves (XᵀX/n + λI) w = Xᵀy/n.
  Eigen::VectorXd y(300);
  for (Eigen::Index i = 0; i < 300; ++i) y[i] = d.targets()[static_cast<std::size_t>(i)];
  const Eigen::VectorXd w_star =
      (a.transpose() * a / 300.0 + lambda * Eigen::MatrixXd::Identity(8, 8))
          .ldlt()
          .solve(a.transpose() * y / 300.0);
  // ‖x - x*‖ ≤ ‖∇f(x)‖/μ < 1e-6/μ.
  const Eigen::Map<const Eigen::VectorXd> xm(x.data(), 8);
  EXPECT_LT((xm - w_star).norm(), 1e-6 / mu);
}

}  // namespace
}  // namespace thinwire::problem
