#include "thinwire/problem/linear.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "row_gather.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::problem {
namespace {

using detail::eidx;
using detail::RowMatrix;
using detail::Vector;

double checked_lambda(double lambda, const char* what) {
  if (!(lambda >= 0.0) || !std::isfinite(lambda)) {
    throw InvalidArgument(std::string(what) + ": lambda must be >= 0, got " +
                          std::to_string(lambda));
  }
  return lambda;
}

std::size_t checked_features(std::size_t features, const char* what) {
  if (features == 0) throw InvalidArgument(std::string(what) + ": data has no features");
  return features;
}

std::string spec_with_lambda(const char* name, double lambda) {
  std::ostringstream os;
  os.precision(std::numeric_limits<double>::max_digits10);
  os << name << ":lambda=" << lambda;
  return os.str();
}

// log(1 + exp(t)) without overflow: max(t, 0) + log1p(exp(-|t|)).
double softplus(double t) { return std::max(t, 0.0) + std::log1p(std::exp(-std::fabs(t))); }

// The ±1 label of a binary classification row (class 1 = +1).
template <class T>
T sign_label(const Batch& batch, std::size_t i) {
  return batch.data().classes()[batch.row(i)] == 1 ? T(1) : T(-1);
}

}  // namespace

double gram_max_eigenvalue(const Batch& batch) {
  batch.validate("smoothness");
  constexpr int kMaxIterations = 2000;
  constexpr double kTolerance = 1e-10;
  const auto d = eidx(batch.data().cols());
  detail::RowGather<double> gather;
  // A fixed pseudo-random start: almost surely not orthogonal to the top eigenvector.
  Vector<double> v(d);
  RngStream rng(RngKey::make(0, 0, 0, RngPurpose::kInit).derive(0x6a09e667f3bcc908ULL));
  for (Eigen::Index j = 0; j < d; ++j) v[j] = rng.next_normal();
  v /= v.norm();
  Vector<double> w(d);
  Vector<double> u;
  double estimate = 0;
  const double n = static_cast<double>(batch.size());
  for (int it = 0; it < kMaxIterations; ++it) {
    // w = X_Bᵀ X_B v / n, chunk by chunk (rows converted to double as they are read).
    w.setZero();
    detail::for_each_chunk(batch, gather, [&](const auto& x, std::size_t, std::size_t) {
      u.noalias() = x * v;
      w.noalias() += x.transpose() * u;
    });
    w /= n;
    const double rayleigh = v.dot(w);  // ‖v‖ = 1
    const double norm = w.norm();
    if (norm == 0.0) return 0.0;
    v = w / norm;
    if (it > 0 && std::fabs(rayleigh - estimate) <= kTolerance * std::fabs(rayleigh)) {
      return rayleigh;
    }
    estimate = rayleigh;
  }
  return estimate;
}

// ---------------------------------------------------------------------------------------------
// Logistic regression

LogisticRegression::LogisticRegression(std::size_t features, double lambda)
    : Problem(ProblemShape{.features = checked_features(features, "logistic"), .classes = 2},
              features),
      lambda_(checked_lambda(lambda, "logistic")) {}

std::string LogisticRegression::spec() const { return spec_with_lambda("logistic", lambda_); }

std::unique_ptr<Problem> LogisticRegression::clone() const {
  return std::make_unique<LogisticRegression>(*this);
}

std::optional<double> LogisticRegression::smoothness(const Batch& batch) const {
  return gram_max_eigenvalue(batch) / 4.0 + lambda_;
}

template <class T>
double LogisticRegression::eval(std::span<const T> params, const Batch& batch, T* grad) {
  const Eigen::Map<const Vector<T>> w(params.data(), eidx(params.size()));
  Vector<T> z;
  double loss = 0;
  std::optional<Eigen::Map<Vector<T>>> g;
  if (grad != nullptr) {
    g.emplace(grad, eidx(params.size()));
    g->setZero();
  }
  detail::for_each_chunk(batch, scratch().get<T>(),
                         [&](const auto& x, std::size_t begin, std::size_t count) {
                           z.noalias() = x * w;
                           for (std::size_t i = 0; i < count; ++i) {
                             const T y = sign_label<T>(batch, begin + i);
                             const T margin = y * z[eidx(i)];
                             loss += softplus(-static_cast<double>(margin));
                             // dℓ/dz = -y·σ(-y z) = -y / (1 + exp(y z)); exp overflow to inf gives
                             // the right limit 0.
                             z[eidx(i)] = -y / (T(1) + std::exp(margin));
                           }
                           if (g) g->noalias() += x.transpose() * z;
                         });
  const double n = static_cast<double>(batch.size());
  if (g) *g = *g / static_cast<T>(n) + static_cast<T>(lambda_) * w;
  return loss / n + 0.5 * lambda_ * w.template cast<double>().squaredNorm();
}

double LogisticRegression::evaluate_f32(std::span<const float> params, const Batch& batch,
                                        float* grad) {
  return eval<float>(params, batch, grad);
}

double LogisticRegression::evaluate_f64(std::span<const double> params, const Batch& batch,
                                        double* grad) {
  return eval<double>(params, batch, grad);
}

void LogisticRegression::predict_classes(std::span<const float> params, const Batch& batch,
                                         std::span<std::int32_t> out) {
  const Eigen::Map<const Vector<float>> w(params.data(), eidx(params.size()));
  Vector<float> z;
  detail::for_each_chunk(batch, scratch().f32,
                         [&](const auto& x, std::size_t begin, std::size_t count) {
                           z.noalias() = x * w;
                           for (std::size_t i = 0; i < count; ++i)
                             out[begin + i] = z[eidx(i)] > 0.0f ? 1 : 0;
                         });
}

// ---------------------------------------------------------------------------------------------
// Softmax regression

SoftmaxRegression::SoftmaxRegression(std::size_t features, std::size_t classes, double lambda)
    : Problem(ProblemShape{.features = checked_features(features, "softmax"), .classes = classes},
              features * classes),
      lambda_(checked_lambda(lambda, "softmax")) {
  if (classes < 2) {
    throw InvalidArgument("softmax: needs data with at least 2 classes, got " +
                          std::to_string(classes));
  }
}

std::string SoftmaxRegression::spec() const { return spec_with_lambda("softmax", lambda_); }

std::unique_ptr<Problem> SoftmaxRegression::clone() const {
  return std::make_unique<SoftmaxRegression>(*this);
}

std::optional<double> SoftmaxRegression::smoothness(const Batch& batch) const {
  return gram_max_eigenvalue(batch) / 2.0 + lambda_;
}

template <class T>
double SoftmaxRegression::eval(std::span<const T> params, const Batch& batch, T* grad) {
  const auto k = eidx(shape().classes);
  const auto d = eidx(shape().features);
  const Eigen::Map<const RowMatrix<T>> w(params.data(), k, d);
  RowMatrix<T> z;
  Vector<T> row_max;
  Vector<T> row_sum;
  double loss = 0;
  std::optional<Eigen::Map<RowMatrix<T>>> g;
  if (grad != nullptr) {
    g.emplace(grad, k, d);
    g->setZero();
  }
  const auto classes = batch.data().classes();
  detail::for_each_chunk(batch, scratch().get<T>(),
                         [&](const auto& x, std::size_t begin, std::size_t count) {
                           z.noalias() = x * w.transpose();  // count x K logits
                           // Stable softmax: subtract the row maximum before exp.
                           row_max = z.rowwise().maxCoeff();
                           z.colwise() -= row_max;
                           // logsumexp(z) - z_y = log Σ exp(z - max) - (z_y - max); the second term
                           // is read before exp so that a very negative z_y - max cannot underflow
                           // to log(0).
                           for (std::size_t i = 0; i < count; ++i) {
                             loss -= static_cast<double>(z(eidx(i), classes[batch.row(begin + i)]));
                           }
                           z = z.array().exp().matrix();
                           row_sum = z.rowwise().sum();
                           loss += row_sum.template cast<double>().array().log().sum();
                           if (!g) return;
                           z.array().colwise() /= row_sum.array();  // p
                           for (std::size_t i = 0; i < count; ++i) {
                             z(eidx(i), classes[batch.row(begin + i)]) -= T(1);  // p - e_y
                           }
                           g->noalias() += z.transpose() * x;
                         });
  const double n = static_cast<double>(batch.size());
  if (g) *g = *g / static_cast<T>(n) + static_cast<T>(lambda_) * w;
  return loss / n + 0.5 * lambda_ * w.template cast<double>().squaredNorm();
}

double SoftmaxRegression::evaluate_f32(std::span<const float> params, const Batch& batch,
                                       float* grad) {
  return eval<float>(params, batch, grad);
}

double SoftmaxRegression::evaluate_f64(std::span<const double> params, const Batch& batch,
                                       double* grad) {
  return eval<double>(params, batch, grad);
}

void SoftmaxRegression::predict_classes(std::span<const float> params, const Batch& batch,
                                        std::span<std::int32_t> out) {
  const Eigen::Map<const RowMatrix<float>> w(params.data(), eidx(shape().classes),
                                             eidx(shape().features));
  RowMatrix<float> z;
  detail::for_each_chunk(batch, scratch().f32,
                         [&](const auto& x, std::size_t begin, std::size_t count) {
                           z.noalias() = x * w.transpose();
                           for (std::size_t i = 0; i < count; ++i) {
                             Eigen::Index best = 0;
                             z.row(eidx(i)).maxCoeff(&best);
                             out[begin + i] = static_cast<std::int32_t>(best);
                           }
                         });
}

// ---------------------------------------------------------------------------------------------
// Least squares

LeastSquares::LeastSquares(std::size_t features, double lambda)
    : Problem(ProblemShape{.features = checked_features(features, "least-squares"), .classes = 0},
              features),
      lambda_(checked_lambda(lambda, "least-squares")) {}

std::string LeastSquares::spec() const { return spec_with_lambda("least-squares", lambda_); }

std::unique_ptr<Problem> LeastSquares::clone() const {
  return std::make_unique<LeastSquares>(*this);
}

std::optional<double> LeastSquares::smoothness(const Batch& batch) const {
  return gram_max_eigenvalue(batch) + lambda_;
}

template <class T>
double LeastSquares::eval(std::span<const T> params, const Batch& batch, T* grad) {
  const Eigen::Map<const Vector<T>> w(params.data(), eidx(params.size()));
  Vector<T> r;
  double loss = 0;
  std::optional<Eigen::Map<Vector<T>>> g;
  if (grad != nullptr) {
    g.emplace(grad, eidx(params.size()));
    g->setZero();
  }
  const auto targets = batch.data().targets();
  detail::for_each_chunk(batch, scratch().get<T>(),
                         [&](const auto& x, std::size_t begin, std::size_t count) {
                           r.noalias() = x * w;
                           for (std::size_t i = 0; i < count; ++i) {
                             r[eidx(i)] -= static_cast<T>(targets[batch.row(begin + i)]);
                           }
                           loss += 0.5 * r.template cast<double>().squaredNorm();
                           if (g) g->noalias() += x.transpose() * r;
                         });
  const double n = static_cast<double>(batch.size());
  if (g) *g = *g / static_cast<T>(n) + static_cast<T>(lambda_) * w;
  return loss / n + 0.5 * lambda_ * w.template cast<double>().squaredNorm();
}

double LeastSquares::evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) {
  return eval<float>(params, batch, grad);
}

double LeastSquares::evaluate_f64(std::span<const double> params, const Batch& batch,
                                  double* grad) {
  return eval<double>(params, batch, grad);
}

}  // namespace thinwire::problem
