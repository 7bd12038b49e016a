// Gradients against central finite differences, in the double-precision path, for every problem
// on small random data; and the float path against the double path.
//
// Tolerance of the finite-difference check: with step h the central difference has truncation
// error h²/6·|f'''| and rounding error ~ε·|f|/h. For h = 1e-5, |f| ~ 1 and |f'''| ≲ 100 on
// these problems (features of unit scale), that is ≤ 2e-9 + 2e-11; we allow 1e-7 + 1e-6·|g|,
// far below the O(|g|) error any wrong term would make. ReLU kinks: a pre-activation within
// h·‖a‖ ≈ 1e-5 of zero would break the check; with fixed seeds that does not happen here.
#include <gtest/gtest.h>

#include <Eigen/Core>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "thinwire/core/rng.hpp"
#include "thinwire/data/synthetic.hpp"
#include "thinwire/problem/linear.hpp"
#include "thinwire/problem/mlp.hpp"
#include "thinwire/problem/problem.hpp"

namespace thinwire::problem {
namespace {

using data::SyntheticOptions;
using data::SyntheticTask;

// Zeroes about half of the entries (deterministically) and stores the result sparse, so sparse
// kernels see rows of different lengths, including empty ones.
Dataset sparsified(const Dataset& d) {
  data::DenseMatrix x = d.dense();
  const RngKey key = RngKey::make(7, 0, 0, RngPurpose::kTest);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      if (key.uniform(static_cast<std::uint64_t>(i * x.cols() + j)) < 0.5f || i == 3) x(i, j) = 0;
    }
  }
  return data::to_sparse(Dataset(x, {d.targets().begin(), d.targets().end()},
                                 {d.classes().begin(), d.classes().end()},
                                 {d.class_values().begin(), d.class_values().end()}, "sparse"));
}

std::vector<double> random_params(std::size_t n, std::uint64_t seed, double scale) {
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kTest));
  std::vector<double> x(n);
  for (double& v : x) v = scale * rng.next_normal();
  return x;
}

struct Case {
  std::string spec;
  Dataset data;
};

std::vector<Case> cases() {
  const Dataset logistic = data::make_synthetic(
      {.n = 40, .d = 6, .cond = 5, .task = SyntheticTask::kLogistic, .noise = 0.5, .seed = 1});
  const Dataset softmax = data::make_synthetic({.n = 40,
                                                .d = 5,
                                                .cond = 5,
                                                .task = SyntheticTask::kSoftmax,
                                                .classes = 3,
                                                .noise = 0.5,
                                                .seed = 2});
  const Dataset ls = data::make_synthetic(
      {.n = 40, .d = 6, .cond = 5, .task = SyntheticTask::kLeastSquares, .seed = 3});
  return {
      {"logistic:lambda=0.1", logistic},       {"logistic:lambda=0", sparsified(logistic)},
      {"softmax:lambda=0.05", softmax},        {"softmax:lambda=0", sparsified(softmax)},
      {"least-squares:lambda=0.01", ls},       {"least-squares:lambda=0", sparsified(ls)},
      {"mlp:hidden=7x4,lambda=0.01", softmax}, {"mlp:hidden=3", softmax},
  };
}

void expect_gradient_matches_differences(Problem& p, const Batch& batch,
                                         const std::vector<double>& x0, const std::string& what) {
  std::vector<double> g(p.dim());
  const double f = p.loss_and_gradient(x0, batch, g);
  EXPECT_NEAR(f, p.loss(x0, batch), 1e-14 * std::fabs(f)) << what;
  constexpr double h = 1e-5;
  std::vector<double> x = x0;
  for (std::size_t j = 0; j < x.size(); ++j) {
    x[j] = x0[j] + h;
    const double up = p.loss(x, batch);
    x[j] = x0[j] - h;
    const double down = p.loss(x, batch);
    x[j] = x0[j];
    const double fd = (up - down) / (2 * h);
    ASSERT_NEAR(g[j], fd, 1e-7 + 1e-6 * std::fabs(fd)) << what << " coordinate " << j;
  }
}

TEST(GradientTest, MatchesCentralDifferencesFullBatchAndMinibatch) {
  for (const Case& c : cases()) {
    const auto p = make_problem(c.spec, c.data);
    std::vector<float> init(p->dim());
    p->init(init, 5);
    // MLP: start from its own initialization (kinks away from zero); linear: a random point.
    std::vector<double> x0 = c.spec.starts_with("mlp")
                                 ? std::vector<double>(init.begin(), init.end())
                                 : random_params(p->dim(), 11, 0.5);
    expect_gradient_matches_differences(*p, Batch::all(c.data), x0, c.spec + " all");
    const std::vector<std::size_t> rows = {3, 17, 0, 17, 39, 8};  // repeats allowed
    expect_gradient_matches_differences(*p, Batch::of(c.data, rows), x0, c.spec + " rows");
  }
}

TEST(GradientTest, FloatPathAgreesWithDoublePath) {
  for (const Case& c : cases()) {
    const auto p = make_problem(c.spec, c.data);
    std::vector<float> xf(p->dim());
    p->init(xf, 5);
    if (!c.spec.starts_with("mlp")) {
      const std::vector<double> r = random_params(p->dim(), 12, 0.5);
      xf.assign(r.begin(), r.end());
    }
    const std::vector<double> xd(xf.begin(), xf.end());
    std::vector<float> gf(p->dim());
    std::vector<double> gd(p->dim());
    const double ff = p->loss_and_gradient(xf, Batch::all(c.data), gf);
    const double fd = p->loss_and_gradient(xd, Batch::all(c.data), gd);
    // Float evaluation: relative error ~ a few ε_float = 1e-7 per product, summed over 40 rows.
    EXPECT_NEAR(ff, fd, 1e-5 * std::fabs(fd)) << c.spec;
    const Eigen::VectorXd diff =
        Eigen::Map<const Eigen::VectorXf>(gf.data(), static_cast<Eigen::Index>(gf.size()))
            .cast<double>() -
        Eigen::Map<const Eigen::VectorXd>(gd.data(), static_cast<Eigen::Index>(gd.size()));
    const double norm =
        Eigen::Map<const Eigen::VectorXd>(gd.data(), static_cast<Eigen::Index>(gd.size())).norm();
    EXPECT_LT(diff.norm(), 1e-5 * norm + 1e-7) << c.spec;
  }
}

TEST(GradientTest, DenseAndSparseStorageGiveTheSameResults) {
  for (const Case& c : cases()) {
    if (c.data.is_sparse() || c.spec.starts_with("mlp")) continue;
    const Dataset sparse = data::to_sparse(c.data);
    const auto p = make_problem(c.spec, c.data);
    const std::vector<double> x = random_params(p->dim(), 13, 0.5);
    std::vector<double> g_dense(p->dim());
    std::vector<double> g_sparse(p->dim());
    const std::vector<std::size_t> rows = {5, 1, 30};
    for (const bool all : {true, false}) {
      const double a =
          p->loss_and_gradient(x, all ? Batch::all(c.data) : Batch::of(c.data, rows), g_dense);
      const double b =
          p->loss_and_gradient(x, all ? Batch::all(sparse) : Batch::of(sparse, rows), g_sparse);
      EXPECT_NEAR(a, b, 1e-12) << c.spec;
      for (std::size_t j = 0; j < x.size(); ++j) EXPECT_NEAR(g_dense[j], g_sparse[j], 1e-12);
    }
  }
}

// Batches above the 4096-row chunk size: float full-batch views into the data set (dense and
// sparse, at row offsets), float gathered rows and the double path all agree with a direct
// double-precision computation of the least-squares gradient.
TEST(GradientTest, LargeBatchesAreChunkedCorrectly) {
  const Dataset dense = data::make_synthetic(
      {.n = 9000, .d = 7, .cond = 3, .task = SyntheticTask::kLeastSquares, .seed = 4});
  const Dataset sparse = sparsified(dense);
  for (const Dataset* d : {&dense, &sparse}) {
    LeastSquares p(7, 0.1);
    const std::vector<double> x = random_params(7, 14, 1.0);
    const Eigen::MatrixXd a = data::to_dense(*d).dense().cast<double>();
    Eigen::VectorXd y(a.rows());
    for (Eigen::Index i = 0; i < y.size(); ++i) y[i] = d->targets()[static_cast<std::size_t>(i)];
    const Eigen::Map<const Eigen::VectorXd> w(x.data(), 7);
    const Eigen::VectorXd r = a * w - y;
    const double n = static_cast<double>(a.rows());
    const double f_ref = 0.5 * r.squaredNorm() / n + 0.05 * w.squaredNorm();
    const Eigen::VectorXd g_ref = a.transpose() * r / n + 0.1 * w;

    std::vector<double> gd(7);
    EXPECT_NEAR(p.loss_and_gradient(x, Batch::all(*d), gd), f_ref, 1e-12 * f_ref);
    for (int j = 0; j < 7; ++j) EXPECT_NEAR(gd[static_cast<std::size_t>(j)], g_ref[j], 1e-12);

    const std::vector<float> xf(x.begin(), x.end());
    std::vector<float> gf(7);
    std::vector<std::size_t> every(d->rows());
    for (std::size_t i = 0; i < every.size(); ++i) every[i] = i;
    for (const bool all : {true, false}) {
      const Batch batch = all ? Batch::all(*d) : Batch::of(*d, every);
      // Float sums over 9000 rows: relative error ~1e-6.
      EXPECT_NEAR(p.loss_and_gradient(xf, batch, gf), f_ref, 1e-5 * f_ref);
      for (int j = 0; j < 7; ++j) {
        EXPECT_NEAR(gf[static_cast<std::size_t>(j)], g_ref[j], 1e-4 * g_ref.norm());
      }
    }
  }
}

}  // namespace
}  // namespace thinwire::problem
