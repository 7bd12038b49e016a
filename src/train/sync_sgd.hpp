// sgd with --sync allgather|ring: minibatch SGD whose gradients are averaged by a compressed
// all-reduce every step (seed 001's parallel SGD, Algorithm 1, for allgather):
//   ḡ = (1/M)·Σ_m Q_m(g_m)    (allreduce.hpp gives the exact estimator and its error bounds)
//   x ← optimizer step with ḡ  (identical on every rank: all decode the same messages)
// With error feedback each rank encodes e_m + g_m and keeps the remainder (for the ring, on the
// chunk it owns). Full-batch gradient descent is the same algorithm with each worker's gradient
// over its whole shard (the worker loop weights it so ḡ is the full-data gradient).
// With a tuner (tune/tuner.hpp) each rank picks its codec level per iteration from the vector it
// is about to send (e_m + g_m under error feedback; the ring below). Lr coupling (γ_t = γ₀·ρ(θ_t),
// unbiased codecs) is applied per rank, to what it sends: rank m scales g_m by its own ρ_m before
// encoding, so ḡ = (1/M)·Σ_m ρ_m·Q_m(g_m) and every rank still takes the same step γ₀·ḡ (the codecs
// are scale-equivariant and ρ is scale-invariant, so the level does not change). With M = 1 this is
// exactly γ₀·ρ(θ_t).
// The ring re-encodes partial sums at every hop, so there is no single message to tune: each rank
// tunes once per iteration on the first message it encodes, its own chunk of g_m (chunk m of the
// balanced split, a real message length, so a packet cost sees the sizes that go on the wire),
// and uses that codec for every hop it sends, the owner's final encoding included. Error feedback
// lives on the owned chunk's average (another chunk), so its residual is not added to what the
// rule sees. Lr coupling scales all of g_m by ρ_m, as for the all-gather.
#pragma once

#include <memory>
#include <vector>

#include "plan.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

class SyncSgd final : public Algorithm {
 public:
  SyncSgd(const AlgorithmContext& context, collective::AllreduceAlgorithm allreduce,
          const PlannedCodec& codec, const optim::SgdOptions& sgd,
          std::unique_ptr<tune::Tuner> tuner = nullptr);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t /*t*/) const override { return true; }
  [[nodiscard]] std::optional<double> applied_gradient_norm() const override { return last_norm_; }
  [[nodiscard]] tune::Tuner* tuner() noexcept override { return tuner_.get(); }
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  AlgorithmContext context_;
  collective::AllreduceAlgorithm allreduce_;
  std::shared_ptr<const codec::Codec> codec_;
  std::unique_ptr<collective::AllreduceResidual> error_feedback_;
  optim::Sgd optimizer_;
  std::optional<double> last_norm_;
  std::unique_ptr<tune::Tuner> tuner_;
  std::vector<float> tune_input_;    // e + g, what the tuner looks at under error feedback
  tune::SecantCurvature curvature_;  // L̂ of the tuner's step model
};

// This rank's residual for all-reduces of the model's length by `algorithm` when `codec` asks for
// error feedback, null otherwise (collective::AllreduceResidual knows its length).
[[nodiscard]] std::unique_ptr<collective::AllreduceResidual> allreduce_error_feedback(
    const AlgorithmContext& context, collective::AllreduceAlgorithm algorithm,
    const PlannedCodec& codec);

// The tuner's decision for this rank's contribution `data` to an all-reduce (see the overview):
// all-gather: data (+ the residual of `ef`); ring: chunk `rank` of data, without the residual.
// `context` describes the iteration; for the ring its signals are scaled to the chunk's share.
[[nodiscard]] tune::Decision tune_allreduce(tune::Tuner& tuner,
                                            collective::AllreduceAlgorithm algorithm,
                                            std::uint64_t t, std::span<const float> data, int rank,
                                            int size, const codec::ErrorFeedback* ef,
                                            std::vector<float>& scratch,
                                            const tune::TuneContext& context = {});

// Averages `data` over the world by the all-reduce `algorithm` with `codec`, or, with a tuner,
// with the codec it picks for this rank's contribution (tune_allreduce); `data` is first scaled
// by the decision's step coupling (1 unless --lr-coupling). The one path of sgd, local-sgd and
// qlocal-sgd synchronizations.
collective::Result tuned_allreduce(const AlgorithmContext& context,
                                   collective::AllreduceAlgorithm algorithm, std::uint64_t t,
                                   std::span<float> data,
                                   const std::shared_ptr<const codec::Codec>& codec,
                                   tune::Tuner* tuner, collective::AllreduceResidual* ef,
                                   std::vector<float>& scratch,
                                   const tune::TuneContext& tune_context = {});

}  // namespace thinwire::train
