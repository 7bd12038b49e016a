// `thinwire train`: the main job (SPEC §6). Thin on purpose: read --config, apply the flags on
// top, resolve the TrainConfig (usage errors, exit 2), prepare data and problem, run the engine on
// the chosen backend, print the summary. Everything else lives in thinwire::train.
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli_common.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/engine.hpp"
#include "thinwire/train/report.hpp"

#if THINWIRE_HAVE_MPI
#include "thinwire/comm/mpi.hpp"
#endif

namespace thinwire::cli {
namespace {

struct TrainCli {
  std::string config_file;
  std::string progress = "auto";
  std::map<std::string, std::string> values;  // flag name -> text, for the options given
  std::vector<std::pair<std::string, CLI::Option*>> options;
};

train::ProgressStyle progress_style(const std::string& name) {
  if (name == "bar") return train::ProgressStyle::kBar;
  if (name == "lines") return train::ProgressStyle::kLines;
  if (name == "none") return train::ProgressStyle::kNone;
  return train::ProgressStyle::kAuto;
}

// Defaults, then the TOML file, then the flags given on the command line.
train::TrainConfig build_config(const TrainCli& cli) {
  train::TrainConfig config;
  if (!cli.config_file.empty()) {
    as_usage("--config", [&] { train::apply_toml_file(config, cli.config_file); });
  }
  for (const auto& [name, option] : cli.options) {
    if (option->count() == 0) continue;
    const auto value = cli.values.find(name);
    const std::string text = value == cli.values.end() ? "true" : value->second;  // a flag
    try {
      train::set_config_field(config, name, text);
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();  // most messages already name the flag
      throw UsageError(what.starts_with("--") ? what : "--" + name + ": " + what);
    }
  }
  try {
    train::resolve(config);
  } catch (const InvalidArgument& e) {
    throw UsageError(e.what());  // already names the flag
  }
  return config;
}

// Data loading and problem building: bad specs are usage errors, unreadable files runtime ones.
train::TrainSetup prepare_or_usage(train::TrainConfig config, int world) {
  try {
    return train::prepare(std::move(config), world);
  } catch (const InvalidArgument& e) {
    throw UsageError(e.what());
  }
}

void run_threads(const train::TrainConfig& config, const TrainCli& cli) {
  const train::TrainSetup setup = prepare_or_usage(config, static_cast<int>(config.workers));
  train::ProgressDisplay progress(stderr, progress_style(cli.progress));
  const train::TrainSummary summary = train::train_threads(setup, &progress);
  progress.close();
  std::cout << train::format_summary(setup, summary) << std::flush;
}

void run_mpi(train::TrainConfig config, const TrainCli& cli, bool workers_given) {
#if THINWIRE_HAVE_MPI
  comm::MpiSession session(nullptr, nullptr);
  try {
    const int world = session.size();
    if (workers_given && config.workers != static_cast<std::uint64_t>(world)) {
      throw UsageError("--workers: " + std::to_string(config.workers) + " given, but MPI started " +
                       std::to_string(world) + " ranks (under mpirun the world size is -n)");
    }
    const train::TrainSetup setup = prepare_or_usage(std::move(config), world);
    const bool root = session.rank() == 0;
    train::ProgressDisplay progress(
        stderr, root ? progress_style(cli.progress) : train::ProgressStyle::kNone);
    const train::TrainSummary summary = train::train_mpi(setup, &progress);
    progress.close();
    if (root) std::cout << train::format_summary(setup, summary) << std::flush;
  } catch (const std::exception& e) {
    // A rank that stops alone would leave its peers waiting: take the whole job down.
    comm::abort_world(e);
  }
#else
  (void)config;
  (void)cli;
  (void)workers_given;
  throw UsageError(
      "--backend: this thinwire was built without MPI (install libopenmpi-dev and "
      "rebuild)");
#endif
}

void run_train(const TrainCli& cli) {
  const train::TrainConfig config = build_config(cli);
  if (config.backend == train::Backend::kMpi) {
    bool workers_given = false;
    for (const auto& [name, option] : cli.options) {
      if (name == "workers" && option->count() > 0) workers_given = true;
    }
    run_mpi(config, cli, workers_given);
  } else {
    run_threads(config, cli);
  }
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto cli = std::make_shared<TrainCli>();
  CLI::App* cmd = app.add_subcommand(
      "train", "Train a model with compressed communication (threads or MPI workers)");
  cmd->add_option("--config", cli->config_file,
                  "TOML file of settings (keys are the flags without --); flags override it")
      ->type_name("FILE");
  const train::TrainConfig defaults;
  const nlohmann::json shown = train::to_json(defaults);
  for (const train::ConfigField& field : train::config_fields()) {
    const std::string name(field.name);
    std::string help(field.help);
    if (field.type == "BOOL") {
      cli->options.emplace_back(name, cmd->add_flag("--" + name)->description(help));
      continue;
    }
    const nlohmann::json& value = shown.at(name);
    const std::string default_text = value.is_string() ? value.get<std::string>() : value.dump();
    if (!default_text.empty()) help += " [" + default_text + "]";
    CLI::Option* option =
        cmd->add_option("--" + name, cli->values[name], help)
            ->type_name(std::string(field.type))
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the last one wins
    cli->options.emplace_back(name, option);
  }
  cmd->add_option("--progress", cli->progress,
                  "progress display on stderr: auto (a bar on a terminal, lines otherwise), bar, "
                  "lines, none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();
  cmd->footer(
      "The default run: a 784-256-128-10 MLP on Fashion-MNIST for 15 epochs, 4 thread workers,\n"
      "minibatch SGD with momentum whose gradients go through 4-bit QSGD and a ring all-reduce\n"
      "on a simulated 1 Gbit/s, 50 us link.\n"
      "Metrics (--metrics FILE) are JSON lines: the configuration, then one object per logged\n"
      "iteration (iter, epoch, loss, bits, sim_s, wall_s, codec, test_accuracy when evaluated).\n"
      "Output paths are checked before the first iteration; a checkpoint directory is locked\n"
      "(DIR/.lock) while a run uses it, and every rank checks that all ranks run the same\n"
      "settings.\n"
      "Under MPI: mpirun -n M thinwire train --backend mpi ... Over TCP, thinwire raises\n"
      "OpenMPI's btl_tcp_eager_limit and btl_tcp_max_send_size to 512 KiB (no rendezvous\n"
      "handshake below that) unless the environment or mpirun --mca sets them.");
  cmd->callback([cli] { run_train(*cli); });
}

}  // namespace thinwire::cli
