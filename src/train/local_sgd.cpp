#include "local_sgd.hpp"

#include "sync_sgd.hpp"
#include "thinwire/collective/gossip.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::train {

StepComm uncompressed_gossip_step(const collective::Topology& topology, std::size_t d, int rank,
                                  const comm::LinkModel& link) {
  return uncompressed_step(
      collective::uncompressed_gossip(d, topology.degree(rank), topology.schedule_rounds(), link));
}

LocalSgd::LocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
                   collective::AllreduceAlgorithm allreduce, const PlannedCodec& codec,
                   const optim::SgdOptions& sgd, std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      local_steps_(local_steps),
      gossip_(false),
      allreduce_(allreduce),
      codec_(codec.codec),
      error_feedback_(allreduce_error_feedback(context, allreduce, codec)),
      optimizer_(context.dimension, sgd),
      tuner_(std::move(tuner)) {
  if (local_steps_ < 1) throw InvalidArgument("local-sgd: local steps must be >= 1");
}

LocalSgd::LocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
                   collective::Topology topology, const optim::SgdOptions& sgd)
    : context_(context),
      local_steps_(local_steps),
      gossip_(true),
      topology_(std::move(topology)),
      weights_(collective::metropolis_hastings_weights(*topology_)),
      optimizer_(context.dimension, sgd) {
  if (local_steps_ < 1) throw InvalidArgument("local-sgd: local steps must be >= 1");
}

StepComm LocalSgd::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                        bool local_valid) {
  if (local_valid) optimizer_.step(model, grad, optimizer_.lr_at(t));
  if (!synchronizes_after(t)) return {};
  comm::Transport& transport = *context_.transport;
  StepComm c;
  if (gossip_) {
    c = uncompressed_gossip_step(*topology_, model.size(), transport.rank(), context_.link);
    c.sent = collective::gossip_average(transport, model, *topology_, weights_);
  } else {
    c = uncompressed_step(collective::uncompressed_allreduce(
        allreduce_, model.size(), transport.rank(), transport.size(), context_.link));
    c.sent = tuned_allreduce(context_, allreduce_, t, model, codec_, tuner_.get(),
                             error_feedback_.get(), tune_input_);
  }
  c.synchronized = true;
  return c;
}

bool LocalSgd::consensus_after(std::uint64_t t) const {
  if (context_.transport->size() == 1) return true;
  return !gossip_ && synchronizes_after(t);
}

void LocalSgd::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  save_error_feedback(state, error_feedback_.get());
}

void LocalSgd::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  load_error_feedback(state, error_feedback_.get());
}

}  // namespace thinwire::train
