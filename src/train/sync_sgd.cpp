#include "thinwire/train/sync_sgd.hpp"

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

StepComm identity_allreduce_cost(collective::AllreduceAlgorithm algorithm, std::size_t d, int rank,
                                 int size, const comm::LinkModel& link) {
  StepComm c;
  if (size <= 1) return c;
  const auto hops = static_cast<double>(size - 1);
  if (algorithm == collective::AllreduceAlgorithm::kRing) {
    // Reduce-scatter sends every chunk but the owned one (rank+1), the all-gather every chunk but
    // rank+2's (collective/allreduce.cpp); 2(M−1) hops of the largest chunk on the critical path.
    const int owned = (rank + 1) % size;
    const int last = (rank + 2) % size;
    for (int chunk = 0; chunk < size; ++chunk) {
      const std::uint64_t bytes =
          identity_message_bytes(collective::balanced_chunk(d, size, chunk).size);
      if (chunk != owned) c.identity_bytes += bytes;
      if (chunk != last) c.identity_bytes += bytes;
    }
    const std::size_t largest = collective::balanced_chunk(d, size, 0).size;
    c.identity_seconds = 2 * hops * link.message_seconds(identity_message_bytes(largest));
    return c;
  }
  // All-gather around the ring: M−1 forwarded full messages per rank, M−1 hops.
  const std::uint64_t bytes = identity_message_bytes(d);
  c.identity_bytes = static_cast<std::uint64_t>(size - 1) * bytes;
  c.identity_seconds = hops * link.message_seconds(bytes);
  return c;
}

tune::Decision tune_allreduce(tune::Tuner& tuner, collective::AllreduceAlgorithm algorithm,
                              std::uint64_t t, std::span<const float> data, int rank, int size,
                              const codec::ErrorFeedback* ef, std::vector<float>& scratch) {
  if (algorithm == collective::AllreduceAlgorithm::kRing) {
    const collective::Chunk own = collective::balanced_chunk(data.size(), size, rank);
    // d < M leaves some chunks empty, and a level for zero elements is no codec: such a rank
    // tunes on its whole vector instead (its later hops carry other, non-empty chunks).
    if (own.size > 0) return tuner.decide(t, data.subspan(own.begin, own.size));
    return tuner.decide(t, data);
  }
  return tune_message(tuner, t, data, ef, scratch);
}

collective::Result tuned_allreduce(const AlgorithmContext& context,
                                   collective::AllreduceAlgorithm algorithm, std::uint64_t t,
                                   std::span<float> data,
                                   const std::shared_ptr<const codec::Codec>& codec,
                                   tune::Tuner* tuner, codec::ErrorFeedback* ef,
                                   std::vector<float>& scratch) {
  comm::Transport& transport = *context.transport;
  std::shared_ptr<const codec::Codec> chosen = codec;
  if (tuner != nullptr) {
    const tune::Decision d =
        tune_allreduce(*tuner, algorithm, t, data, transport.rank(), transport.size(), ef, scratch);
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
                 const codec::CodecChoice& codec, const optim::SgdOptions& sgd,
                 std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      allreduce_(allreduce),
      codec_(codec::make_codec(codec.codec->spec())),
      optimizer_(context.dimension, sgd),
      tuner_(std::move(tuner)) {
  if (codec.error_feedback) {
    std::size_t length = context.dimension;
    if (allreduce == collective::AllreduceAlgorithm::kRing) {
      const int size = context.transport->size();
      length =
          collective::balanced_chunk(context.dimension, size,
                                     collective::ring_owned_chunk(context.transport->rank(), size))
              .size;
    }
    error_feedback_ = codec::make_error_feedback(codec, length);
  }
}

StepComm SyncSgd::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                       bool /*local_valid*/) {
  StepComm c = identity_allreduce_cost(allreduce_, grad.size(), context_.transport->rank(),
                                       context_.transport->size(), context_.link);
  c.sent = tuned_allreduce(context_, allreduce_, t, grad, codec_, tuner_.get(),
                           error_feedback_.get(), tune_input_);
  c.synchronized = true;
  last_norm_ = norm2(grad);
  optimizer_.step(model, grad);
  return c;
}

void SyncSgd::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  save_error_feedback(state, error_feedback_.get());
}

void SyncSgd::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  load_error_feedback(state, error_feedback_.get());
}

}  // namespace thinwire::train
