#include "synchronizer.hpp"

#include <algorithm>
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

// Uncompressed estimate of one gossip round of d elements on `rank` (deg messages; the
// schedule's rounds are the critical path).
StepComm uncompressed_gossip_step(const collective::Topology& topology, std::size_t d, int rank,
                                  const comm::LinkModel& link) {
  return uncompressed_step(
      collective::uncompressed_gossip(d, topology.degree(rank), topology.schedule_rounds(), link));
}

// Whether `route` can carry `exchange` (the overview's table: the gradient by all-reduce or the
// parameter server, the model by all-reduce or exact gossip, the change by all-reduce, x − y by
// CHOCO gossip).
bool carries(const Route& route, Exchange exchange) {
  switch (exchange) {
    case Exchange::kGradient:
      return std::holds_alternative<AllreduceRoute>(route) ||
             std::holds_alternative<ParameterServerRoute>(route);
    case Exchange::kModel:
      return std::holds_alternative<AllreduceRoute>(route) ||
             std::holds_alternative<ExactGossipRoute>(route);
    case Exchange::kChange:
      return std::holds_alternative<AllreduceRoute>(route);
    case Exchange::kPublicDifference:
      return std::holds_alternative<ChocoGossipRoute>(route);
  }
  return false;
}

// This rank's error-feedback residual for what `route` sends, when `codec` asks for one: the
// all-reduce's (its length is the collective's), the parameter server's uplink (d); gossip has
// none (CHOCO's public copies are its error feedback).
Residual residual_for(const AlgorithmContext& context, const Route& route,
                      const PlannedCodec& codec) {
  if (const auto* allreduce = std::get_if<AllreduceRoute>(&route)) {
    return allreduce_error_feedback(context, allreduce->algorithm, codec);
  }
  if (std::holds_alternative<ParameterServerRoute>(route) && codec.error_feedback) {
    return std::make_unique<codec::ErrorFeedback>(codec.codec, context.dimension);
  }
  return {};
}

// The route of plan.sync for what `exchange` names: all-reduce, the parameter server, or gossip
// (exact for the model, CHOCO otherwise).
Route route_of(const RunPlan& plan, Exchange exchange) {
  switch (plan.sync.synchronizer) {
    case Synchronizer::kAllreduce:
      return AllreduceRoute{.algorithm = plan.sync.allreduce};
    case Synchronizer::kParameterServer:
      return ParameterServerRoute{.downlink = plan.downlink};
    case Synchronizer::kGossip:
      if (exchange == Exchange::kModel) return ExactGossipRoute{.topology = *plan.topology};
      return ChocoGossipRoute{.topology = *plan.topology, .consensus_step = plan.gossip_lr};
  }
  throw InvalidArgument("make_algorithm: unknown synchronizer");
}

// H local steps, then `exchange` by the route of plan.sync.
SyncComposition periodic(const RunPlan& plan, std::string name, Exchange exchange) {
  return {.name = std::move(name),
          .period = plan.local_steps,
          .exchange = exchange,
          .route = route_of(plan, exchange),
          .codec = plan.codec};
}

}  // namespace

SyncComposition sgd_preset(const RunPlan& plan) {
  // Gossip does not average a gradient: sgd there is D-PSGD, a local step and a mixing round.
  const bool gossip = plan.sync.synchronizer == Synchronizer::kGossip;
  SyncComposition c = periodic(plan, "sgd", gossip ? Exchange::kModel : Exchange::kGradient);
  c.period = 1;
  return c;
}

SyncComposition local_sgd_preset(const RunPlan& plan) {
  return periodic(plan, "local-sgd", Exchange::kModel);
}

SyncComposition qlocal_sgd_preset(const RunPlan& plan) {
  // In the gossip paradigm the change is exchanged with the neighbours: CHOCO with H local steps.
  const bool gossip = plan.sync.synchronizer == Synchronizer::kGossip;
  return periodic(plan, "qlocal-sgd", gossip ? Exchange::kPublicDifference : Exchange::kChange);
}

SyncComposition choco_preset(const RunPlan& plan) {
  return periodic(plan, "choco", Exchange::kPublicDifference);
}

SyncComposition preset_of(const RunPlan& plan) {
  switch (plan.algorithm) {
    case AlgorithmKind::kSgd:
      return sgd_preset(plan);
    case AlgorithmKind::kLocalSgd:
      return local_sgd_preset(plan);
    case AlgorithmKind::kQlocalSgd:
      return qlocal_sgd_preset(plan);
    case AlgorithmKind::kChoco:
      return choco_preset(plan);
  }
  throw InvalidArgument("make_algorithm: unknown algorithm");
}

bool compresses(const Route& route) noexcept {
  return !std::holds_alternative<ExactGossipRoute>(route);
}

ComposedSync::ComposedSync(const AlgorithmContext& context, SyncComposition composition,
                           const optim::SgdOptions& sgd, std::span<const float> initial_model,
                           std::unique_ptr<tune::Tuner> tuner)
    : context_(context),
      name_(std::move(composition.name)),
      period_(composition.period),
      exchange_(composition.exchange),
      route_(std::move(composition.route)),
      sender_(composition.codec.codec, residual_for(context, route_, composition.codec),
              std::move(tuner), exchange_ == Exchange::kGradient),
      optimizer_(context.dimension, sgd) {
  if (period_ < 1) throw InvalidArgument(name_ + ": local steps must be >= 1");
  if (exchange_ == Exchange::kGradient && period_ != 1) {
    throw InvalidArgument(name_ + ": a gradient is exchanged every step");
  }
  if (!carries(route_, exchange_)) {
    throw InvalidArgument(name_ + ": the synchronizer cannot carry what is exchanged");
  }
  if (compresses(route_) && composition.codec.codec == nullptr) {
    throw InvalidArgument(name_ + ": no codec");
  }
  if (exchange_ == Exchange::kChange) {
    anchor_.assign(initial_model.begin(), initial_model.end());
    if (anchor_.size() != context.dimension) {
      throw InvalidArgument(name_ + ": initial model has the wrong length");
    }
  }
  if (const auto* gossip = std::get_if<ExactGossipRoute>(&route_)) {
    weights_ = collective::metropolis_hastings_weights(gossip->topology);
  } else if (const auto* choco = std::get_if<ChocoGossipRoute>(&route_)) {
    weights_ = collective::metropolis_hastings_weights(choco->topology);
  } else if (const auto* ps = std::get_if<ParameterServerRoute>(&route_)) {
    if (ps->downlink == nullptr) throw InvalidArgument(name_ + ": no downlink codec");
    if (server()) server_model_.assign(initial_model.begin(), initial_model.end());
  }
}

bool ComposedSync::server() const noexcept {
  return std::holds_alternative<ParameterServerRoute>(route_) &&
         context_.transport->rank() == collective::kServerRank;
}

StepComm ComposedSync::step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                            bool local_valid) {
  if (exchange_ != Exchange::kGradient) {
    if (local_valid) optimizer_.step(model, grad, optimizer_.lr_at(t));
    if (!synchronizes_after(t)) return {};
  }
  const std::span<float> message = form_message(model, grad);
  const tune::TuneContext tune_context = step_context(t, model, grad, local_valid);
  StepComm c = std::visit(
      [&](const auto& route) { return exchange(route, t, model, message, tune_context); }, route_);
  c.synchronized = true;
  if (exchange_ == Exchange::kChange) {
    // x̄ ← x̄ + (1/M)·Σ_m Q(Δ_m), and every worker restarts from it.
    for (std::size_t i = 0; i < message.size(); ++i) anchor_[i] += message[i];
    std::copy(anchor_.begin(), anchor_.end(), model.begin());
  }
  return c;
}

std::span<float> ComposedSync::form_message(std::span<float> model, std::span<float> grad) {
  switch (exchange_) {
    case Exchange::kGradient:
      return grad;
    case Exchange::kModel:
      return model;
    case Exchange::kChange:
      for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = model[i] - anchor_[i];
      return grad;
    case Exchange::kPublicDifference:
      // The round encodes x_i − y_i itself; this copy is what the tuner sees (y_i = 0 before the
      // first round).
      if (choco_.own_public.size() == model.size()) {
        for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = model[i] - choco_.own_public[i];
      } else {
        std::copy(model.begin(), model.end(), grad.begin());
      }
      return grad;
  }
  return grad;
}

tune::TuneContext ComposedSync::step_context(std::uint64_t t, std::span<const float> model,
                                             std::span<const float> grad, bool valid) {
  if (exchange_ != Exchange::kGradient || sender_.tuner() == nullptr) return {};
  const int rank = context_.transport->rank();
  const int size = context_.transport->size();
  collective::IterationShape shape;
  if (const auto* ps = std::get_if<ParameterServerRoute>(&route_)) {
    shape = {.pattern = collective::Pattern::kParameterServer,
             .size = size,
             .downlink_bytes = ps->downlink->max_encoded_bytes(grad.size())};
  } else {
    shape = collective::allreduce_shape(std::get<AllreduceRoute>(route_).algorithm, size);
  }
  return sender_.gradient_context(optimizer_, t, model, grad, valid, shape, rank);
}

void ComposedSync::apply_gradient(std::uint64_t t, std::span<float> target,
                                  std::span<const float> g) {
  last_norm_ = norm2(g);
  optimizer_.step(target, g, optimizer_.lr_at(t));
}

StepComm ComposedSync::exchange(const AllreduceRoute& route, std::uint64_t t,
                                std::span<float> model, std::span<float> message,
                                const tune::TuneContext& tune_context) {
  comm::Transport& transport = *context_.transport;
  StepComm c = uncompressed_step(collective::uncompressed_allreduce(
      route.algorithm, message.size(), transport.rank(), transport.size(), context_.link));
  const std::shared_ptr<const codec::Codec> codec = sender_.prepare_allreduce(
      route.algorithm, t, message, transport.rank(), transport.size(), tune_context);
  c.sent = collective::allreduce(transport, message, *codec,
                                 {.algorithm = route.algorithm,
                                  .reduction = collective::Reduction::kAverage,
                                  .seed = context_.seed,
                                  .iteration = t,
                                  .error_feedback = sender_.allreduce_residual()});
  if (exchange_ == Exchange::kGradient) apply_gradient(t, model, message);
  return c;
}

StepComm ComposedSync::exchange(const ExactGossipRoute& route, std::uint64_t /*t*/,
                                std::span<float> model, std::span<float> /*message*/,
                                const tune::TuneContext& /*tune_context*/) {
  comm::Transport& transport = *context_.transport;
  StepComm c =
      uncompressed_gossip_step(route.topology, model.size(), transport.rank(), context_.link);
  c.sent = collective::gossip_average(transport, model, route.topology, weights_);
  return c;
}

StepComm ComposedSync::exchange(const ChocoGossipRoute& route, std::uint64_t t,
                                std::span<float> model, std::span<float> message,
                                const tune::TuneContext& /*tune_context*/) {
  comm::Transport& transport = *context_.transport;
  StepComm c =
      uncompressed_gossip_step(route.topology, model.size(), transport.rank(), context_.link);
  const std::shared_ptr<const codec::Codec> codec = sender_.choose(t, message);
  c.sent = collective::choco_gossip(
      transport, model, route.topology, weights_, *codec, choco_,
      {.consensus_step = route.consensus_step, .seed = context_.seed, .iteration = t});
  return c;
}

StepComm ComposedSync::exchange(const ParameterServerRoute& route, std::uint64_t t,
                                std::span<float> model, std::span<float> message,
                                const tune::TuneContext& tune_context) {
  comm::Transport& transport = *context_.transport;
  const collective::PsOptions options{
      .seed = context_.seed, .iteration = t, .error_feedback = sender_.residual()};
  StepComm c = uncompressed_step(collective::uncompressed_parameter_server(
      message.size(), transport.rank(), transport.size(), context_.link));
  const std::shared_ptr<const codec::Codec> uplink = sender_.prepare(t, message, tune_context);
  c.sent = collective::ps_gather_average(transport, message, *uplink, options);
  if (server()) apply_gradient(t, server_model_, message);
  c.sent +=
      collective::ps_broadcast_model(transport, server() ? std::span<float>(server_model_) : model,
                                     *route.downlink, downlink_, options);
  if (server()) std::copy(downlink_.replica.begin(), downlink_.replica.end(), model.begin());
  return c;
}

bool ComposedSync::consensus_after(std::uint64_t t) const {
  if (context_.transport->size() == 1) return true;
  // An all-reduce or the parameter server leaves every rank with the same model; a gossip round
  // only brings them closer.
  const bool agrees = std::holds_alternative<AllreduceRoute>(route_) ||
                      std::holds_alternative<ParameterServerRoute>(route_);
  return agrees && synchronizes_after(t);
}

std::span<const float> ComposedSync::published(std::span<const float> model) const {
  return server() ? std::span<const float>(server_model_) : model;
}

int ComposedSync::tuning_rank() const noexcept {
  return std::holds_alternative<ParameterServerRoute>(route_) && context_.transport->size() > 1 ? 1
                                                                                                : 0;
}

void ComposedSync::save(StateBundle& state) const {
  save_optimizer(state, optimizer_);
  sender_.save(state);
  if (exchange_ == Exchange::kChange) state.put_floats("qlocal.anchor", anchor_);
  if (std::holds_alternative<ChocoGossipRoute>(route_)) {
    state.put_floats("choco.own_public", choco_.own_public);
    state.put_u64("choco.neighbors", choco_.neighbor_public.size());
    for (std::size_t i = 0; i < choco_.neighbor_public.size(); ++i) {
      state.put_floats("choco.neighbor." + std::to_string(i), choco_.neighbor_public[i]);
    }
  }
  if (std::holds_alternative<ParameterServerRoute>(route_)) {
    state.put_floats("ps.server_model", server_model_);
    state.put_floats("ps.replica", downlink_.replica);
    state.put_u64("ps.rounds", downlink_.rounds);
  }
}

void ComposedSync::load(const StateBundle& state) {
  load_optimizer(state, optimizer_);
  sender_.load(state);
  if (exchange_ == Exchange::kChange) {
    std::vector<float> anchor = state.get_floats("qlocal.anchor");
    if (anchor.size() != anchor_.size()) {
      throw IoError(state.source() + ": qlocal anchor has the wrong length");
    }
    anchor_ = std::move(anchor);
  }
  if (const auto* choco = std::get_if<ChocoGossipRoute>(&route_)) {
    choco_.own_public = state.get_floats("choco.own_public");
    const std::uint64_t n = state.get_u64("choco.neighbors");
    if (n > static_cast<std::uint64_t>(choco->topology.size())) {
      throw IoError(state.source() + ": choco state has too many neighbours");
    }
    choco_.neighbor_public.resize(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < choco_.neighbor_public.size(); ++i) {
      choco_.neighbor_public[i] = state.get_floats("choco.neighbor." + std::to_string(i));
    }
  }
  if (std::holds_alternative<ParameterServerRoute>(route_)) {
    server_model_ = state.get_floats("ps.server_model");
    downlink_.replica = state.get_floats("ps.replica");
    downlink_.rounds = state.get_u64("ps.rounds");
  }
}

}  // namespace thinwire::train
