// qlocal-sgd in the all-reduce paradigm: quantized parallel restarted SGD (seed 002). Every
// worker keeps the last synchronized model x̄ (identical on all ranks). After H local steps:
//   Δ_m = x_m − x̄                          the change since the last synchronization
//   x̄ ← x̄ + (1/M)·Σ_m Q(Δ_m)              compressed all-reduce of the changes
//   x_m ← x̄                                every worker restarts from the new x̄
// Q's error scales with ‖Δ_m‖, which shrinks with the step size, not with ‖x‖: this is what makes
// quantizing local SGD work where quantizing the models (local-sgd with a lossy codec) does not.
// With error feedback each worker also carries what Q dropped into its next change.
// (The gossip paradigm of qlocal-sgd exchanges the change with neighbours: choco_sgd.hpp.)
// With a tuner (tune/tuner.hpp) each worker picks the level of its message at every
// synchronization from Δ_m, the vector it sends (e_m + Δ_m under error feedback; with the ring,
// its own chunk of Δ_m, see sync_sgd.hpp). There is no lr coupling: the codec's error lands on the
// averaged model, not on one gradient step, so γ_t = γ₀·ρ(θ_t) has no descent guarantee to keep.
#pragma once

#include <memory>
#include <vector>

#include "plan.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

class QlocalSgd final : public Algorithm {
 public:
  QlocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
            collective::AllreduceAlgorithm allreduce, const PlannedCodec& codec,
            const optim::SgdOptions& sgd, std::span<const float> initial_model,
            std::unique_ptr<tune::Tuner> tuner = nullptr);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t t) const override {
    return (t + 1) % local_steps_ == 0;
  }
  [[nodiscard]] tune::Tuner* tuner() noexcept override { return tuner_.get(); }
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  AlgorithmContext context_;
  std::uint64_t local_steps_;
  collective::AllreduceAlgorithm allreduce_;
  std::shared_ptr<const codec::Codec> codec_;
  std::unique_ptr<collective::AllreduceResidual> error_feedback_;
  optim::Sgd optimizer_;
  std::vector<float> anchor_;  // x̄
  std::unique_ptr<tune::Tuner> tuner_;
  std::vector<float> tune_input_;  // e + Δ under error feedback
};

}  // namespace thinwire::train
