// What a rank puts on the wire, whatever the synchronizer (synchronizer.hpp) exchanges and however
// it exchanges it: the configured codec, the rank's error-feedback residual (+ef), its tuner
// (--tuner other than fixed) with the curvature estimate of the tuner's step model, and the lr
// coupling of the tuner's decision. One Sender per rank serves every route, so these are decided
// in one place:
//   codec     the configured codec, or with a tuner the codec it picks at iteration t for v, the
//             vector this rank is about to encode (tune/tuner.hpp); the rule sees e + v when the
//             residual has v's length (SPEC §3: with error feedback the rule is applied to e + g).
//             A decision is a function of (configuration, t, v) only, and messages are
//             self-describing, so ranks may pick different levels.
//   coupling  lr coupling (γ_t = γ₀·ρ(θ_t), unbiased codecs) is applied by each rank to what it
//             sends: v ← ρ_m·v before encoding. The codecs are scale-equivariant and ρ is
//             scale-invariant, so the chosen level does not change, and the average the ranks
//             step with is (1/M)·Σ_m ρ_m·Q_m(v_m). With M = 1 this is exactly γ₀·ρ(θ_t).
//   residual  error feedback encodes e + v and keeps e ← (e + v) − decode(sent); its length is the
//             collective's (collective::AllreduceResidual: d for the all-gather, the owned chunk
//             for the ring; d for the parameter server's uplink).
//   curvature L̂ of the tuner's step model (docs/tuning.md), kept only by a sender of gradients:
//             what it prices is a gradient step.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "plan.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

// This rank's residual for all-reduces of the model's length by `algorithm` when `codec` asks for
// error feedback, null otherwise (collective::AllreduceResidual knows its length).
[[nodiscard]] std::unique_ptr<collective::AllreduceResidual> allreduce_error_feedback(
    const AlgorithmContext& context, collective::AllreduceAlgorithm algorithm,
    const PlannedCodec& codec);

// A rank's error-feedback memory: built for an all-reduce (allreduce_error_feedback) or for a
// message of d elements (the parameter server's uplink); null for none.
using Residual = std::variant<std::unique_ptr<collective::AllreduceResidual>,
                              std::unique_ptr<codec::ErrorFeedback>>;

class Sender {
 public:
  // `residual` may be null (no error feedback), `tuner` too (--tuner fixed). `gradients`: what is
  // sent is a gradient, so the tuner's step model keeps a curvature estimate.
  Sender(std::shared_ptr<const codec::Codec> codec, Residual residual,
         std::unique_ptr<tune::Tuner> tuner, bool gradients);

  [[nodiscard]] codec::ErrorFeedback* residual() const noexcept;
  // The residual as an all-reduce takes it: null unless it was built for one.
  [[nodiscard]] collective::AllreduceResidual* allreduce_residual() const noexcept;
  [[nodiscard]] tune::Tuner* tuner() const noexcept { return tuner_.get(); }

  // What the tuner knows of a gradient step (gradient_step_context, algorithm.hpp), `grad` the
  // rank's gradient at `model`, seen by the curvature estimate when `valid`. Empty without a
  // tuner.
  [[nodiscard]] tune::TuneContext gradient_context(const optim::Sgd& optimizer, std::uint64_t t,
                                                   std::span<const float> model,
                                                   std::span<const float> grad, bool valid,
                                                   const collective::IterationShape& shape,
                                                   int rank);

  // The codec v goes out with at iteration t, v first scaled by the decision's lr coupling (1
  // unless --lr-coupling): the tuner sees v (+ the residual).
  [[nodiscard]] std::shared_ptr<const codec::Codec> prepare(std::uint64_t t, std::span<float> v,
                                                            const tune::TuneContext& context = {});
  // The same for this rank's contribution v to an all-reduce by `algorithm` (synchronizer.hpp):
  // all-gather as prepare; ring: the tuner sees chunk `rank` of v, without the residual, with the
  // context's signals scaled to the chunk's share.
  [[nodiscard]] std::shared_ptr<const codec::Codec> prepare_allreduce(
      collective::AllreduceAlgorithm algorithm, std::uint64_t t, std::span<float> v, int rank,
      int size, const tune::TuneContext& context = {});
  // The codec for a message that the collective forms itself from what this rank holds (CHOCO's
  // x − y): the tuner sees v, and there is nothing to scale.
  [[nodiscard]] std::shared_ptr<const codec::Codec> choose(std::uint64_t t,
                                                           std::span<const float> v);

  // The residual and the curvature estimate, in a checkpoint.
  void save(StateBundle& state) const;
  void load(const StateBundle& state);

 private:
  std::shared_ptr<const codec::Codec> codec_;
  Residual residual_;
  std::unique_ptr<tune::Tuner> tuner_;
  std::vector<float> tune_input_;                   // e + v, what the tuner sees under +ef
  std::optional<tune::SecantCurvature> curvature_;  // a tuned sender of gradients only
};

}  // namespace thinwire::train
