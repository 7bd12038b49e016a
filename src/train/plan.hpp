// The run plan: a resolved TrainConfig turned, once, into the typed objects a run is built from —
// the algorithm, how it synchronizes, the codecs, the link, the cost models and the tuner. The
// configuration's spec strings are read here and in resolve() (config.cpp), which checks them;
// the algorithm factory, the engine and the worker loop take those objects from the plan (and
// only numbers, switches and file paths from the configuration), so what a spec means is decided
// in one place. The objects a plan holds are immutable (codecs, the cost model prototypes, tuner
// settings), so one plan serves every rank of a threads world.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/comm/link_model.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/optim/sgd.hpp"
#include "thinwire/train/algorithm.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/engine.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/tuner.hpp"

namespace thinwire::train {

// How the ranks exchange what they send (--sync).
enum class Synchronizer : std::uint8_t {
  kAllreduce,        // allgather | ring: a compressed all-reduce (collective/allreduce.hpp)
  kParameterServer,  // ps: gradients to rank 0, the model back (collective/parameter_server.hpp)
  kGossip,           // gossip: a round with the neighbours in --topology (collective/gossip.hpp)
};

struct SyncChoice {
  Synchronizer synchronizer = Synchronizer::kAllreduce;
  collective::AllreduceAlgorithm allreduce = collective::AllreduceAlgorithm::kRing;  // kAllreduce
};
// The meaning of a --sync value after resolve() has split off "gossip:TOPOLOGY": allgather, ring,
// ps or gossip; nullopt for any other text. The one place that reads --sync's words.
[[nodiscard]] std::optional<SyncChoice> parse_sync(std::string_view sync);

// A codec of the plan: shared, since codecs are immutable (codec.hpp), and whether the sender
// wraps it in error feedback ("+ef").
struct PlannedCodec {
  std::shared_ptr<const codec::Codec> codec;
  bool error_feedback = false;
};

struct RunPlan {
  AlgorithmKind algorithm = AlgorithmKind::kSgd;
  SyncChoice sync;
  std::optional<collective::Topology> topology;  // Synchronizer::kGossip: the graph of the world
  PlannedCodec codec;                            // what is sent
  std::shared_ptr<const codec::Codec> downlink;  // the parameter server's model broadcast
  comm::LinkModel link;                          // the simulated clock's link
  // --cost and --report-costs as prototypes: every rank prices with copies of its own, since
  // --cost auto learns its estimate from the rank's messages (tune/online_link.hpp).
  std::shared_ptr<const tune::CostModel> cost;
  std::vector<std::shared_ptr<const tune::CostModel>> report_costs;
  // Every rank's tuner is built from these; nullopt for --tuner fixed, where the configured codec
  // is used as is and there is no decision to log.
  std::optional<tune::TunerSettings> tuner;
  optim::SgdOptions sgd;
  std::uint64_t local_steps = 1;  // H
  double gossip_lr = 0.5;         // CHOCO's consensus step
};

// Runs fn, prefixing the message of an InvalidArgument with the flag it came from (unless the
// message names one already).
template <typename Fn>
auto for_flag(std::string_view flag, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    if (what.starts_with("--")) throw;
    throw InvalidArgument("--" + std::string(flag) + ": " + what);
  }
}

// The plan of a resolved configuration (resolve()) on a world of `world_size` ranks. Throws
// InvalidArgument naming the flag for what resolve() cannot see (a topology that does not fit
// the world size).
[[nodiscard]] RunPlan make_run_plan(const TrainConfig& config, int world_size);

// Builds the algorithm the plan names; `initial_model` is the common starting point.
[[nodiscard]] std::unique_ptr<Algorithm> make_algorithm(const RunPlan& plan,
                                                        const AlgorithmContext& context,
                                                        std::span<const float> initial_model);

// The worker loop of engine.hpp (run_worker) on a plan made from setup.config for this world.
TrainSummary run_worker(const TrainSetup& setup, const RunPlan& plan, comm::Transport& data_plane,
                        comm::Transport& control_plane, TrainObserver* observer);

}  // namespace thinwire::train
