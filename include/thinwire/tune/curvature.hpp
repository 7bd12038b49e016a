// A local smoothness estimate for the tuner's step model (docs/tuning.md): the secant
//   ℓ_t = ‖g_t − g_{t−1}‖ / ‖x_t − x_{t−1}‖
// of this rank's gradients at consecutive models, smoothed as L̂_t = ½·L̂_{t−1} + ½·ℓ_t (L̂ = ℓ at
// the first secant). Along the path the optimizer takes this is usually far below the global
// worst-case L that the descent lemma's coupled step assumes. With minibatch gradients the
// difference also holds sampling noise, which makes L̂ larger: the rule is then more careful, not
// less.
//
// It also remembers how far the model moved, ‖x_t − x_{t−1}‖², from which the caller estimates
// the averaged gradient an unbiased codec's variance competes with ((1 − μ)·‖x_t − x_{t−1}‖/γ
// for heavy ball).
//
// The state (the previous model and gradient, L̂ and the last move) is part of a checkpoint, so
// a resumed run makes the same decisions.
#pragma once

#include <span>
#include <vector>

namespace thinwire::tune {

class SecantCurvature {
 public:
  // Takes this rank's model x_t and gradient g_t (same length at every call).
  void observe(std::span<const float> model, std::span<const float> gradient);

  // L̂ (0 until two observations with different models).
  [[nodiscard]] double smoothness() const noexcept { return smoothness_; }
  // ‖x_t − x_{t−1}‖² of the last observation (0 before the second).
  [[nodiscard]] double last_move_squared() const noexcept { return move_squared_; }

  // Checkpoint state: the last model and gradient, L̂ and the last move.
  [[nodiscard]] std::span<const float> model() const noexcept { return model_; }
  [[nodiscard]] std::span<const float> gradient() const noexcept { return gradient_; }
  void restore(std::vector<float> model, std::vector<float> gradient, double smoothness,
               double move_squared);

 private:
  std::vector<float> model_;
  std::vector<float> gradient_;
  double smoothness_ = 0.0;
  double move_squared_ = 0.0;
};

}  // namespace thinwire::tune
