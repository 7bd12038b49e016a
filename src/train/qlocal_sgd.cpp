#include "qlocal_sgd.hpp"

#include <algorithm>

#include "sync_sgd.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::train {

QlocalSgd::QlocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
                     collective::AllreduceAlgorithm allreduce, const PlannedCodec& codec,
                     const optim::SgdOptions& sgd, std::span<const float> initial_model,
                     std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      local_steps_(local_steps),
      allreduce_(allreduce),
      codec_(codec.codec),
      error_feedback_(allreduce_error_feedback(context, allreduce, codec)),
      optimizer_(context.dimension, sgd),
      anchor_(initial_model.begin(), initial_model.end()),
      tuner_(std::move(tuner)) {
  if (local_steps_ < 1) throw InvalidArgument("qlocal-sgd: local steps must be >= 1");
  if (anchor_.size() != context.dimension) {
    throw InvalidArgument("qlocal-sgd: initial model has the wrong length");
  }
}

StepComm QlocalSgd::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                         bool local_valid) {
  if (local_valid) optimizer_.step(model, grad, optimizer_.lr_at(t));
  if ((t + 1) % local_steps_ != 0) return {};
  comm::Transport& transport = *context_.transport;
  // The change since the last synchronized model; grad is free scratch of the right length.
  std::span<float> delta = grad;
  for (std::size_t i = 0; i < delta.size(); ++i) delta[i] = model[i] - anchor_[i];
  StepComm c = uncompressed_step(collective::uncompressed_allreduce(
      allreduce_, model.size(), transport.rank(), transport.size(), context_.link));
  c.sent = tuned_allreduce(context_, allreduce_, t, delta, codec_, tuner_.get(),
                           error_feedback_.get(), tune_input_);
  for (std::size_t i = 0; i < delta.size(); ++i) anchor_[i] += delta[i];
  std::copy(anchor_.begin(), anchor_.end(), model.begin());
  c.synchronized = true;
  return c;
}

void QlocalSgd::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  save_error_feedback(state, error_feedback_.get());
  state.put_floats("qlocal.anchor", anchor_);
}

void QlocalSgd::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  load_error_feedback(state, error_feedback_.get());
  std::vector<float> anchor = state.get_floats("qlocal.anchor");
  if (anchor.size() != anchor_.size()) {
    throw IoError(state.source() + ": qlocal anchor has the wrong length");
  }
  anchor_ = std::move(anchor);
}

}  // namespace thinwire::train
