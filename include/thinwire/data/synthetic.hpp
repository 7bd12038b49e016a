// Synthetic data with a known spectrum and a planted model, for experiments where the condition
// number must be controlled (seed 000's logistic-regression experiments) and for tests.
//
// Features: x = Q · Λ^{1/2} · z with z ~ N(0, I_d), Λ = diag(λ_0..λ_{d-1}) log-spaced from 1 down
// to 1/cond (λ_j = cond^{-j/(d-1)}), and Q orthogonal: the population covariance E[x xᵀ] = Q Λ Qᵀ
// has condition number exactly `cond`. With rotate, Q is a product of three Householder
// reflections I - 2vvᵀ with random unit v (O(d) per row, unlike a dense random rotation, and
// enough to make the covariance non-diagonal); without it Q = I.
//
// Planted model (w* ~ N(0, I), scaled so that the signal x·w* has variance 1, i.e. w*ᵀΣw* = 1):
//   least-squares: y = x·w* + noise·ε                         (targets only)
//   logistic:      y = sign(x·w* + noise·ε) ∈ {-1, +1}        (2 classes, class 1 = +1)
//   softmax:       y = argmax_k (W* x)_k + noise·ε_k           (K classes, one w* per class)
// with ε ~ N(0, 1). Everything is drawn from counter-based streams keyed by (seed,
// RngPurpose::kTest): the same options give the same data on every machine and thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "thinwire/core/spec.hpp"
#include "thinwire/data/dataset.hpp"

namespace thinwire::data {

enum class SyntheticTask { kLogistic, kLeastSquares, kSoftmax };

struct SyntheticOptions {
  std::size_t n = 1000;  // rows
  std::size_t d = 20;    // features
  double cond = 1.0;     // condition number of the feature covariance, >= 1
  SyntheticTask task = SyntheticTask::kLogistic;
  std::size_t classes = 2;  // softmax only (>= 2); logistic is always 2
  double noise = 0.1;       // standard deviation of the label noise ε (signal has sd 1)
  std::uint64_t seed = 0;
  bool rotate = true;
};

// Throws InvalidArgument for n == 0, d == 0, cond < 1 (or cond != 1 with d == 1), noise < 0,
// classes < 2 for softmax, classes != 2 for logistic.
[[nodiscard]] Dataset make_synthetic(const SyntheticOptions& options);

// Reads "n, d, cond, task (logistic|least-squares|softmax), classes, noise, seed, rotate" from a
// spec (the caller calls spec.finish()).
[[nodiscard]] SyntheticOptions synthetic_options(Spec& spec);

}  // namespace thinwire::data
