#include "thinwire/data/synthetic.hpp"

#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::data {
namespace {

using Vector = Eigen::VectorXd;

// Sub-streams of the synthetic key, one per use.
enum Salt : std::uint64_t { kFeatures = 1, kReflections = 2, kModel = 3, kNoise = 4 };
constexpr int kReflectionCount = 3;

Vector normal_vector(RngStream rng, std::size_t d) {
  Vector v(static_cast<Eigen::Index>(d));
  for (Eigen::Index j = 0; j < v.size(); ++j) v[j] = rng.next_normal();
  return v;
}

// sqrt(wᵀ Σ w) with Σ = Q Λ Qᵀ, Q = H_0 H_1 H_2: ||Λ^{1/2} Qᵀ w||, Qᵀ w = H_2 H_1 H_0 w.
double signal_sd(Vector w, const std::vector<Vector>& reflections, const Vector& sqrt_lambda) {
  for (const Vector& v : reflections) w -= 2.0 * v.dot(w) * v;
  return w.cwiseProduct(sqrt_lambda).norm();
}

}  // namespace

Dataset make_synthetic(const SyntheticOptions& o) {
  if (o.n == 0 || o.d == 0) throw InvalidArgument("synthetic: n and d must be positive");
  // The features are one dense n x d float matrix: bounded so that a typo is an error, not an
  // attempt to allocate terabytes.
  constexpr std::size_t kMaxElements = std::size_t{1} << 28;
  if (o.n > kMaxElements || o.d > (std::size_t{1} << 24) || o.n * o.d > kMaxElements) {
    throw InvalidArgument("synthetic: n x d must be at most 2^28 values (d at most 2^24), got n=" +
                          std::to_string(o.n) + ", d=" + std::to_string(o.d));
  }
  if (!(o.cond >= 1.0) || !std::isfinite(o.cond)) {
    throw InvalidArgument("synthetic: cond must be a finite number >= 1, got " +
                          std::to_string(o.cond));
  }
  if (o.d == 1 && o.cond != 1.0) throw InvalidArgument("synthetic: d = 1 needs cond = 1");
  if (!(o.noise >= 0.0) || !std::isfinite(o.noise)) {
    throw InvalidArgument("synthetic: noise must be >= 0, got " + std::to_string(o.noise));
  }
  if (o.task == SyntheticTask::kSoftmax && (o.classes < 2 || o.classes > 1000000)) {
    throw InvalidArgument("synthetic: softmax needs classes in [2, 10^6], got " +
                          std::to_string(o.classes));
  }
  if (o.task == SyntheticTask::kLogistic && o.classes != 2) {
    throw InvalidArgument("synthetic: logistic has 2 classes, got classes=" +
                          std::to_string(o.classes));
  }
  const RngKey key = RngKey::make(o.seed, 0, 0, RngPurpose::kTest);
  const auto n = static_cast<Eigen::Index>(o.n);
  const auto d = static_cast<Eigen::Index>(o.d);

  // Λ^{1/2}: sqrt of eigenvalues log-spaced from 1 to 1/cond.
  Vector sqrt_lambda(d);
  for (Eigen::Index j = 0; j < d; ++j) {
    const double t = d == 1 ? 0.0 : static_cast<double>(j) / static_cast<double>(d - 1);
    sqrt_lambda[j] = std::pow(o.cond, -0.5 * t);
  }
  std::vector<Vector> reflections;
  if (o.rotate && d > 1) {
    for (int r = 0; r < kReflectionCount; ++r) {
      Vector v = normal_vector(RngStream(key.derive(kReflections).derive(r)), o.d);
      reflections.push_back(v / v.norm());
    }
  }

  // Planted models, one row per output (1 for logistic / least squares), signal sd 1 each.
  const std::size_t outputs = o.task == SyntheticTask::kSoftmax ? o.classes : 1;
  Eigen::MatrixXd w(static_cast<Eigen::Index>(outputs), d);
  for (std::size_t k = 0; k < outputs; ++k) {
    Vector wk = normal_vector(RngStream(key.derive(kModel).derive(k)), o.d);
    wk /= signal_sd(wk, reflections, sqrt_lambda);
    w.row(static_cast<Eigen::Index>(k)) = wk.transpose();
  }

  // Row by row in double (memory stays one float matrix): x = H_0 H_1 H_2 Λ^{1/2} z, scores
  // W x + noise. Each row has its own streams, so rows do not depend on each other.
  DenseMatrix features(n, d);
  Eigen::MatrixXd scores(n, static_cast<Eigen::Index>(outputs));
  Vector x(d);
  for (Eigen::Index i = 0; i < n; ++i) {
    RngStream rng(key.derive(kFeatures).derive(static_cast<std::uint64_t>(i)));
    for (Eigen::Index j = 0; j < d; ++j) x[j] = rng.next_normal() * sqrt_lambda[j];
    for (auto it = reflections.rbegin(); it != reflections.rend(); ++it) {
      x -= 2.0 * it->dot(x) * *it;
    }
    features.row(i) = x.transpose().cast<float>();
    scores.row(i) = (w * x).transpose();
    RngStream noise(key.derive(kNoise).derive(static_cast<std::uint64_t>(i)));
    for (Eigen::Index k = 0; k < scores.cols(); ++k) scores(i, k) += o.noise * noise.next_normal();
  }

  std::vector<float> targets(o.n);
  std::vector<std::int32_t> classes;
  std::vector<double> class_values;
  if (o.task == SyntheticTask::kLeastSquares) {
    for (std::size_t i = 0; i < o.n; ++i) {
      targets[i] = static_cast<float>(scores(static_cast<Eigen::Index>(i), 0));
    }
  } else if (o.task == SyntheticTask::kLogistic) {
    classes.resize(o.n);
    class_values = {-1.0, 1.0};
    for (std::size_t i = 0; i < o.n; ++i) {
      const bool positive = scores(static_cast<Eigen::Index>(i), 0) >= 0.0;
      classes[i] = positive ? 1 : 0;
      targets[i] = positive ? 1.0f : -1.0f;
    }
  } else {
    classes.resize(o.n);
    class_values.resize(o.classes);
    for (std::size_t k = 0; k < o.classes; ++k) class_values[k] = static_cast<double>(k);
    for (std::size_t i = 0; i < o.n; ++i) {
      Eigen::Index best = 0;
      scores.row(static_cast<Eigen::Index>(i)).maxCoeff(&best);
      classes[i] = static_cast<std::int32_t>(best);
      targets[i] = static_cast<float>(best);
    }
  }
  return Dataset(std::move(features), std::move(targets), std::move(classes),
                 std::move(class_values), "synthetic");
}

SyntheticOptions synthetic_options(Spec& spec) {
  SyntheticOptions o;
  o.n = static_cast<std::size_t>(spec.get_uint("n", o.n));
  o.d = static_cast<std::size_t>(spec.get_uint("d", o.d));
  o.cond = spec.get_double("cond", o.cond);
  const std::string task =
      spec.get_choice("task", "logistic", {"logistic", "least-squares", "softmax"});
  o.task = task == "logistic"        ? SyntheticTask::kLogistic
           : task == "least-squares" ? SyntheticTask::kLeastSquares
                                     : SyntheticTask::kSoftmax;
  o.classes = static_cast<std::size_t>(
      spec.get_uint("classes", o.task == SyntheticTask::kSoftmax ? 10 : 2));
  o.noise = spec.get_double("noise", o.noise);
  o.seed = spec.get_uint("seed", o.seed);
  o.rotate = spec.get_bool("rotate", o.rotate);
  return o;
}

}  // namespace thinwire::data
