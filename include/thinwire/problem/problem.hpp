// Problem: the objective a worker differentiates. Virtual at minibatch granularity: one call
// evaluates the average loss (plus regularizer) over a Batch of rows and, optionally, its
// gradient, with Eigen matrix products over the whole batch inside.
//
//   f_B(x) = (1/|B|) Σ_{i∈B} ℓ(x; a_i, y_i) + R(x)
//
// Parameters and gradients are flat float spans: they are what gets compressed and sent. Sums of
// per-example losses are accumulated in double. A double-precision path (same code, templated on
// the scalar) exists for problems that must be solved to high accuracy (reference optima f* for
// relative-suboptimality plots, GD to ‖∇f‖ < 1e-6 on any data): with float parameters, rounding
// x alone leaves ‖∇f‖ ≈ L·ε_float·‖x*‖ ≈ 6e-8·L·‖x*‖. That is below 1e-6 on small well-scaled
// problems but not in general (Fashion-MNIST binary logistic regression has L ≈ 37).
//
// Thread safety: a Problem keeps scratch buffers (gathered minibatch rows, activations), so one
// object must not be used by two threads at once; give every worker its own clone().
//
// Specs (make_problem):
//   logistic[:lambda=L]        binary logistic regression, labels ±1 (class 1 = +1)   linear.hpp
//   softmax[:lambda=L]         multinomial logistic regression                        linear.hpp
//   least-squares[:lambda=L]   1/(2n)·‖Xw − y‖² + λ/2·‖w‖²                            linear.hpp
//   mlp:hidden=256x128[,lambda=L]  ReLU MLP, softmax cross-entropy output             mlp.hpp
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "thinwire/data/dataset.hpp"

namespace thinwire::problem {

using data::Batch;
using data::Dataset;

namespace detail {
struct RowScratch;  // gathered minibatch rows (src/problem/row_gather.hpp)
}  // namespace detail

// What fixes a problem's parameter count: input features and (for classifiers) classes.
struct ProblemShape {
  std::size_t features = 0;
  std::size_t classes = 0;  // 0 for regression data
};

[[nodiscard]] ProblemShape shape_of(const Dataset& data) noexcept;

class Problem {
 public:
  virtual ~Problem();

  // Canonical spec string with every parameter, e.g. "mlp:hidden=256x128,lambda=0".
  [[nodiscard]] virtual std::string spec() const = 0;
  [[nodiscard]] virtual std::unique_ptr<Problem> clone() const = 0;
  [[nodiscard]] std::size_t dim() const noexcept { return dim_; }
  [[nodiscard]] const ProblemShape& shape() const noexcept { return shape_; }
  [[nodiscard]] virtual bool is_classifier() const noexcept = 0;

  // Average loss over the batch plus regularizer. The batch's data set must match shape()
  // (features; for classifiers, classes below shape().classes), params.size() == grad.size() ==
  // dim(), the batch must be non-empty. Throws InvalidArgument otherwise.
  [[nodiscard]] double loss(std::span<const float> params, const Batch& batch);
  double loss_and_gradient(std::span<const float> params, const Batch& batch,
                           std::span<float> grad);
  // The same in double precision (slower; gathers and converts the rows it reads).
  [[nodiscard]] double loss(std::span<const double> params, const Batch& batch);
  double loss_and_gradient(std::span<const double> params, const Batch& batch,
                           std::span<double> grad);

  // Predicted class of every batch row (out.size() == batch.size()); classifiers only.
  void predict(std::span<const float> params, const Batch& batch, std::span<std::int32_t> out);
  // Fraction of batch rows whose predicted class equals their class.
  [[nodiscard]] double accuracy(std::span<const float> params, const Batch& batch);

  // A smoothness constant L of f_B (‖∇f_B(x) − ∇f_B(x')‖ ≤ L‖x − x'‖) where one is known, else
  // nullopt. Exact for least squares; an upper bound for logistic and softmax regression.
  [[nodiscard]] virtual std::optional<double> smoothness(const Batch& batch) const;

  // Initial parameters (params.size() == dim()); deterministic from the seed. Zeros unless a
  // problem says otherwise.
  virtual void init(std::span<float> params, std::uint64_t seed) const;

 protected:
  Problem(ProblemShape shape, std::size_t dim);
  // Copies the configuration; the copy gets its own (empty) scratch space.
  Problem(const Problem& other);
  Problem& operator=(const Problem&) = delete;

  // Loss (and gradient into grad[0, dim) when grad is not null); arguments already checked.
  virtual double evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) = 0;
  virtual double evaluate_f64(std::span<const double> params, const Batch& batch, double* grad) = 0;
  // Classifiers override; arguments already checked.
  virtual void predict_classes(std::span<const float> params, const Batch& batch,
                               std::span<std::int32_t> out);
  // Extra requirements on the data set (e.g. dense features); throws InvalidArgument.
  virtual void check_data(const Dataset& data) const;

  [[nodiscard]] std::string name() const;  // spec name, for messages
  [[nodiscard]] detail::RowScratch& scratch() noexcept { return *scratch_; }

 private:
  void check(std::size_t params, const Batch& batch, const std::size_t* grad) const;

  ProblemShape shape_;
  std::size_t dim_;
  std::unique_ptr<detail::RowScratch> scratch_;
};

// Builds a problem from its spec (see the table above) for data of the given shape. Throws
// InvalidArgument naming the problem and parameter.
[[nodiscard]] std::unique_ptr<Problem> make_problem(std::string_view spec,
                                                    const ProblemShape& shape);
// Shape taken from the data set (its features and classes).
[[nodiscard]] std::unique_ptr<Problem> make_problem(std::string_view spec, const Dataset& data);

}  // namespace thinwire::problem
