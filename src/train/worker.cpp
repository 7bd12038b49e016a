// The worker loop of engine.hpp: one rank's iterations, its share of the statistics, evaluation
// and checkpoints. Written once against comm::Transport, so every backend runs this code.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <limits>
#include <string>

#include "control.hpp"
#include "cost_meter.hpp"
#include "link_timer.hpp"
#include "outputs.hpp"
#include "plan.hpp"
#include "thinwire/comm/counting.hpp"
#include "thinwire/core/array_file.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"
#include "thinwire/data/sampler.hpp"
#include "thinwire/train/algorithm.hpp"
#include "thinwire/train/checkpoint.hpp"
#include "thinwire/train/engine.hpp"
#include "thinwire/train/metrics.hpp"
#include "thinwire/train/state_file.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/online_link.hpp"

namespace thinwire::train {
namespace {

using Clock = std::chrono::steady_clock;

// Per-rank counters that records and the summary sum over ranks (checkpointed).
struct Counters {
  double loss_sum = 0;      // since the last record
  double loss_count = 0;    // since the last record
  double bytes_before = 0;  // data-plane bytes sent before this process started (resume)
  double identity_bytes = 0;
  double skipped = 0;
  double comm_s = 0;
  double identity_s = 0;
  double clock_offset = 0;  // data-plane clock before this process started
  double wall_offset = 0;
};

// What rank 0 knows after a statistics round.
struct Totals {
  double loss = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t bytes = 0;
  std::uint64_t identity_bytes = 0;
  std::uint64_t skipped = 0;
  double sim_s = 0;
  double cost = 0;               // Σ over ranks of C(bits) of every message (cost_meter.hpp)
  std::vector<double> reported;  // the same under each --report-costs model
};

TrainSummary nan_summary() {
  TrainSummary s;
  s.final_loss = std::numeric_limits<double>::quiet_NaN();  // until a record has a loss
  return s;
}

bool all_finite(std::span<const float> v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

class Worker {
 public:
  Worker(const TrainSetup& setup, const RunPlan& plan, comm::Transport& data_plane,
         comm::Transport& control_plane, TrainObserver* observer)
      : setup_(setup),
        config_(setup.config),
        plan_(plan),
        timer_(data_plane),
        counted_(timer_),
        cost_model_(plan_.cost->clone()),
        meter_(*cost_model_),
        control_(control_plane),
        observer_(observer),
        rank_(data_plane.rank()),
        size_(data_plane.size()),
        problem_(setup.problem->clone()),
        model_(problem_->dim()),
        grad_(problem_->dim()) {
    if (control_plane.rank() != rank_ || control_plane.size() != size_ ||
        static_cast<std::uint64_t>(size_) != config_.workers ||
        setup.shards.size() != static_cast<std::size_t>(size_)) {
      throw InvalidArgument("train: the world (" + std::to_string(size_) +
                            " ranks) does not match the setup (" + std::to_string(config_.workers) +
                            " workers)");
    }
    timer_.set_timeout(data_plane.timeout());
    counted_.set_timeout(data_plane.timeout());
    counted_.set_observer(&meter_);
    auto_cost_ = dynamic_cast<tune::AutoCost*>(cost_model_.get());
    if (auto_cost_ != nullptr) {
      // Threads: the simulated link's time of each message; MPI: measured hops (link_timer.hpp).
      std::optional<comm::LinkModel> simulated;
      if (config_.backend == Backend::kThreads) simulated = plan_.link;
      timer_.set_estimator(&auto_cost_->link(), simulated);
    }
    for (const std::shared_ptr<const tune::CostModel>& cost : plan_.report_costs) {
      reported_costs_.push_back(cost->clone());
      meter_.add_model(*reported_costs_.back());
    }
    problem_->init(model_, config_.seed);
    algorithm_ = make_algorithm(plan_,
                                AlgorithmContext{.transport = &counted_,
                                                 .dimension = problem_->dim(),
                                                 .seed = config_.seed,
                                                 .link = plan_.link,
                                                 .cost_model = cost_model_},
                                model_);
    const data::Shard& shard = setup.shards[static_cast<std::size_t>(rank_)];
    if (config_.batch_size == 0) {
      // Full batch: weight the shard mean by M·n_m/n so the ranks' average is the full mean.
      weight_ = static_cast<double>(size_) * static_cast<double>(shard.size()) /
                static_cast<double>(setup.train.rows());
    } else {
      sampler_.emplace(shard, data::SamplerOptions{.batch_size = config_.batch_size,
                                                   .seed = config_.seed,
                                                   .rank = static_cast<std::uint32_t>(rank_)});
    }
    const std::uint64_t spe = setup.steps_per_epoch;
    eval_period_ = config_.eval_every > 0    ? config_.eval_every
                   : config_.batch_size == 0 ? config_.log_every
                                             : spe;
  }

  TrainSummary run() {
    agree_on_configuration();
    if (!config_.checkpoint.empty()) {
      prepare_checkpoint_directory(config_.checkpoint,
                                   rank_ == kRoot ? &checkpoint_lock_ : nullptr);
    }
    if (rank_ == kRoot) check_outputs(config_);
    const std::uint64_t total = setup_.total_iterations;
    std::uint64_t t = config_.resume ? restore() : 0;
    summary_.resumed_from = t;
    if (rank_ == kRoot) open_metrics(t);
    if (rank_ == kRoot && observer_ != nullptr) observer_->on_start(setup_, t);
    start_ = Clock::now();

    for (; t < total; ++t) {
      const double clock_before = counted_.clock_seconds();
      const Clock::time_point wall_before = Clock::now();
      timer_.begin_step();
      compute_gradient(t);
      const bool skip = config_.on_nonfinite == NonFinitePolicy::kSkip;
      if (skip) take_snapshot();
      StepComm c;
      try {
        c = algorithm_->step(t, model_, grad_, step_valid_);
      } catch (const InvalidArgument& e) {
        // The configuration was checked before training: this is about the values (a codec
        // refusing a non-finite model or change), so say where and what to do.
        throw Error("iteration " + std::to_string(t + 1) + ", rank " + std::to_string(rank_) +
                    ": " + e.what() + nonfinite_hint());
      }
      if (skip) {
        roll_back_if_nonfinite();
      } else if (!all_finite(model_)) {
        throw Error("non-finite model after iteration " + std::to_string(t + 1) + " on rank " +
                    std::to_string(rank_) + nonfinite_hint());
      }
      last_iteration_s_ = counted_.clock_seconds() - clock_before;
      if (auto_cost_ != nullptr) update_link_estimate(wall_before);
      counters_.identity_bytes += static_cast<double>(c.identity_bytes);
      counters_.comm_s += c.sent.seconds;
      counters_.identity_s += c.identity_seconds;

      const std::uint64_t iter = t + 1;
      const bool last = iter == total;
      const bool eval = last || iter % eval_period_ == 0;
      if (last || eval || iter % config_.log_every == 0) report(t, eval);
      const bool checkpoint =
          !config_.checkpoint.empty() &&
          (last || (config_.checkpoint_every > 0 && iter % config_.checkpoint_every == 0));
      if (checkpoint) write_checkpoint(iter);
    }
    finish(total);
    return std::move(summary_);
  }

 private:
  void compute_gradient(std::uint64_t t) {
    const data::Dataset& train = setup_.train;
    const data::Shard& shard = setup_.shards[static_cast<std::size_t>(rank_)];
    const data::Batch batch =
        sampler_ ? data::Batch::of(train, sampler_->batch(t)) : data::Batch::of(train, shard);
    double loss = problem_->loss_and_gradient(model_, batch, grad_);
    step_valid_ = std::isfinite(loss) && all_finite(grad_);
    const bool skip = config_.on_nonfinite == NonFinitePolicy::kSkip;
    if (step_valid_ && skip && !within_headroom()) {
      // Taken, this step would push the model towards overflow inside the algorithm (a local
      // update, a codec's input) where it cannot be rolled back: skip it like a non-finite one.
      std::fill(grad_.begin(), grad_.end(), 0.0f);
      counters_.skipped += 1;
      step_valid_ = false;
      return;
    }
    if (!step_valid_) {
      if (config_.on_nonfinite == NonFinitePolicy::kError) {
        throw Error("non-finite " + std::string(std::isfinite(loss) ? "gradient" : "loss") +
                    " at iteration " + std::to_string(t + 1) + " on rank " + std::to_string(rank_) +
                    " (loss " + std::to_string(loss) +
                    "); lower --lr, or pass --on-nonfinite skip to skip such steps");
      }
      std::fill(grad_.begin(), grad_.end(), 0.0f);
      counters_.skipped += 1;
      return;
    }
    if (weight_ != 1.0) {
      const auto w = static_cast<float>(weight_);
      for (float& g : grad_) g *= w;
      loss *= weight_;
    }
    counters_.loss_sum += loss;
    counters_.loss_count += 1;
  }

  // --cost auto: the fixed time of the step just taken — compute, and the wait for the slowest
  // rank (link_timer.hpp) — on measured backends only (the simulated clock's compute is the
  // host's CPU time, which would make a threads run depend on the machine), then a new fit for
  // the next iteration's decision.
  void update_link_estimate(Clock::time_point wall_before) {
    tune::OnlineLink& link = auto_cost_->link();
    if (config_.backend != Backend::kThreads) {
      const double wall = std::chrono::duration<double>(Clock::now() - wall_before).count();
      const double wait = std::max(
          0.0, timer_.first_call_seconds() - link.message_seconds(timer_.first_call_bits()));
      link.observe_compute(std::max(0.0, wall - timer_.blocked_seconds()) + wait);
    }
    link.refit();
  }

  // Whether model - lr * (momentum-accumulated) gradient stays far from float overflow: the
  // largest step heavy-ball momentum μ can build from gradients this size is lr·g/(1-μ). The
  // bound 1e30 leaves a factor of 3e8 below FLT_MAX for sums over workers and codec scales.
  [[nodiscard]] bool within_headroom() const {
    constexpr double kHeadroom = 1e30;
    double model_max = 0;
    double grad_max = 0;
    for (float x : model_) model_max = std::max(model_max, static_cast<double>(std::fabs(x)));
    for (float g : grad_) grad_max = std::max(grad_max, static_cast<double>(std::fabs(g)));
    const double step =
        config_.lr * (grad_max + config_.weight_decay * model_max) / (1.0 - config_.momentum);
    return model_max + step < kHeadroom;
  }

  static std::string nonfinite_hint() {
    return " (the model or what it sends became non-finite, most likely because the step size is "
           "too large for this problem: lower --lr, or pass --on-nonfinite skip to roll such "
           "steps back)";
  }

  // Every rank must run the same configuration (MPI ranks parse their own command lines): rank 0
  // compares each rank's resolved settings, model size and data size with its own.
  void agree_on_configuration() {
    // The settings first (so a differing flag is named rather than its consequence), then what
    // they led to on this rank: the model size and the number of training examples.
    const nlohmann::json mine = nlohmann::json::array(
        {to_json(config_),
         {{"(model parameters)", model_.size()}, {"(training examples)", setup_.train.rows()}}});
    const std::string text = mine.dump();
    const std::vector<comm::Bytes> all =
        control_.gather(std::as_bytes(std::span(text.data(), text.size())));
    if (rank_ != kRoot) return;
    for (std::size_t r = 1; r < all.size(); ++r) {
      const nlohmann::json theirs = nlohmann::json::parse(
          std::string(reinterpret_cast<const char*>(all[r].data()), all[r].size()), nullptr, false);
      for (std::size_t part = 0; part < mine.size(); ++part) {
        const nlohmann::json& their_part =
            theirs.is_array() && theirs.size() == mine.size() ? theirs[part] : nlohmann::json();
        for (const auto& [key, value] : mine[part].items()) {
          const nlohmann::json other = their_part.is_object() && their_part.contains(key)
                                           ? their_part[key]
                                           : nlohmann::json("(missing)");
          if (other == value) continue;
          const std::string name = part == 0 ? "--" + key : key;
          throw InvalidArgument("ranks disagree on the configuration: " + name + " is " +
                                clip_text(value.dump(), 100) + " on rank 0 but " +
                                clip_text(other.dump(), 100) + " on rank " + std::to_string(r) +
                                " (start every rank with the same flags and files)");
        }
      }
    }
  }

  // Under --on-nonfinite skip: the state before the step, restored when the step would leave a
  // non-finite model on any rank (all ranks roll back together so they stay in step).
  void take_snapshot() {
    snapshot_model_.assign(model_.begin(), model_.end());
    snapshot_ = StateBundle();
    algorithm_->save(snapshot_);
    if (algorithm_->tuner() != nullptr) snapshot_tuner_ = algorithm_->tuner()->save_state();
  }

  void roll_back_if_nonfinite() {
    const double bad = all_finite(model_) ? 0.0 : 1.0;
    const std::vector<double> sum = control_.sum_to_root(std::span(&bad, 1));
    const std::byte verdict{static_cast<unsigned char>(rank_ == kRoot && sum[0] > 0 ? 1 : 0)};
    const comm::Bytes any = control_.broadcast(std::span(&verdict, 1));
    if (any.empty() || any[0] == std::byte{0}) return;
    model_ = snapshot_model_;
    algorithm_->load(snapshot_);
    if (algorithm_->tuner() != nullptr) algorithm_->tuner()->load_state(snapshot_tuner_);
    if (step_valid_) counters_.skipped += 1;  // a zeroed gradient was counted already
  }

  [[nodiscard]] double clock_now() const {
    return counters_.clock_offset + counted_.clock_seconds();
  }
  [[nodiscard]] double wall_now() const {
    return counters_.wall_offset + std::chrono::duration<double>(Clock::now() - start_).count();
  }
  [[nodiscard]] double bytes_now() const {
    return counters_.bytes_before + static_cast<double>(counted_.stats().bytes_sent);
  }

  // Sums the counters over ranks onto rank 0 (rank order, so the same bits on every backend).
  Totals gather_totals() {
    std::vector<double> mine{counters_.loss_sum,       counters_.loss_count, bytes_now(),
                             counters_.identity_bytes, counters_.skipped,    meter_.total()};
    mine.insert(mine.end(), meter_.totals().begin() + 1, meter_.totals().end());
    const std::vector<double> sum = control_.sum_to_root(mine);
    const double sim = control_.max_to_root(clock_now());
    counters_.loss_sum = 0;
    counters_.loss_count = 0;
    Totals totals;
    if (rank_ != kRoot) return totals;
    if (sum[1] > 0) totals.loss = sum[0] / sum[1];
    totals.bytes = static_cast<std::uint64_t>(sum[2]);
    totals.identity_bytes = static_cast<std::uint64_t>(sum[3]);
    totals.skipped = static_cast<std::uint64_t>(sum[4]);
    totals.sim_s = sim;
    totals.cost = sum[5];
    totals.reported.assign(sum.begin() + 6, sum.end());
    return totals;
  }

  // The model everyone agrees on, on rank 0: its own published model in consensus, else the
  // average of all ranks' published models.
  std::vector<float> published_model(std::uint64_t t) {
    const std::span<const float> mine = algorithm_->published(model_);
    if (algorithm_->consensus_after(t)) {
      return rank_ == kRoot ? std::vector<float>(mine.begin(), mine.end()) : std::vector<float>{};
    }
    return control_.average_to_root(mine);
  }

  // On rank 0, the decision the metrics log: that of the algorithm's tuning rank (collective
  // when that is not rank 0).
  std::optional<tune::Decision> logged_decision() {
    const tune::Tuner* tuner = algorithm_->tuner();
    if (tuner == nullptr) return std::nullopt;
    const int from = algorithm_->tuning_rank();
    if (from == kRoot) {
      if (rank_ != kRoot || tuner->last() == nullptr) return std::nullopt;
      return *tuner->last();
    }
    const std::string mine = rank_ == from ? tuner->save_state() : std::string();
    const std::vector<comm::Bytes> all = control_.gather(std::as_bytes(std::span(mine)));
    if (rank_ != kRoot) return std::nullopt;
    const comm::Bytes& theirs = all[static_cast<std::size_t>(from)];
    return tune::parse_decision(
        std::string_view(reinterpret_cast<const char*>(theirs.data()), theirs.size()));
  }

  void report(std::uint64_t t, bool eval) {
    const Totals totals = gather_totals();
    std::vector<float> model;
    if (eval && !setup_.test.empty()) model = published_model(t);
    const std::optional<tune::Decision> decision = logged_decision();
    if (rank_ != kRoot) return;

    const std::uint64_t iter = t + 1;
    nlohmann::json record{
        {"iter", iter},
        {"epoch", static_cast<double>(iter) / static_cast<double>(setup_.steps_per_epoch)},
        {"loss", std::isfinite(totals.loss) ? nlohmann::json(totals.loss) : nlohmann::json()},
        {"bits", 8 * totals.bytes},
        {"bits_uncompressed", 8 * totals.identity_bytes},
        {"cost", totals.cost},  // Σ C(bits) under --cost, all workers and messages
        {"sim_s", totals.sim_s},
        {"comm_s", counters_.comm_s},  // rank 0's clock time inside synchronizations
        {"wall_s", wall_now()},
        {"codec", config_.codec},
    };
    if (!reported_costs_.empty()) {
      nlohmann::json costs = nlohmann::json::object();
      for (std::size_t i = 0; i < reported_costs_.size(); ++i) {
        costs[reported_costs_[i]->spec()] = totals.reported[i];
      }
      record["costs"] = std::move(costs);
    }
    if (const auto norm = algorithm_->applied_gradient_norm()) record["grad_norm"] = *norm;
    if (decision) {
      // The tuning rank's latest decision (each rank tunes its own message): at the logged
      // iteration, or at the last synchronization for algorithms that synchronize every H steps.
      const tune::Decision& d = *decision;
      record["codec"] = d.codec_spec;
      record["theta"] = d.level;
      if (d.levels != 0) record["theta_s"] = d.levels;
      record["rho"] = d.rho;
      record["tuned_bits"] = d.bits;
      record["lr_scale"] = d.lr_scale;
      if (d.price > 0) record["tuned_price"] = d.price;
      if (d.smoothness > 0) record["l_hat"] = d.smoothness;
      // Under --cost auto the price is the predicted time of the iteration (seconds).
      if (auto_cost_ != nullptr && d.price > 0) record["pred_iter_s"] = d.price;
    }
    if (auto_cost_ != nullptr) {
      // Rank 0's estimate after this iteration, and its measured time of the iteration (the
      // transport clock: simulated on threads, wall on MPI).
      const tune::OnlineLink& link = auto_cost_->link();
      record["iter_s"] = last_iteration_s_;
      record["link_latency_s"] = link.latency_s();
      record["link_bandwidth_bps"] = link.bandwidth_bits_per_s();
      record["link_samples"] = link.samples();
      record["compute_est_s"] = link.compute_s();
    }
    if (config_.on_nonfinite == NonFinitePolicy::kSkip) record["skipped"] = totals.skipped;
    if (!model.empty()) evaluate(model, record);

    summary_.iterations = iter;
    summary_.epochs = record["epoch"].get<double>();
    if (std::isfinite(totals.loss)) summary_.final_loss = totals.loss;
    summary_.bits = 8 * totals.bytes;
    summary_.bits_uncompressed = 8 * totals.identity_bytes;
    summary_.sim_s = totals.sim_s;
    summary_.skipped = totals.skipped;
    summary_.cost = totals.cost;
    if (metrics_) metrics_->write(record);
    if (observer_ != nullptr) observer_->on_record(record);
  }

  // Test loss and accuracy of `model`, computed on a helper thread: the evaluation is the
  // engine's, not the algorithm's, and must not advance the simulated clock of this rank.
  void evaluate(const std::vector<float>& model, nlohmann::json& record) {
    if (!eval_problem_) eval_problem_ = setup_.problem->clone();
    const data::Batch all = data::Batch::all(setup_.test);
    auto job = std::async(std::launch::async, [&] {
      std::pair<double, std::optional<double>> out{eval_problem_->loss(model, all), std::nullopt};
      if (eval_problem_->is_classifier()) out.second = eval_problem_->accuracy(model, all);
      return out;
    });
    const auto [loss, accuracy] = job.get();
    record["test_loss"] = std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json();
    summary_.test_loss = loss;
    if (accuracy) {
      record["test_accuracy"] = *accuracy;
      summary_.test_accuracy = *accuracy;
    }
  }

  void open_metrics(std::uint64_t t) {
    if (config_.metrics.empty()) return;
    const nlohmann::json config = to_json(config_);
    metrics_.emplace(t > 0 ? MetricsLog::resume(config_.metrics, config, t)
                           : MetricsLog::create(config_.metrics, config));
  }

  void write_checkpoint(std::uint64_t iter) {
    const std::filesystem::path dir = config_.checkpoint;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // every rank: MPI ranks may not share a disk
    if (!std::filesystem::is_directory(dir)) {
      throw IoError("--checkpoint: cannot create directory " + dir.string());
    }
    StateBundle state;
    state.put_u64("iteration", iter);
    state.put_u64("rank", static_cast<std::uint64_t>(rank_));
    state.put_u64("workers", static_cast<std::uint64_t>(size_));
    state.put_string("config", to_json(config_).dump());
    state.put_floats("model", model_);
    algorithm_->save(state);
    {
      const std::string tuner_state =
          algorithm_->tuner() != nullptr ? algorithm_->tuner()->save_state() : std::string();
      state.put_string("tuner", tuner_state);
    }
    if (auto_cost_ != nullptr) state.put_string("tune.online_link", auto_cost_->link().save());
    state.put_f64("counters.loss_sum", counters_.loss_sum);
    state.put_f64("counters.loss_count", counters_.loss_count);
    state.put_f64("counters.bytes", bytes_now());
    state.put_f64("counters.identity_bytes", counters_.identity_bytes);
    state.put_f64("counters.skipped", counters_.skipped);
    state.put_f64("counters.comm_s", counters_.comm_s);
    state.put_f64("counters.identity_s", counters_.identity_s);
    state.put_f64("counters.cost", meter_.total());
    for (std::size_t i = 1; i < meter_.totals().size(); ++i) {
      state.put_f64("counters.cost." + std::to_string(i), meter_.totals()[i]);
    }
    state.put_f64("counters.clock", clock_now());
    state.put_f64("counters.wall", wall_now());
    state.write(rank_checkpoint_path(dir, iter, rank_));

    // Every file is on disk before the manifest names it; old files go only after it does.
    (void)control_.gather({});
    if (rank_ == kRoot) {
      if (metrics_) metrics_->sync();
      write_manifest(dir, {.iteration = iter,
                           .workers = static_cast<std::uint64_t>(size_),
                           .config = to_json(config_)});
    }
    (void)control_.broadcast({});
    prune_rank_checkpoints(dir, rank_, iter);
  }

  // Loads this rank's state from the latest checkpoint; returns its iteration.
  std::uint64_t restore() {
    const CheckpointManifest manifest = read_resume_manifest(config_);
    const StateBundle state =
        StateBundle::read(rank_checkpoint_path(config_.checkpoint, manifest.iteration, rank_));
    if (state.get_u64("iteration") != manifest.iteration ||
        state.get_u64("rank") != static_cast<std::uint64_t>(rank_)) {
      throw IoError(state.source() + ": checkpoint of another iteration or rank");
    }
    std::vector<float> model = state.get_floats("model");
    if (model.size() != model_.size()) {
      throw IoError(state.source() + ": model has " + std::to_string(model.size()) +
                    " parameters, the problem " + std::to_string(model_.size()));
    }
    model_ = std::move(model);
    algorithm_->load(state);
    if (algorithm_->tuner() != nullptr && state.has("tuner")) {
      algorithm_->tuner()->load_state(state.get_string("tuner"));
    }
    if (auto_cost_ != nullptr && state.has("tune.online_link")) {
      auto_cost_->link().load(state.get_string("tune.online_link"));
    }
    counters_.loss_sum = state.get_f64("counters.loss_sum");
    counters_.loss_count = state.get_f64("counters.loss_count");
    counters_.bytes_before = state.get_f64("counters.bytes");
    counters_.identity_bytes = state.get_f64("counters.identity_bytes");
    counters_.skipped = state.get_f64("counters.skipped");
    counters_.comm_s = state.get_f64("counters.comm_s");
    counters_.identity_s = state.get_f64("counters.identity_s");
    if (state.has("counters.cost")) meter_.set_total(0, state.get_f64("counters.cost"));
    for (std::size_t i = 1; i < meter_.totals().size(); ++i) {
      const std::string key = "counters.cost." + std::to_string(i);
      if (state.has(key)) meter_.set_total(i, state.get_f64(key));
    }
    counters_.clock_offset = state.get_f64("counters.clock");
    counters_.wall_offset = state.get_f64("counters.wall");
    return manifest.iteration;
  }

  void finish(std::uint64_t total) {
    const Totals totals = gather_totals();
    std::vector<float> model = published_model(total - 1);
    if (rank_ != kRoot) return;
    summary_.iterations = total;
    summary_.epochs = static_cast<double>(total) / static_cast<double>(setup_.steps_per_epoch);
    summary_.bits = 8 * totals.bytes;
    summary_.bits_uncompressed = 8 * totals.identity_bytes;
    summary_.skipped = totals.skipped;
    summary_.sim_s = totals.sim_s;
    summary_.cost = totals.cost;
    summary_.comm_s = counters_.comm_s;
    summary_.comm_uncompressed_s = counters_.identity_s;
    summary_.wall_s = wall_now();
    summary_.codec = config_.codec;
    if (!config_.save_model.empty()) write_array(config_.save_model, model);
    summary_.model = std::move(model);
  }

  const TrainSetup& setup_;
  const TrainConfig& config_;
  const RunPlan& plan_;
  // The algorithm's transport is counted_ over timer_ over the data plane: a message is timed
  // (and, under --cost auto, fed to the estimator) before it is counted and priced, so the price
  // of a message sees the link estimate that includes it.
  LinkTimer timer_;                  // feeds --cost auto's estimator
  comm::CountingTransport counted_;  // the one byte counter; meter_ prices what it counts
  std::shared_ptr<tune::CostModel> cost_model_;
  tune::AutoCost* auto_cost_ = nullptr;  // cost_model_ under --cost auto
  CostMeter meter_;                      // observes counted_: C(bits) of each message sent
  std::vector<std::unique_ptr<tune::CostModel>> reported_costs_;  // --report-costs
  ControlPlane control_;
  TrainObserver* observer_;
  int rank_;
  int size_;
  std::unique_ptr<problem::Problem> problem_;
  std::unique_ptr<problem::Problem> eval_problem_;
  std::vector<float> model_;
  std::vector<float> grad_;
  std::unique_ptr<Algorithm> algorithm_;
  std::optional<data::MinibatchSampler> sampler_;
  double weight_ = 1.0;
  std::uint64_t eval_period_ = 1;
  bool step_valid_ = true;
  std::vector<float> snapshot_model_;
  StateBundle snapshot_;
  std::string snapshot_tuner_;
  CheckpointLock checkpoint_lock_;
  Counters counters_;
  std::optional<MetricsLog> metrics_;
  Clock::time_point start_;
  double last_iteration_s_ = 0;  // transport clock time of the last iteration
  TrainSummary summary_ = nan_summary();
};

}  // namespace

TrainSummary run_worker(const TrainSetup& setup, const RunPlan& plan, comm::Transport& data_plane,
                        comm::Transport& control_plane, TrainObserver* observer) {
  Worker worker(setup, plan, data_plane, control_plane, observer);
  return worker.run();
}

TrainSummary run_worker(const TrainSetup& setup, comm::Transport& data_plane,
                        comm::Transport& control_plane, TrainObserver* observer) {
  return run_worker(setup, make_run_plan(setup.config, data_plane.size()), data_plane,
                    control_plane, observer);
}

}  // namespace thinwire::train
