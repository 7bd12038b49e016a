#include "choco_sgd.hpp"

#include <string>

#include "local_sgd.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::train {

ChocoSgd::ChocoSgd(const AlgorithmContext& context, std::uint64_t local_steps,
                   collective::Topology topology, std::shared_ptr<const codec::Codec> codec,
                   double consensus_step, const optim::SgdOptions& sgd,
                   std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      local_steps_(local_steps),
      topology_(std::move(topology)),
      weights_(collective::metropolis_hastings_weights(topology_)),
      codec_(std::move(codec)),
      consensus_step_(consensus_step),
      optimizer_(context.dimension, sgd),
      tuner_(std::move(tuner)) {
  if (local_steps_ < 1) throw InvalidArgument("choco: local steps must be >= 1");
  if (codec_ == nullptr) throw InvalidArgument("choco: no codec");
}

StepComm ChocoSgd::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                        bool local_valid) {
  if (local_valid) optimizer_.step(model, grad, optimizer_.lr_at(t));
  if ((t + 1) % local_steps_ != 0) return {};
  comm::Transport& transport = *context_.transport;
  StepComm c = uncompressed_gossip_step(topology_, model.size(), transport.rank(), context_.link);
  const codec::Codec* codec = codec_.get();
  std::shared_ptr<const codec::Codec> tuned;
  if (tuner_) {
    // q_i = Q(x_i − y_i): the rule sees that difference (y_i = 0 before the first round).
    tune_input_.assign(model.begin(), model.end());
    if (state_.own_public.size() == model.size()) {
      for (std::size_t i = 0; i < model.size(); ++i) tune_input_[i] -= state_.own_public[i];
    }
    tuned = tuner_->decide(t, tune_input_).codec;
    codec = tuned.get();
  }
  c.sent = collective::choco_gossip(
      transport, model, topology_, weights_, *codec, state_,
      {.consensus_step = consensus_step_, .seed = context_.seed, .iteration = t});
  c.synchronized = true;
  return c;
}

bool ChocoSgd::consensus_after(std::uint64_t /*t*/) const {
  return context_.transport->size() == 1;
}

void ChocoSgd::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  state.put_floats("choco.own_public", state_.own_public);
  state.put_u64("choco.neighbors", state_.neighbor_public.size());
  for (std::size_t i = 0; i < state_.neighbor_public.size(); ++i) {
    state.put_floats("choco.neighbor." + std::to_string(i), state_.neighbor_public[i]);
  }
}

void ChocoSgd::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  state_.own_public = state.get_floats("choco.own_public");
  const std::uint64_t n = state.get_u64("choco.neighbors");
  if (n > static_cast<std::uint64_t>(topology_.size())) {
    throw IoError(state.source() + ": choco state has too many neighbours");
  }
  state_.neighbor_public.resize(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < state_.neighbor_public.size(); ++i) {
    state_.neighbor_public[i] = state.get_floats("choco.neighbor." + std::to_string(i));
  }
}

}  // namespace thinwire::train
