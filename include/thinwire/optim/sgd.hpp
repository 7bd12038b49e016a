// Stochastic gradient descent with optional heavy-ball or Nesterov momentum and L2 weight decay:
// the one optimizer every training algorithm steps with (SPEC §1, optimizer layer).
//
// With step size γ (learning rate), momentum μ ∈ [0, 1) and weight decay λ ≥ 0, one step on the
// gradient g at x is
//   u = g + λ·x                                (decay folded into the gradient, as in PyTorch)
//   heavy ball (Polyak):  v ← μ·v + u,  x ← x − γ·v
//   Nesterov (Sutskever et al. 2013, in the form PyTorch uses): v ← μ·v + u,  x ← x − γ·(u + μ·v)
// With μ = 0 both are plain SGD, x ← x − γ·u, and the velocity is never allocated. All arithmetic
// is float, element by element in index order, so the same inputs give the same bits on every
// rank and backend.
//
// The velocity is optimizer state: checkpoints save and restore it (velocity(), set_velocity()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace thinwire::optim {

struct SgdOptions {
  double lr = 0.1;            // γ
  double momentum = 0.0;      // μ, in [0, 1)
  bool nesterov = false;      // Nesterov's look-ahead form (needs μ > 0 to differ)
  double weight_decay = 0.0;  // λ ≥ 0
  // T of the decreasing step γ_t = γ/(1 + t/T) (stochastic gradient descent reaches the optimum
  // of a strongly convex problem with it, where a constant step levels off at a noise floor);
  // 0 keeps γ constant.
  double lr_decay = 0.0;

  // Throws InvalidArgument naming the field for a non-finite or out-of-range value.
  void validate() const;
};

class Sgd {
 public:
  // For models of d parameters; validates the options.
  Sgd(std::size_t d, const SgdOptions& options);

  // One step of the rule above with the configured γ.
  void step(std::span<float> x, std::span<const float> g) { step(x, g, options_.lr); }
  // One step with step size `lr` instead of the configured one (a tuner's coupled step γ_t).
  // Throws InvalidArgument if x or g do not have d elements.
  void step(std::span<float> x, std::span<const float> g, double lr);

  // γ_t at iteration t (0-based): γ/(1 + t/T), or γ without a decay.
  [[nodiscard]] double lr_at(std::uint64_t t) const noexcept;

  [[nodiscard]] const SgdOptions& options() const noexcept { return options_; }
  [[nodiscard]] std::size_t dimension() const noexcept { return d_; }

  // The momentum buffer v (empty when μ = 0 or before the first step).
  [[nodiscard]] std::span<const float> velocity() const noexcept { return velocity_; }
  // Restores v from a checkpoint: empty, or exactly d elements (else InvalidArgument).
  void set_velocity(std::span<const float> v);

 private:
  std::size_t d_;
  SgdOptions options_;
  std::vector<float> velocity_;
};

}  // namespace thinwire::optim
