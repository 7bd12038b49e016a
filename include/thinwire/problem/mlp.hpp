// Multi-layer perceptron: ReLU hidden layers of any sizes, a linear output layer with one logit
// per class, softmax cross-entropy loss (the model of seed 001's Fashion-MNIST-scale experiments).
// Dense features only (a sparse data set is an InvalidArgument; convert with data::to_dense).
//
// Layers l = 0..L-1 map s_l inputs to s_{l+1} outputs, with s_0 = features,
// s_1..s_{L-1} = hidden sizes, s_L = classes:
//   h_0 = a,  h_{l+1} = relu(W_l h_l + b_l) for hidden layers,  z = W_{L-1} h_{L-1} + b_{L-1}
//   f = (1/n) Σ (logsumexp(z) - z_y) + λ/2 Σ_l ‖W_l‖²_F          (biases are not decayed)
//
// Parameter layout (one flat float vector, PyTorch nn.Linear order): for each layer in order, its
// weight W_l as an s_{l+1} x s_l row-major matrix (W_l[j·s_l + i] connects input i to unit j),
// then its bias b_l (s_{l+1} values). layers() gives each layer's offsets. dim = Σ s_{l+1}(s_l+1);
// 784-256-128-10 has 235 146 parameters.
//
// Forward and backward run on the whole minibatch with Eigen matrix products (batch-major
// row-major activations: H_{l+1} = H_l W_lᵀ + 1 b_lᵀ; backward Δ_l = (Δ_{l+1} W_l) ⊙ [H_l > 0],
// ∇W_l = Δ_{l+1}ᵀ H_l). Activation buffers are kept between calls (resized only when the batch
// size changes), and large batches are processed in chunks of 4096 rows.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "thinwire/problem/problem.hpp"

namespace thinwire::problem {

struct MlpOptions {
  std::vector<std::size_t> hidden;  // hidden layer sizes; empty = softmax regression with bias
  double lambda = 0;                // L2 weight on the weights (not the biases)
};

// "256x128" -> {256, 128}. Throws InvalidArgument for an empty list, a zero or a non-number.
[[nodiscard]] std::vector<std::size_t> parse_hidden_sizes(std::string_view text);

struct MlpLayer {
  std::size_t inputs = 0;
  std::size_t outputs = 0;
  std::size_t weights = 0;  // offset of W_l in the parameter vector
  std::size_t bias = 0;     // offset of b_l
};

class Mlp final : public Problem {
 public:
  // Throws InvalidArgument for features == 0, classes < 2, a hidden size of 0 or lambda < 0.
  Mlp(std::size_t features, std::size_t classes, MlpOptions options);
  Mlp(const Mlp& other);
  ~Mlp() override;

  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] std::unique_ptr<Problem> clone() const override;
  [[nodiscard]] bool is_classifier() const noexcept override { return true; }
  [[nodiscard]] const std::vector<MlpLayer>& layers() const noexcept { return layers_; }
  [[nodiscard]] const MlpOptions& options() const noexcept { return options_; }

  // He initialization (Kaiming normal, sd sqrt(2/s_l)) for the ReLU layers, Glorot normal
  // (sd sqrt(2/(s_{L-1} + classes))) for the output layer, zero biases; one counter-based stream
  // per layer from (seed, RngPurpose::kInit).
  void init(std::span<float> params, std::uint64_t seed) const override;

 private:
  struct Buffers;
  template <class T>
  double eval(std::span<const T> params, const Batch& batch, T* grad);
  double evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) override;
  double evaluate_f64(std::span<const double> params, const Batch& batch, double* grad) override;
  void predict_classes(std::span<const float> params, const Batch& batch,
                       std::span<std::int32_t> out) override;
  void check_data(const Dataset& data) const override;

  MlpOptions options_;
  std::vector<MlpLayer> layers_;
  std::unique_ptr<Buffers> buffers_;
};

}  // namespace thinwire::problem
