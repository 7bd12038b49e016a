// choco: CHOCO-SGD (Koloskova, Stich, Jaggi, ICML 2019), and qlocal-sgd in the gossip paradigm
// (seed 002), which is the same with H local steps between rounds. Per iteration t:
//   x_i ← optimizer step with the local gradient
//   every H steps: one CHOCO-gossip round (collective/gossip.hpp) with consensus step γ
//     (--gossip-lr): q_i = Q(x_i − y_i) to every neighbour, public copies y += decode(q),
//     x_i += γ·Σ_j W_ij·(y_j − y_i)
// The compression error is carried by the public copies y (an error-feedback mechanism of its
// own), so a separate +ef residual is not offered. Models never agree exactly; the published
// model is the network average, which the engine computes for evaluation.
// With a tuner (tune/tuner.hpp) each rank picks the level of q_i at every round from x_i − y_i,
// the vector it compresses (its public copy y_i is identical on every rank that holds it, so the
// neighbours decode the self-describing message whatever level it has). No lr coupling: the
// consensus step γ is not a gradient step.
#pragma once

#include "plan.hpp"
#include "thinwire/collective/gossip.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

class ChocoSgd final : public Algorithm {
 public:
  ChocoSgd(const AlgorithmContext& context, std::uint64_t local_steps,
           collective::Topology topology, std::shared_ptr<const codec::Codec> codec,
           double consensus_step, const optim::SgdOptions& sgd,
           std::unique_ptr<tune::Tuner> tuner = nullptr);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t /*t*/) const override;
  [[nodiscard]] tune::Tuner* tuner() noexcept override { return tuner_.get(); }
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  AlgorithmContext context_;
  std::uint64_t local_steps_;
  collective::Topology topology_;
  collective::MixingMatrix weights_;
  std::shared_ptr<const codec::Codec> codec_;
  double consensus_step_;
  optim::Sgd optimizer_;
  collective::ChocoState state_;
  std::unique_ptr<tune::Tuner> tuner_;
  std::vector<float> tune_input_;  // x_i − y_i
};

}  // namespace thinwire::train
