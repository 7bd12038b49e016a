#include "plan.hpp"

#include <string>
#include <utility>

#include "thinwire/codec/registry.hpp"

namespace thinwire::train {

std::optional<SyncChoice> parse_sync(std::string_view sync) {
  if (sync == "allgather")
    return SyncChoice{.allreduce = collective::AllreduceAlgorithm::kAllgather};
  if (sync == "ring") return SyncChoice{.allreduce = collective::AllreduceAlgorithm::kRing};
  if (sync == "ps") return SyncChoice{.synchronizer = Synchronizer::kParameterServer};
  if (sync == "gossip") return SyncChoice{.synchronizer = Synchronizer::kGossip};
  return std::nullopt;
}

RunPlan make_run_plan(const TrainConfig& config, int world_size) {
  RunPlan plan;
  plan.algorithm = config.algorithm;
  const std::optional<SyncChoice> sync = parse_sync(config.sync);
  if (!sync) throw InvalidArgument("--sync: unknown value '" + config.sync + "'");
  plan.sync = *sync;
  if (sync->synchronizer == Synchronizer::kGossip) {
    plan.topology = for_flag("topology", [&] {
      return collective::Topology::parse(config.topology, world_size, config.seed);
    });
  }
  codec::CodecChoice choice = for_flag("codec", [&] { return codec::parse_codec(config.codec); });
  plan.codec = {.codec = std::move(choice.codec), .error_feedback = choice.error_feedback};
  plan.downlink =
      for_flag("downlink-codec", [&] { return codec::make_codec(config.downlink_codec); });
  plan.link = for_flag("link", [&] { return comm::LinkModel::parse(config.link); });
  const std::shared_ptr<tune::CostModel> cost =
      for_flag("cost", [&] { return tune::make_cost_model(config.cost); });
  plan.cost = cost;
  for (const std::string& spec : split_cost_specs(config.report_costs)) {
    plan.report_costs.push_back(
        for_flag("report-costs", [&] { return tune::make_cost_model(spec); }));
  }
  tune::TunerSettings tuner = tune::tuner_settings({.tuner = config.tuner,
                                                    .codec = config.codec,
                                                    .cost = config.cost,
                                                    .lr_coupling = config.lr_coupling,
                                                    .cost_model = cost});
  if (tuner.kind != tune::TunerKind::kFixed) plan.tuner = std::move(tuner);
  plan.sgd = {.lr = config.lr,
              .momentum = config.momentum,
              .nesterov = config.nesterov,
              .weight_decay = config.weight_decay,
              .lr_decay = config.lr_decay};
  plan.local_steps = config.local_steps;
  plan.gossip_lr = config.gossip_lr;
  return plan;
}

}  // namespace thinwire::train
