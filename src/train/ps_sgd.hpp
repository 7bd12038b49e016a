// sgd with --sync ps: the parameter server of seed 000's master–worker setting. Rank 0 is the
// server and also a worker. Per iteration:
//   uplink    every worker sends Q(g_m) (through its error feedback, if any); the server averages
//             the decoded gradients in rank order: ḡ = (1/M)·Σ_m Q(g_m)
//   step      the server applies the optimizer to its model x with ḡ (only the server keeps
//             optimizer state)
//   downlink  the server broadcasts x (collective/parameter_server.hpp): losslessly, or as a
//             compressed delta against the workers' replica with --downlink-codec
// Every rank, the server included, computes its next gradient at the replica, so all ranks hold
// the same model after each step; the published model is the server's x.
// With a tuner (tune/tuner.hpp, seed 000's master–worker setting) every worker, the server's own
// contribution included, picks the level of its uplink message per iteration from the vector it
// is about to send (e_m + g_m under error feedback); messages are self-describing, so the server
// decodes whatever each worker chose. Lr coupling scales each worker's g_m by its own ρ_m before
// encoding, as in sync_sgd.hpp: ḡ = (1/M)·Σ_m ρ_m·Q_m(g_m) and the server steps with γ₀·ḡ. The
// downlink is not tuned (the model broadcast keeps --downlink-codec).
#pragma once

#include <memory>
#include <vector>

#include "plan.hpp"
#include "thinwire/collective/parameter_server.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

class PsSgd final : public Algorithm {
 public:
  PsSgd(const AlgorithmContext& context, const PlannedCodec& uplink,
        std::shared_ptr<const codec::Codec> downlink, const optim::SgdOptions& sgd,
        std::span<const float> initial_model, std::unique_ptr<tune::Tuner> tuner = nullptr);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t /*t*/) const override { return true; }
  [[nodiscard]] std::span<const float> published(std::span<const float> model) const override;
  [[nodiscard]] std::optional<double> applied_gradient_norm() const override { return last_norm_; }
  [[nodiscard]] int tuning_rank() const noexcept override {
    return context_.transport->size() > 1 ? 1 : 0;
  }
  [[nodiscard]] tune::Tuner* tuner() noexcept override { return tuner_.get(); }
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  AlgorithmContext context_;
  std::shared_ptr<const codec::Codec> uplink_;
  std::unique_ptr<codec::ErrorFeedback> error_feedback_;
  std::shared_ptr<const codec::Codec> downlink_;
  optim::Sgd optimizer_;
  std::vector<float> server_model_;  // rank 0 only
  collective::PsDownlinkState downlink_state_;
  std::optional<double> last_norm_;
  std::unique_ptr<tune::Tuner> tuner_;
  std::vector<float> tune_input_;    // e + g, what the tuner looks at under error feedback
  tune::SecantCurvature curvature_;  // L̂ of the tuner's step model
};

}  // namespace thinwire::train
