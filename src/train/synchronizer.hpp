// Every training algorithm (SPEC §4) as one composition: the period H × what is exchanged × how it
// is exchanged, with one Sender (sender.hpp: codec, error feedback, tuner, lr coupling) for what a
// rank puts on the wire. Per iteration t each worker
//   takes a local optimizer step with its gradient, unless what it exchanges is the gradient, and
//   every H steps ((t + 1) mod H = 0) exchanges
//     the gradient g_m      ḡ = (1/M)·Σ_m Q_m(g_m), then x ← optimizer step with ḡ (H = 1)
//     the model x_m         x_m ← the average of the models
//     the change Δ_m        Δ_m = x_m − x̄ since the anchor x̄, the last synchronized model
//                           (identical on all ranks): x̄ ← x̄ + (1/M)·Σ_m Q(Δ_m), x_m ← x̄
//     x_i − y_i             CHOCO's difference to the public copy (below), formed by the round
//   by
//     all-reduce            allgather | ring (collective/allreduce.hpp gives the exact estimator
//                           and its error bounds): identical on every rank, since all decode the
//                           same messages
//     exact gossip          one round x_i ← Σ_j W_ij·x_j, Metropolis–Hastings weights over
//                           --topology, lossless
//     CHOCO gossip          one CHOCO-gossip round (collective/gossip.hpp) with consensus step γ
//                           (--gossip-lr): q_i = Q(x_i − y_i) to every neighbour, public copies
//                           y += decode(q), x_i += γ·Σ_j W_ij·(y_j − y_i)
//     parameter server      rank 0 is the server and also a worker: every worker sends Q(g_m), the
//                           server averages the decoded gradients in rank order, steps its model x
//                           with ḡ (only the server keeps optimizer state) and broadcasts x
//                           (collective/parameter_server.hpp): losslessly, or as a compressed
//                           delta against the workers' replica with --downlink-codec. Every rank
//                           computes its next gradient at the replica; the published model is the
//                           server's x.
// The presets (preset_of) are the algorithms of --algorithm × --sync:
//   sgd         H = 1, the gradient, by all-reduce (seed 001's parallel SGD, Algorithm 1, for
//               allgather) or by the parameter server (seed 000's master–worker setting); sgd
//               with --sync gossip is local-sgd with H = 1: decentralized parallel SGD (D-PSGD,
//               Lian et al. 2017), a local step followed by a mixing round. Full-batch gradient
//               descent is the same algorithm with each worker's gradient over its whole shard.
//   local-sgd   parallel restarted SGD (PR-SGD; seed 002's baseline): the model, by all-reduce
//               (identity by default: exact averaging; a lossy codec quantizes whole models —
//               compressing the change instead is qlocal-sgd) or by exact gossip.
//   qlocal-sgd  quantized PR-SGD (seed 002): the change by all-reduce. Q's error scales with
//               ‖Δ_m‖, which shrinks with the step size, not with ‖x‖: this is what makes
//               quantizing local SGD work where quantizing the models does not. In the gossip
//               paradigm it exchanges the change with neighbours: choco with H local steps.
//   choco       CHOCO-SGD (Koloskova, Stich, Jaggi, ICML 2019): x − y by CHOCO gossip. The
//               compression error is carried by the public copies y (an error-feedback mechanism
//               of its own), so a separate +ef residual is not offered. Models never agree
//               exactly; the published model is the network average, which the engine computes.
// The momentum buffer stays local and is kept across synchronizations.
//
// Error feedback: each rank encodes e_m + v_m and keeps the remainder (for the ring, on the chunk
// it owns; for the parameter server, on its uplink).
//
// Tuning (tune/tuner.hpp): each rank picks its codec level per synchronization from the vector it
// is about to encode — the gradient (e_m + g_m under error feedback), the model, the change, or
// x_i − y_i (y_i = 0 before the first round; y_i is identical on every rank that holds it, so the
// neighbours decode the self-describing message whatever level it has). Exact gossip has no codec
// and so nothing to tune. Only a gradient step has a step model (gradient_step_context): the
// tuner prices the gradient with the iteration's shape and the curvature estimate, and only there
// does lr coupling mean anything (the configuration allows it for sgd only): the codec's error of a
// model, a change or x − y lands on the model, not on one gradient step, so γ_t = γ₀·ρ(θ_t) has no
// descent guarantee to keep, and the consensus step γ is not a gradient step.
// The ring re-encodes partial sums at every hop, so there is no single message to tune: each rank
// tunes once per iteration on the first message it encodes, its own chunk of v_m (chunk m of the
// balanced split, a real message length, so a packet cost sees the sizes that go on the wire),
// and uses that codec for every hop it sends, the owner's final encoding included. Error feedback
// lives on the owned chunk's average (another chunk), so its residual is not added to what the
// rule sees. Lr coupling scales all of g_m by ρ_m, as for the all-gather. On the parameter server
// every worker, the server's own contribution included, tunes its uplink message (messages are
// self-describing, so the server decodes whatever each worker chose); the downlink is not tuned
// (the model broadcast keeps --downlink-codec), and the decision the metrics log is rank 1's,
// since the server's own gradient never goes on the wire.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "plan.hpp"
#include "sender.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/gossip.hpp"
#include "thinwire/collective/parameter_server.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

// What a synchronization exchanges.
enum class Exchange : std::uint8_t {
  kGradient,          // g_m, every step; the optimizer steps with the average
  kModel,             // x_m, after the local steps
  kChange,            // x_m − x̄, the change since the anchor x̄; every rank restarts from x̄
  kPublicDifference,  // x_i − y_i, CHOCO's difference to the public copy
};

// How: the routes of the overview.
struct AllreduceRoute {
  collective::AllreduceAlgorithm algorithm = collective::AllreduceAlgorithm::kRing;
};
struct ExactGossipRoute {
  collective::Topology topology;
};
struct ChocoGossipRoute {
  collective::Topology topology;
  double consensus_step = 0.5;  // γ
};
struct ParameterServerRoute {
  std::shared_ptr<const codec::Codec> downlink;  // the model broadcast
};
using Route =
    std::variant<AllreduceRoute, ExactGossipRoute, ChocoGossipRoute, ParameterServerRoute>;

struct SyncComposition {
  std::string name;          // the algorithm, for messages
  std::uint64_t period = 1;  // H
  Exchange exchange = Exchange::kGradient;
  Route route;
  PlannedCodec codec;  // what is sent (unused by exact gossip, which is lossless)
};

// The presets: what --algorithm and --sync of the plan compose (the overview).
[[nodiscard]] SyncComposition sgd_preset(const RunPlan& plan);
[[nodiscard]] SyncComposition local_sgd_preset(const RunPlan& plan);
[[nodiscard]] SyncComposition qlocal_sgd_preset(const RunPlan& plan);
[[nodiscard]] SyncComposition choco_preset(const RunPlan& plan);
[[nodiscard]] SyncComposition preset_of(const RunPlan& plan);

// Whether `route` encodes what it sends (all but exact gossip), and so runs a tuner under --tuner
// other than fixed.
[[nodiscard]] bool compresses(const Route& route) noexcept;

class ComposedSync final : public Algorithm {
 public:
  // `initial_model` is the common starting point (the anchor's and the server's model); `tuner`
  // is this rank's (null for --tuner fixed). Throws InvalidArgument for a period below 1, an
  // exchange the route cannot carry, or a missing codec.
  ComposedSync(const AlgorithmContext& context, SyncComposition composition,
               const optim::SgdOptions& sgd, std::span<const float> initial_model,
               std::unique_ptr<tune::Tuner> tuner = nullptr);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t t) const override;
  [[nodiscard]] std::span<const float> published(std::span<const float> model) const override;
  [[nodiscard]] std::optional<double> applied_gradient_norm() const override { return last_norm_; }
  [[nodiscard]] tune::Tuner* tuner() noexcept override { return sender_.tuner(); }
  [[nodiscard]] int tuning_rank() const noexcept override;
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  [[nodiscard]] bool synchronizes_after(std::uint64_t t) const noexcept {
    return (t + 1) % period_ == 0;
  }
  [[nodiscard]] bool server() const noexcept;
  // The message of this synchronization, formed in `grad` (free scratch after the local step)
  // where it is neither the gradient nor the model.
  [[nodiscard]] std::span<float> form_message(std::span<float> model, std::span<float> grad);
  // What the tuner knows of this iteration: a gradient step's context (Sender::gradient_context)
  // when the gradient is exchanged, nothing otherwise.
  [[nodiscard]] tune::TuneContext step_context(std::uint64_t t, std::span<const float> model,
                                               std::span<const float> grad, bool valid);
  // Steps `target` with the averaged gradient g.
  void apply_gradient(std::uint64_t t, std::span<float> target, std::span<const float> g);

  StepComm exchange(const AllreduceRoute& route, std::uint64_t t, std::span<float> model,
                    std::span<float> message, const tune::TuneContext& tune_context);
  StepComm exchange(const ExactGossipRoute& route, std::uint64_t t, std::span<float> model,
                    std::span<float> message, const tune::TuneContext& tune_context);
  StepComm exchange(const ChocoGossipRoute& route, std::uint64_t t, std::span<float> model,
                    std::span<float> message, const tune::TuneContext& tune_context);
  StepComm exchange(const ParameterServerRoute& route, std::uint64_t t, std::span<float> model,
                    std::span<float> message, const tune::TuneContext& tune_context);

  AlgorithmContext context_;
  std::string name_;
  std::uint64_t period_;
  Exchange exchange_;
  Route route_;
  Sender sender_;
  optim::Sgd optimizer_;
  std::optional<double> last_norm_;  // ‖ḡ‖ of the last gradient step
  // The state of the exchange and the route.
  std::vector<float> anchor_;             // x̄ (kChange)
  collective::MixingMatrix weights_;      // W (gossip)
  collective::ChocoState choco_;          // the public copies y (CHOCO)
  std::vector<float> server_model_;       // x (parameter server, rank 0 only)
  collective::PsDownlinkState downlink_;  // the workers' replica (parameter server)
};

}  // namespace thinwire::train
