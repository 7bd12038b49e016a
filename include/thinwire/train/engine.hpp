// The training engine: loads the data, builds the problem, and runs one worker loop per rank —
// the same code on every backend (threads in one process, or one MPI process per rank).
//
// Per iteration t, on every rank m (worker loop, engine.cpp):
//   1. the minibatch of (seed, m, t) from the rank's shard (data/sampler.hpp), or the whole shard
//      for full-batch gradient descent (--batch-size 0; the gradient is weighted by M·n_m/n so the
//      synchronized average is the full-data gradient);
//   2. loss and gradient at the rank's model; a non-finite one stops the run (--on-nonfinite
//      error) or is zeroed and the local step skipped (skip);
//   3. Algorithm::step: synchronize and update (algorithm.hpp);
//   4. on log / evaluation / checkpoint iterations: statistics summed over ranks in rank order on
//      the control plane (control.hpp), the published model (averaged over ranks when they
//      disagree) evaluated on the test set by rank 0, a metrics record, a checkpoint.
// Everything in a record except sim_s and wall_s depends only on the configuration.
//
// Clocks: sim_s is the largest rank clock of the data plane (threads: simulated by the link
// model, SPEC §4; MPI: measured), wall_s rank 0's wall time. Test evaluation runs on a helper
// thread so that it is not charged to the simulated clock.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "thinwire/comm/transport.hpp"
#include "thinwire/data/dataset.hpp"
#include "thinwire/data/shard.hpp"
#include "thinwire/problem/problem.hpp"
#include "thinwire/train/config.hpp"

namespace thinwire::train {

// A configuration with its data and problem, ready to run on a world of `world_size` ranks.
struct TrainSetup {
  TrainConfig config;  // resolved; config.workers == world size
  data::Dataset train;
  data::Dataset test;                         // may be empty
  std::unique_ptr<problem::Problem> problem;  // prototype: every rank clones it
  std::vector<data::Shard> shards;            // one per rank
  std::uint64_t steps_per_epoch = 1;          // ⌈n / (M·b)⌉, 1 for full batch
  std::uint64_t total_iterations = 1;
};

// Resolves the configuration, loads the data, builds the problem and the shards. Throws
// InvalidArgument for bad settings or specs (naming the flag), IoError for unreadable or
// malformed files.
[[nodiscard]] TrainSetup prepare(TrainConfig config, int world_size);

// What rank 0 saw (other ranks return zeros and an empty model).
struct TrainSummary {
  std::uint64_t iterations = 0;  // completed, in total
  double epochs = 0;
  double final_loss = 0;  // training loss of the last record (NaN when unknown)
  std::optional<double> test_accuracy;
  std::optional<double> test_loss;
  std::uint64_t bits = 0;               // sent by all workers
  std::uint64_t bits_uncompressed = 0;  // the same messages with the identity codec
  double cost = 0;                      // Σ C(bits) of all messages under --cost
  double sim_s = 0;                     // largest rank clock
  double comm_s = 0;                    // rank 0's clock time inside synchronizations
  double comm_uncompressed_s = 0;       // modelled time of the uncompressed messages
  double wall_s = 0;
  std::uint64_t skipped = 0;       // worker steps skipped for a non-finite gradient
  std::uint64_t resumed_from = 0;  // iteration the run was resumed at (0: fresh)
  std::string codec;
  std::vector<float> model;  // the final published model (rank 0)
};

// Sees the run from rank 0 (progress display). Called on rank 0's thread.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const TrainSetup& /*setup*/, std::uint64_t /*first_iteration*/) {}
  virtual void on_record(const nlohmann::json& /*record*/) {}
};

// One rank's worker loop over a data plane and a control plane of the same world (rank and size
// from the data plane). `observer` is used on rank 0 only and may be null.
TrainSummary run_worker(const TrainSetup& setup, comm::Transport& data_plane,
                        comm::Transport& control_plane, TrainObserver* observer);

// The threads backend: M = setup.config.workers ranks in this process, the data plane under the
// configured link model. Rethrows the first rank's failure.
TrainSummary train_threads(const TrainSetup& setup, TrainObserver* observer = nullptr);

#if THINWIRE_HAVE_MPI
// The MPI backend: this process is one rank of MPI_COMM_WORLD (MPI already initialized).
TrainSummary train_mpi(const TrainSetup& setup, TrainObserver* observer = nullptr);
#endif

}  // namespace thinwire::train
