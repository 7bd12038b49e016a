// Linear models: logistic, softmax and least-squares regression, on dense or sparse features.
// No intercept term: append a constant feature to the data for one. Parameters are laid out like
// PyTorch's nn.Linear(bias=False) weight: row-major (outputs x features).
//
// With a = a_i (a row of X), n = |B| and λ the L2 weight:
//   logistic       x = w ∈ R^d, y ∈ {-1, +1} (class 1 = +1, class 0 = -1)
//                  f = (1/n) Σ log(1 + exp(-y·aᵀw)) + λ/2·‖w‖²
//                  ∇f = -(1/n) Σ y·σ(-y·aᵀw)·a + λw
//                  L = λ_max(XᵀX/n)/4 + λ  (σ' ≤ 1/4)
//   softmax        x = W ∈ R^{K x d}, z = W a, p = softmax(z), y a class id
//                  f = (1/n) Σ (logsumexp(z) - z_y) + λ/2·‖W‖²_F
//                  ∇f = (1/n) Σ (p - e_y) aᵀ + λW
//                  L = λ_max(XᵀX/n)/2 + λ  (the log-sum-exp Hessian diag(p) - ppᵀ ≼ I/2)
//   least-squares  x = w ∈ R^d, y the targets
//                  f = (1/2n)·‖Xw - y‖² + λ/2·‖w‖²,  ∇f = Xᵀ(Xw - y)/n + λw
//                  L = λ_max(XᵀX/n) + λ  (exact: f is quadratic with that Hessian)
// λ_max(XᵀX/n) over the batch's rows comes from gram_max_eigenvalue().
#pragma once

#include "thinwire/problem/problem.hpp"

namespace thinwire::problem {

// λ_max(X_Bᵀ X_B / |B|) for the batch's rows, by power iteration in double precision on the
// Rayleigh quotient, until it changes by less than 1e-10 (relative) or after 2000 iterations. The
// iterates increase towards λ_max, so a slow convergence (tiny eigengap) returns a slight
// underestimate whose Rayleigh quotient is still within the gap of λ_max.
[[nodiscard]] double gram_max_eigenvalue(const Batch& batch);

class LogisticRegression final : public Problem {
 public:
  // Throws InvalidArgument for lambda < 0 or features == 0.
  LogisticRegression(std::size_t features, double lambda);

  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] std::unique_ptr<Problem> clone() const override;
  [[nodiscard]] bool is_classifier() const noexcept override { return true; }
  [[nodiscard]] std::optional<double> smoothness(const Batch& batch) const override;
  [[nodiscard]] double lambda() const noexcept { return lambda_; }

 private:
  template <class T>
  double eval(std::span<const T> params, const Batch& batch, T* grad);
  double evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) override;
  double evaluate_f64(std::span<const double> params, const Batch& batch, double* grad) override;
  void predict_classes(std::span<const float> params, const Batch& batch,
                       std::span<std::int32_t> out) override;

  double lambda_;
};

class SoftmaxRegression final : public Problem {
 public:
  // Throws InvalidArgument for lambda < 0, features == 0 or classes < 2.
  SoftmaxRegression(std::size_t features, std::size_t classes, double lambda);

  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] std::unique_ptr<Problem> clone() const override;
  [[nodiscard]] bool is_classifier() const noexcept override { return true; }
  [[nodiscard]] std::optional<double> smoothness(const Batch& batch) const override;
  [[nodiscard]] double lambda() const noexcept { return lambda_; }

 private:
  template <class T>
  double eval(std::span<const T> params, const Batch& batch, T* grad);
  double evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) override;
  double evaluate_f64(std::span<const double> params, const Batch& batch, double* grad) override;
  void predict_classes(std::span<const float> params, const Batch& batch,
                       std::span<std::int32_t> out) override;

  double lambda_;
};

class LeastSquares final : public Problem {
 public:
  // Throws InvalidArgument for lambda < 0 or features == 0.
  LeastSquares(std::size_t features, double lambda);

  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] std::unique_ptr<Problem> clone() const override;
  [[nodiscard]] bool is_classifier() const noexcept override { return false; }
  [[nodiscard]] std::optional<double> smoothness(const Batch& batch) const override;
  [[nodiscard]] double lambda() const noexcept { return lambda_; }

 private:
  template <class T>
  double eval(std::span<const T> params, const Batch& batch, T* grad);
  double evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) override;
  double evaluate_f64(std::span<const double> params, const Batch& batch, double* grad) override;

  double lambda_;
};

}  // namespace thinwire::problem
