#include "thinwire/train/algorithm.hpp"

#include <algorithm>
#include <sstream>
#include <string>

#include "plan.hpp"
#include "synchronizer.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/tune/online_link.hpp"

namespace thinwire::train {

StepComm uncompressed_step(const collective::Traffic& traffic) noexcept {
  StepComm c;
  c.identity_bytes = traffic.bytes;
  c.identity_seconds = traffic.seconds;
  return c;
}

void save_optimizer(StateBundle& state, const optim::Sgd& optimizer) {
  state.put_floats("optimizer.velocity", optimizer.velocity());
}

void load_optimizer(const StateBundle& state, optim::Sgd& optimizer) {
  optimizer.set_velocity(state.get_floats("optimizer.velocity"));
}

void save_error_feedback(StateBundle& state, const codec::ErrorFeedback* ef) {
  if (ef == nullptr) return;
  std::ostringstream out(std::ios::binary);
  ef->save(out);
  const std::string bytes = out.str();
  state.put_bytes("error_feedback", std::as_bytes(std::span(bytes.data(), bytes.size())));
}

void load_error_feedback(const StateBundle& state, codec::ErrorFeedback* ef) {
  if (ef == nullptr) return;
  const std::vector<std::byte> bytes = state.get_bytes("error_feedback");
  std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                        std::ios::binary);
  ef->load(in);
}

tune::Decision tune_message(tune::Tuner& tuner, std::uint64_t t, std::span<const float> v,
                            const codec::ErrorFeedback* ef, std::vector<float>& scratch,
                            const tune::TuneContext& context) {
  if (ef == nullptr || ef->dimension() != v.size()) return tuner.decide(t, v, context);
  const std::span<const float> e = ef->residual();
  scratch.resize(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) scratch[i] = e[i] + v[i];
  return tuner.decide(t, scratch, context);
}

tune::TuneContext gradient_step_context(const tune::Tuner& tuner, tune::SecantCurvature& curvature,
                                        const optim::Sgd& optimizer, std::uint64_t t,
                                        std::span<const float> model, std::span<const float> grad,
                                        bool valid, const collective::IterationShape& shape,
                                        int rank, bool error_feedback) {
  tune::TuneContext c;
  const tune::CostModel* cost = tuner.cost_model();
  if (cost == nullptr) return c;  // a tuner without a rule
  // A time (--cost auto) is priced along the critical path, with the compute time as a fixed cost.
  const auto* seconds = dynamic_cast<const tune::AutoCost*>(cost);
  const collective::RankPrice price = seconds != nullptr
                                          ? collective::rank_seconds(shape, rank, *cost)
                                          : collective::rank_price(shape, rank, *cost);
  c.copies = price.copies;
  c.fixed = price.fixed + (seconds != nullptr ? seconds->compute_seconds() : 0.0);
  if (valid) curvature.observe(model, grad);
  c.lr = optimizer.lr_at(t);
  c.momentum = optimizer.options().momentum;
  // The configured step is stable for the objective (heavy ball: L·γ < 2(1 + μ)), which bounds
  // its smoothness. Secants of minibatch gradients at different batches hold sampling noise
  // divided by the move, and grow without that bound as the steps shrink.
  const double first_lr = optimizer.options().lr;
  c.smoothness = std::min(curvature.smoothness(), 2.0 * (1.0 + c.momentum) / first_lr);
  // An unbiased codec's noise is spread over every direction v has, not only the path's: the
  // secant along the path (the slow directions, late in a run) underestimates what it meets.
  // A configured step near the stability edge (L·γ ≈ 1) is the estimate from below. It is also
  // the estimate before the first secant: the first step is then priced by the noise it adds
  // alone (no move yet, so no estimate of ‖ḡ‖²), and the rule sends its least noisy level rather
  // than the coarse one the classic ρ/P picks, whose noise the uncoupled step takes in full
  // (docs/tuning.md, "Before the rule can see").
  if (!error_feedback) {
    c.smoothness = std::max(c.smoothness, 1.0 / first_lr);
  }
  c.workers = shape.size;
  c.error_feedback = error_feedback;
  double g2 = 0.0;
  for (const float g : grad) g2 += static_cast<double>(g) * static_cast<double>(g);
  c.gradient_squared = g2;
  // Heavy ball moves x by γ_{t−1}·v with (1 − μ)·v an average of the applied gradients, which
  // hold the compression noise of the last step(s): E‖ĝ‖² = ‖ḡ‖² + Σ_m Var_m/M². This rank's
  // last variance stands for every rank's (momentum averages it over about (1+μ)/(1−μ) steps).
  const double previous_lr = optimizer.lr_at(t > 0 ? t - 1 : 0);
  const double moved = (1.0 - c.momentum) * (1.0 - c.momentum) * curvature.last_move_squared() /
                       (previous_lr * previous_lr);
  const double noise = tuner.last() != nullptr && !error_feedback
                           ? tuner.last()->err * (1.0 - c.momentum) / (1.0 + c.momentum) /
                                 static_cast<double>(std::max(shape.size, 1))
                           : 0.0;
  c.average_squared = std::max(0.0, moved - noise);
  return c;
}

void save_curvature(StateBundle& state, const tune::SecantCurvature& curvature) {
  state.put_floats("tune.curvature.model", curvature.model());
  state.put_floats("tune.curvature.gradient", curvature.gradient());
  state.put_f64("tune.curvature.smoothness", curvature.smoothness());
  state.put_f64("tune.curvature.move", curvature.last_move_squared());
}

void load_curvature(const StateBundle& state, tune::SecantCurvature& curvature) {
  if (!state.has("tune.curvature.model")) return;  // written before the step model existed
  curvature.restore(
      state.get_floats("tune.curvature.model"), state.get_floats("tune.curvature.gradient"),
      state.get_f64("tune.curvature.smoothness"), state.get_f64("tune.curvature.move"));
}

void scale_message(std::span<float> v, double scale) noexcept {
  if (scale == 1.0) return;
  const auto s = static_cast<float>(scale);
  for (float& x : v) x *= s;
}

namespace {

// This rank's tuner (null for --tuner fixed), pricing with the rank's cost model when the context
// shares one.
std::unique_ptr<tune::Tuner> rank_tuner(const RunPlan& plan, const AlgorithmContext& context) {
  if (!plan.tuner) return nullptr;
  return tune::make_tuner(*plan.tuner, context.cost_model);
}

}  // namespace

std::unique_ptr<Algorithm> make_algorithm(const RunPlan& plan, const AlgorithmContext& context,
                                          std::span<const float> initial_model) {
  if (context.transport == nullptr) throw InvalidArgument("make_algorithm: no transport");
  SyncComposition composition = preset_of(plan);
  std::unique_ptr<tune::Tuner> tuner =
      compresses(composition.route) ? rank_tuner(plan, context) : nullptr;
  return std::make_unique<ComposedSync>(context, std::move(composition), plan.sgd, initial_model,
                                        std::move(tuner));
}

std::unique_ptr<Algorithm> make_algorithm(const TrainConfig& config,
                                          const AlgorithmContext& context,
                                          std::span<const float> initial_model) {
  if (context.transport == nullptr) throw InvalidArgument("make_algorithm: no transport");
  return make_algorithm(make_run_plan(config, context.transport->size()), context, initial_model);
}

}  // namespace thinwire::train
