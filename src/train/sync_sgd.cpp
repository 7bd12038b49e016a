#include "sync_sgd.hpp"

#include <cmath>
#include <utility>

#include "thinwire/core/error.hpp"

namespace thinwire::train {
namespace {

double norm2(std::span<const float> v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(s);
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

collective::Result tuned_allreduce(const AlgorithmContext& context,
                                   collective::AllreduceAlgorithm algorithm, std::uint64_t t,
                                   std::span<float> data,
                                   const std::shared_ptr<const codec::Codec>& codec,
                                   tune::Tuner* tuner, collective::AllreduceResidual* ef,
                                   std::vector<float>& scratch,
                                   const tune::TuneContext& tune_context) {
  comm::Transport& transport = *context.transport;
  std::shared_ptr<const codec::Codec> chosen = codec;
  if (tuner != nullptr) {
    const tune::Decision d = tune_allreduce(*tuner, algorithm, t, data, transport.rank(),
                                            transport.size(), ef, scratch, tune_context);
    chosen = d.codec;
    scale_message(data, d.lr_scale);
  }
  return collective::allreduce(transport, data, *chosen,
                               {.algorithm = algorithm,
                                .reduction = collective::Reduction::kAverage,
                                .seed = context.seed,
                                .iteration = t,
                                .error_feedback = ef});
}

SyncSgd::SyncSgd(const AlgorithmContext& context, collective::AllreduceAlgorithm allreduce,
                 const PlannedCodec& codec, const optim::SgdOptions& sgd,
                 std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      allreduce_(allreduce),
      codec_(codec.codec),
      error_feedback_(allreduce_error_feedback(context, allreduce, codec)),
      optimizer_(context.dimension, sgd),
      tuner_(std::move(tuner)) {}

StepComm SyncSgd::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                       bool local_valid) {
  StepComm c = uncompressed_step(
      collective::uncompressed_allreduce(allreduce_, grad.size(), context_.transport->rank(),
                                         context_.transport->size(), context_.link));
  tune::TuneContext tune_context;
  if (tuner_) {
    const int size = context_.transport->size();
    tune_context = gradient_step_context(*tuner_, curvature_, optimizer_, t, model, grad,
                                         local_valid, collective::allreduce_shape(allreduce_, size),
                                         context_.transport->rank(), error_feedback_ != nullptr);
  }
  c.sent = tuned_allreduce(context_, allreduce_, t, grad, codec_, tuner_.get(),
                           error_feedback_.get(), tune_input_, tune_context);
  c.synchronized = true;
  last_norm_ = norm2(grad);
  optimizer_.step(model, grad, optimizer_.lr_at(t));
  return c;
}

void SyncSgd::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  save_error_feedback(state, error_feedback_.get());
  if (tuner_) save_curvature(state, curvature_);
}

void SyncSgd::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  load_error_feedback(state, error_feedback_.get());
  if (tuner_) load_curvature(state, curvature_);
}

}  // namespace thinwire::train
