#include "ps_sgd.hpp"

#include <algorithm>
#include <cmath>

#include "thinwire/core/error.hpp"

namespace thinwire::train {

PsSgd::PsSgd(const AlgorithmContext& context, const PlannedCodec& uplink,
             std::shared_ptr<const codec::Codec> downlink, const optim::SgdOptions& sgd,
             std::span<const float> initial_model, std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      uplink_(uplink.codec),
      downlink_(std::move(downlink)),
      optimizer_(context.dimension, sgd),
      tuner_(std::move(tuner)) {
  if (uplink.error_feedback) {
    error_feedback_ = std::make_unique<codec::ErrorFeedback>(uplink_, context.dimension);
  }
  if (context.transport->rank() == collective::kServerRank) {
    server_model_.assign(initial_model.begin(), initial_model.end());
  }
}

StepComm PsSgd::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                     bool local_valid) {
  comm::Transport& transport = *context_.transport;
  const bool server = transport.rank() == collective::kServerRank;
  const collective::PsOptions options{
      .seed = context_.seed, .iteration = t, .error_feedback = error_feedback_.get()};

  StepComm c;
  c.synchronized = true;
  std::shared_ptr<const codec::Codec> uplink = uplink_;
  if (tuner_) {
    const collective::IterationShape shape{
        .pattern = collective::Pattern::kParameterServer,
        .size = transport.size(),
        .downlink_bytes = downlink_->max_encoded_bytes(grad.size())};
    const tune::TuneContext tune_context =
        gradient_step_context(*tuner_, curvature_, optimizer_, t, model, grad, local_valid, shape,
                              transport.rank(), error_feedback_ != nullptr);
    const tune::Decision d =
        tune_message(*tuner_, t, grad, error_feedback_.get(), tune_input_, tune_context);
    uplink = d.codec;
    scale_message(grad, d.lr_scale);
  }
  c.sent = collective::ps_gather_average(transport, grad, *uplink, options);
  if (server) {
    double s = 0;
    for (float g : grad) s += static_cast<double>(g) * static_cast<double>(g);
    last_norm_ = std::sqrt(s);
    optimizer_.step(server_model_, grad, optimizer_.lr_at(t));
  }
  c.sent +=
      collective::ps_broadcast_model(transport, server ? std::span<float>(server_model_) : model,
                                     *downlink_, downlink_state_, options);
  if (server)
    std::copy(downlink_state_.replica.begin(), downlink_state_.replica.end(), model.begin());

  const StepComm uncompressed = uncompressed_step(collective::uncompressed_parameter_server(
      grad.size(), transport.rank(), transport.size(), context_.link));
  c.identity_bytes = uncompressed.identity_bytes;
  c.identity_seconds = uncompressed.identity_seconds;
  return c;
}

std::span<const float> PsSgd::published(std::span<const float> model) const {
  return context_.transport->rank() == collective::kServerRank
             ? std::span<const float>(server_model_)
             : model;
}

void PsSgd::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  save_error_feedback(state, error_feedback_.get());
  if (tuner_) save_curvature(state, curvature_);
  state.put_floats("ps.server_model", server_model_);
  state.put_floats("ps.replica", downlink_state_.replica);
  state.put_u64("ps.rounds", downlink_state_.rounds);
}

void PsSgd::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  load_error_feedback(state, error_feedback_.get());
  if (tuner_) load_curvature(state, curvature_);
  server_model_ = state.get_floats("ps.server_model");
  downlink_state_.replica = state.get_floats("ps.replica");
  downlink_state_.rounds = state.get_u64("ps.rounds");
}

}  // namespace thinwire::train
