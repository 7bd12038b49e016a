// qlocal-sgd in the all-reduce paradigm: quantized parallel restarted SGD (seed 002). Every
// worker keeps the last synchronized model x̄ (identical on all ranks). After H local steps:
//   Δ_m = x_m − x̄                          the change since the last synchronization
//   x̄ ← x̄ + (1/M)·Σ_m Q(Δ_m)              compressed all-reduce of the changes
//   x_m ← x̄                                every worker restarts from the new x̄
// Q's error scales with ‖Δ_m‖, which shrinks with the step size, not with ‖x‖: this is what makes
// quantizing local SGD work where quantizing the models (local-sgd with a lossy codec) does not.
// With error feedback each worker also carries what Q dropped into its next change.
// (The gossip paradigm of qlocal-sgd exchanges the change with neighbours: choco_sgd.hpp.)
#pragma once

#include <memory>
#include <vector>

#include "thinwire/collective/allreduce.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

class QlocalSgd final : public Algorithm {
 public:
  QlocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
            collective::AllreduceAlgorithm allreduce, const codec::CodecChoice& codec,
            const optim::SgdOptions& sgd, std::span<const float> initial_model);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t t) const override {
    return (t + 1) % local_steps_ == 0;
  }
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  AlgorithmContext context_;
  std::uint64_t local_steps_;
  collective::AllreduceAlgorithm allreduce_;
  std::shared_ptr<const codec::Codec> codec_;
  std::unique_ptr<codec::ErrorFeedback> error_feedback_;
  optim::Sgd optimizer_;
  std::vector<float> anchor_;  // x̄
};

}  // namespace thinwire::train
