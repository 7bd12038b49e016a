#include "sender.hpp"

#include <utility>

namespace thinwire::train {
namespace {

// The tuner's decision for this rank's contribution `data` to an all-reduce (synchronizer.hpp):
// all-gather: data (+ the residual of `ef`); ring: chunk `rank` of data, without the residual.
// `context` describes the iteration; for the ring its signals are scaled to the chunk's share.
tune::Decision tune_allreduce(tune::Tuner& tuner, collective::AllreduceAlgorithm algorithm,
                              std::uint64_t t, std::span<const float> data, int rank, int size,
                              const codec::ErrorFeedback* ef, std::vector<float>& scratch,
                              const tune::TuneContext& context) {
  if (algorithm == collective::AllreduceAlgorithm::kRing) {
    const collective::Chunk own = collective::balanced_chunk(data.size(), size, rank);
    // d < M leaves some chunks empty, and a level for zero elements is no codec: such a rank
    // tunes on its whole vector instead (its later hops carry other, non-empty chunks).
    if (own.size == 0) return tuner.decide(t, data, context);
    tune::TuneContext chunk = context;
    const double share = static_cast<double>(own.size) / static_cast<double>(data.size());
    chunk.gradient_squared *= share;
    chunk.average_squared *= share;
    return tuner.decide(t, data.subspan(own.begin, own.size), chunk);
  }
  return tune_message(tuner, t, data, ef, scratch, context);
}

}  // namespace

std::unique_ptr<collective::AllreduceResidual> allreduce_error_feedback(
    const AlgorithmContext& context, collective::AllreduceAlgorithm algorithm,
    const PlannedCodec& codec) {
  if (!codec.error_feedback) return nullptr;
  return std::make_unique<collective::AllreduceResidual>(codec.codec, algorithm, context.dimension,
                                                         context.transport->rank(),
                                                         context.transport->size());
}

Sender::Sender(std::shared_ptr<const codec::Codec> codec, Residual residual,
               std::unique_ptr<tune::Tuner> tuner, bool gradients)
    : codec_(std::move(codec)), residual_(std::move(residual)), tuner_(std::move(tuner)) {
  if (tuner_ && gradients) curvature_.emplace();
}

codec::ErrorFeedback* Sender::residual() const noexcept {
  return std::visit([](const auto& residual) -> codec::ErrorFeedback* { return residual.get(); },
                    residual_);
}

collective::AllreduceResidual* Sender::allreduce_residual() const noexcept {
  const auto* residual = std::get_if<std::unique_ptr<collective::AllreduceResidual>>(&residual_);
  return residual != nullptr ? residual->get() : nullptr;
}

tune::TuneContext Sender::gradient_context(const optim::Sgd& optimizer, std::uint64_t t,
                                           std::span<const float> model,
                                           std::span<const float> grad, bool valid,
                                           const collective::IterationShape& shape, int rank) {
  if (!tuner_ || !curvature_) return {};
  return gradient_step_context(*tuner_, *curvature_, optimizer, t, model, grad, valid, shape, rank,
                               residual() != nullptr);
}

std::shared_ptr<const codec::Codec> Sender::prepare(std::uint64_t t, std::span<float> v,
                                                    const tune::TuneContext& context) {
  if (!tuner_) return codec_;
  const tune::Decision d = tune_message(*tuner_, t, v, residual(), tune_input_, context);
  scale_message(v, d.lr_scale);
  return d.codec;
}

std::shared_ptr<const codec::Codec> Sender::prepare_allreduce(
    collective::AllreduceAlgorithm algorithm, std::uint64_t t, std::span<float> v, int rank,
    int size, const tune::TuneContext& context) {
  if (!tuner_) return codec_;
  const tune::Decision d =
      tune_allreduce(*tuner_, algorithm, t, v, rank, size, residual(), tune_input_, context);
  scale_message(v, d.lr_scale);
  return d.codec;
}

std::shared_ptr<const codec::Codec> Sender::choose(std::uint64_t t, std::span<const float> v) {
  if (!tuner_) return codec_;
  return tuner_->decide(t, v).codec;
}

void Sender::save(StateBundle& state) const {
  save_error_feedback(state, residual());
  if (curvature_) save_curvature(state, *curvature_);
}

void Sender::load(const StateBundle& state) {
  load_error_feedback(state, residual());
  if (curvature_) load_curvature(state, *curvature_);
}

}  // namespace thinwire::train
