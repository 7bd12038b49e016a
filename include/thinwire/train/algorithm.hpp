// The training algorithms (SPEC §4) behind one small interface, chosen at run time from the
// configuration. The worker loop (worker.hpp) computes a local gradient at the rank's model and
// hands it to Algorithm::step, which synchronizes and updates the model. Every algorithm is one
// composition (src/train/synchronizer.hpp, not installed): the period H × what is exchanged (the
// gradient, the model, the change since the anchor, CHOCO's x − y) × how (all-reduce, exact
// gossip, CHOCO gossip, the parameter server), with one sender (src/train/sender.hpp: codec, error
// feedback, tuner, lr coupling). --algorithm × --sync picks a preset of it:
//
//   sgd          the gradient by all-reduce (allgather|ring) or the parameter server (ps); with
//                --sync gossip a local step and one exact gossip round (D-PSGD, H = 1)
//   local-sgd    (PR-SGD) local steps, then the model by all-reduce or one exact gossip round
//   qlocal-sgd   all-reduce paradigm: the change since the last synchronized model is compressed;
//                gossip paradigm: CHOCO with H local steps
//   choco        local steps, then one compressed CHOCO-gossip round
//
// Tuning (SPEC §3, --tuner other than fixed): every algorithm that compresses runs one tuner per
// rank on the vector that rank is about to encode, and hands the chosen codec to its collective
// (messages are self-describing, so ranks may differ): sgd the gradient (all-gather, parameter
// server; a ring chunk, synchronizer.hpp), local-sgd the model, qlocal-sgd the change x_m − x̄,
// choco and gossip qlocal-sgd x_i − y_i. A decision is a function of (configuration, t, v) only.
//
// Every algorithm is deterministic given (seed, rank, iteration): encodings draw from
// EncodeContext{seed, rank, iteration}, reductions run in fixed orders (collective/), so every
// backend and thread schedule produces the same bits.
//
// Communication accounting: step() returns what this rank sent (collective::Result) and what the
// same pattern would have cost with the identity codec — bytes from the exact identity message
// size (32-byte header + 4 bytes per element) and time from the link model along the collective's
// critical path — the "uncompressed estimate" of the run summary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/collective/pricing.hpp"
#include "thinwire/collective/result.hpp"
#include "thinwire/comm/link_model.hpp"
#include "thinwire/comm/transport.hpp"
#include "thinwire/optim/sgd.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/state_file.hpp"
#include "thinwire/tune/curvature.hpp"
#include "thinwire/tune/tuner.hpp"

namespace thinwire::train {

// What one step communicated on this rank.
struct StepComm {
  collective::Result sent;           // bytes and messages this rank sent, clock time spent
  std::uint64_t identity_bytes = 0;  // the same messages with the identity codec
  double identity_seconds = 0;       // their modelled time on the critical path
  bool synchronized = false;         // a synchronization happened in this step

  StepComm& operator+=(const StepComm& other) noexcept {
    sent += other.sent;
    identity_bytes += other.identity_bytes;
    identity_seconds += other.identity_seconds;
    synchronized = synchronized || other.synchronized;
    return *this;
  }
};

// What every algorithm is built from.
struct AlgorithmContext {
  comm::Transport* transport = nullptr;  // the data plane (counted)
  std::size_t dimension = 0;             // d, model parameters
  std::uint64_t seed = 0;
  comm::LinkModel link;  // for the uncompressed estimate
  // The run's cost model (`--cost`), shared with the tuners so that `--cost auto`'s estimate,
  // which the worker updates every iteration, is what they price with. Null: each tuner prices
  // with a copy of its own.
  std::shared_ptr<tune::CostModel> cost_model = nullptr;
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;

  // Iteration t (0-based) on this rank. `grad` is the local gradient at `model` (it may be used
  // as scratch). With local_valid = false the gradient was not finite and was zeroed: local steps
  // are skipped, synchronizations still happen (every rank must take part).
  virtual StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                        bool local_valid) = 0;

  // Whether every rank holds the same published model after iteration t (then rank 0's is the
  // model; otherwise the engine averages the ranks' models).
  [[nodiscard]] virtual bool consensus_after(std::uint64_t t) const = 0;
  // The model this rank publishes (the parameter server's rank 0: its own model, not the replica).
  [[nodiscard]] virtual std::span<const float> published(std::span<const float> model) const {
    return model;
  }
  // ‖ḡ‖ of the synchronized gradient the last step applied, when the algorithm has one (sgd).
  [[nodiscard]] virtual std::optional<double> applied_gradient_norm() const { return {}; }

  // The tuner that picks this rank's codec level per iteration, when the algorithm runs one
  // (--tuner other than fixed); null otherwise.
  [[nodiscard]] virtual tune::Tuner* tuner() noexcept { return nullptr; }
  // The rank whose decisions the metrics log (rank 0 unless its message is not what the others
  // send: the parameter server's own gradient never goes on the wire).
  [[nodiscard]] virtual int tuning_rank() const noexcept { return 0; }

  // Checkpointing: optimizer state, error-feedback residuals and synchronization state.
  virtual void save(StateBundle& state) const = 0;
  virtual void load(const StateBundle& state) = 0;
};

// Builds the algorithm the (resolved) configuration names, through its run plan (the engine
// resolves that once for every rank); `initial_model` is the common starting point (anchors and
// replicas start there). Throws InvalidArgument for combinations resolve() cannot see (a topology
// that does not fit the world size).
[[nodiscard]] std::unique_ptr<Algorithm> make_algorithm(const TrainConfig& config,
                                                        const AlgorithmContext& context,
                                                        std::span<const float> initial_model);

// ---- pieces shared by the implementations -------------------------------------------------

// A step's uncompressed estimate from the collective's (collective/pricing.hpp).
[[nodiscard]] StepComm uncompressed_step(const collective::Traffic& traffic) noexcept;

// Optimizer + optional error feedback, saved and loaded under a prefix.
void save_optimizer(StateBundle& state, const optim::Sgd& optimizer);
void load_optimizer(const StateBundle& state, optim::Sgd& optimizer);
void save_error_feedback(StateBundle& state, const codec::ErrorFeedback* ef);
void load_error_feedback(const StateBundle& state, codec::ErrorFeedback* ef);

// The tuner's decision at iteration t for v, the vector this rank is about to encode. With a
// residual `ef` of v's length the rule sees e + v, summed in float element by element as
// ErrorFeedback does (SPEC §3: with error feedback the rule is applied to e + g); `scratch`
// holds that sum. `context` describes the iteration (tune/tuner.hpp).
[[nodiscard]] tune::Decision tune_message(tune::Tuner& tuner, std::uint64_t t,
                                          std::span<const float> v, const codec::ErrorFeedback* ef,
                                          std::vector<float>& scratch,
                                          const tune::TuneContext& context = {});

// What the tuner knows of a gradient step of sgd (docs/tuning.md): the price of this rank's
// message in the iteration `shape` (under `--cost auto` in seconds: the critical path plus the
// estimated compute time, collective::rank_seconds), and the step model from the curvature
// estimate, which first observes (model, grad) — the rank's model and gradient at t — when the
// gradient is valid.
[[nodiscard]] tune::TuneContext gradient_step_context(
    const tune::Tuner& tuner, tune::SecantCurvature& curvature, const optim::Sgd& optimizer,
    std::uint64_t t, std::span<const float> model, std::span<const float> grad, bool valid,
    const collective::IterationShape& shape, int rank, bool error_feedback);

// The curvature estimate in a checkpoint.
void save_curvature(StateBundle& state, const tune::SecantCurvature& curvature);
void load_curvature(const StateBundle& state, tune::SecantCurvature& curvature);

// Lr coupling applied to what this rank sends: v ← scale·v (scale = γ_t/γ₀ of the decision).
// The codecs are scale-equivariant and ρ is scale-invariant, so the chosen level stays right.
void scale_message(std::span<float> v, double scale) noexcept;

}  // namespace thinwire::train
