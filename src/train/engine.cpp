#include "thinwire/train/engine.hpp"

#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

#include "plan.hpp"
#include "thinwire/comm/threads.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/data/load.hpp"
#include "thinwire/data/shard.hpp"
#include "thinwire/train/checkpoint.hpp"

#if THINWIRE_HAVE_MPI
#include "thinwire/comm/mpi.hpp"
#endif

namespace thinwire::train {
TrainSetup prepare(TrainConfig config, int world_size) {
  if (world_size < 1) throw InvalidArgument("train: world size must be >= 1");
  config.workers = static_cast<std::uint64_t>(world_size);
  resolve(config);
  const auto m = static_cast<std::size_t>(world_size);

  TrainSetup setup;
  data::TrainTest data = for_flag("data", [&] { return data::load_dataset(config.data); });
  setup.train = std::move(data.train);
  setup.test = std::move(data.test);
  if (!config.test_data.empty()) {
    setup.test = for_flag("test-data", [&] { return data::load_dataset(config.test_data).train; });
  }
  if (setup.train.rows() == 0) {
    throw InvalidArgument("--data: the training set has no examples (an empty file?)");
  }
  if (setup.train.rows() < m) {
    throw InvalidArgument("--workers: " + std::to_string(world_size) + " workers for " +
                          std::to_string(setup.train.rows()) + " training examples");
  }
  if (!setup.test.empty() && setup.test.cols() != setup.train.cols()) {
    throw InvalidArgument("--test-data: the test set has " + std::to_string(setup.test.cols()) +
                          " features, the training set " + std::to_string(setup.train.cols()) +
                          " (for LIBSVM files use libsvm:path=TRAIN,test=TEST)");
  }
  setup.problem =
      for_flag("problem", [&] { return problem::make_problem(config.problem, setup.train); });
  // Every worker holds a model, a gradient and optimizer state of this size (and the data set
  // bounds its width): beyond 2^28 parameters (1 GiB each) a run is a mistake, not a job.
  constexpr std::size_t kMaxParameters = std::size_t{1} << 28;
  if (setup.problem->dim() > kMaxParameters) {
    throw InvalidArgument("--problem: the model has " + std::to_string(setup.problem->dim()) +
                          " parameters, more than the limit 2^28 (smaller hidden layers, or "
                          "fewer features or classes)");
  }
  if (!setup.test.empty() && setup.problem->is_classifier() &&
      setup.test.num_classes() > setup.problem->shape().classes) {
    throw InvalidArgument("--test-data: the test set has more classes than the training set");
  }
  setup.shards = for_flag(
      "sharding", [&] { return data::make_shards(setup.train, m, config.sharding, config.seed); });
  for (std::size_t r = 0; r < m; ++r) {
    if (setup.shards[r].empty()) {
      throw InvalidArgument("--sharding: worker " + std::to_string(r) + " got no examples");
    }
  }
  // The run plan is made again when the run starts, from setup.config as it is then (a caller may
  // change a setting after prepare); made here, its errors are usage errors found before any
  // rank starts.
  (void)make_run_plan(config, world_size);
  std::optional<CheckpointManifest> manifest;
  if (config.resume) {
    // Found here, before any thread or process starts, a mismatch is a usage error (each rank
    // checks again when it restores: the checkpoint may change in between).
    manifest = read_resume_manifest(config);
  }

  const std::uint64_t n = setup.train.rows();
  if (config.batch_size == 0) {
    setup.steps_per_epoch = 1;
  } else {
    // Both factors are bounded when parsed (2^40 and 4096), so the product cannot overflow; a
    // batch larger than the data set is one step per epoch, never zero.
    const std::uint64_t global_batch = config.batch_size * m;
    setup.steps_per_epoch = std::max<std::uint64_t>(1, (n + global_batch - 1) / global_batch);
  }
  if (config.iterations > 0) {
    setup.total_iterations = config.iterations;
  } else {
    const double steps = std::ceil(config.epochs * static_cast<double>(setup.steps_per_epoch));
    if (steps > 1099511627776.0) {  // 2^40, the bound of --iterations
      char epochs[32];
      std::snprintf(epochs, sizeof epochs, "%g", config.epochs);
      throw InvalidArgument("--epochs: " + std::string(epochs) + " epochs of " +
                            std::to_string(setup.steps_per_epoch) +
                            " steps are more than 2^40 iterations");
    }
    setup.total_iterations = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(steps));
  }
  if (manifest && manifest->iteration > setup.total_iterations) {
    throw InvalidArgument(
        std::string(config.iterations > 0 ? "--iterations" : "--epochs") + ": the checkpoint in " +
        config.checkpoint + " is at iteration " + std::to_string(manifest->iteration) +
        ", past this run's " + std::to_string(setup.total_iterations) +
        " iterations (resume with --iterations >= " + std::to_string(manifest->iteration) + ")");
  }
  setup.config = std::move(config);
  return setup;
}

TrainSummary train_threads(const TrainSetup& setup, TrainObserver* observer) {
  const int m = static_cast<int>(setup.config.workers);
  const RunPlan plan = make_run_plan(setup.config, m);  // one for every rank
  comm::ThreadsWorld data_world(
      {.size = m, .link = plan.link, .timeout = comm::kDefaultTimeout, .count_compute = true});
  // The control plane has no link model: its messages cost no simulated time.
  comm::ThreadsWorld control_world(
      {.size = m, .link = std::nullopt, .timeout = comm::kDefaultTimeout, .count_compute = false});

  TrainSummary summary;
  comm::ThreadsWorld* const worlds[] = {&data_world, &control_world};
  comm::run_threads(worlds, [&](int r) {
    TrainSummary mine = run_worker(setup, plan, data_world.transport(r), control_world.transport(r),
                                   r == 0 ? observer : nullptr);
    if (r == 0) summary = std::move(mine);
  });
  return summary;
}

#if THINWIRE_HAVE_MPI
TrainSummary train_mpi(const TrainSetup& setup, TrainObserver* observer) {
  comm::MpiTransport data_plane;
  comm::MpiTransport control_plane;
  if (static_cast<std::uint64_t>(data_plane.size()) != setup.config.workers) {
    throw InvalidArgument("train: prepared for " + std::to_string(setup.config.workers) +
                          " workers, MPI has " + std::to_string(data_plane.size()) + " ranks");
  }
  TrainSummary summary =
      run_worker(setup, data_plane, control_plane, data_plane.rank() == 0 ? observer : nullptr);
  data_plane.flush();
  control_plane.flush();
  return summary;
}
#endif

}  // namespace thinwire::train
