// The pieces of `thinwire report` (SPEC §6) that do not touch a process: reading metrics files
// into runs, naming each run after what sets it apart from the others, summarizing it, and
// writing the gnuplot data files, gnuplot scripts and index.html of a report directory.
//
// A report directory holds, for runs 1..N:
//   data/runNN_train.dat  iter epoch bits sim_s wall_s cost loss       (records with a loss)
//   data/runNN_eval.dat   ... cost test_accuracy test_loss               (evaluations)
//   data/runNN_tune.dat   ... cost theta rho tuned_bits                  (tuner decisions)
//   NAME.gp               one standalone gnuplot script per figure, drawing NAME.png (+ NAME.svg)
//   index.html            the summary table and the figures
// With ReportOptions::panel_by a figure is a grid of panels, one per value of that configuration
// key (a gnuplot multiplot), each with its own legend.
// The scripts use paths relative to the directory, so `cd DIR && gnuplot NAME.gp` re-draws one
// figure after a user has edited its style.
#pragma once

#include <cstddef>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace thinwire::cli::report {

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// One metrics record; a field the file does not have (or has as null) is kMissing (NaN).
struct Record {
  double iter = kMissing;
  double epoch = kMissing;
  double bits = kMissing;
  double bits_uncompressed = kMissing;
  double sim_s = kMissing;
  double wall_s = kMissing;
  double loss = kMissing;
  double test_accuracy = kMissing;
  double test_loss = kMissing;
  double theta = kMissing;
  double rho = kMissing;
  double tuned_bits = kMissing;
  double cost = kMissing;  // the cost model's cumulative cost, where the run logs it
};

struct Run {
  std::filesystem::path path;  // as given on the command line
  nlohmann::json config;       // the first line's "config" object
  std::vector<Record> records;
  std::string label;
  bool highlight = false;  // drawn black and thick in every figure (--highlight)
};

// Reads a metrics file (train::read_metrics). Throws IoError naming the file (and FILE:LINE for a
// line that is not JSON, or the record whose field has the wrong type) when it is not a metrics
// file: no {"config": {...}} first line, a record without a numeric iter, a field that is not a
// number.
[[nodiscard]] Run load_run(const std::filesystem::path& path);

// Short labels, one per config, from what differs between them: the codec always (its name and
// first parameter, the level by the registry's convention, plus any parameter that differs among
// runs of the same codec), then every other setting whose value is not the same in all runs
// (algorithm, sync, M=workers, H=local-steps, lr=..., ...). Output-only settings (metrics path,
// log/eval/checkpoint cadence) never count. Labels that still collide get " [NAME]" from `names`.
[[nodiscard]] std::vector<std::string> derive_labels(const std::vector<nlohmann::json>& configs,
                                                     const std::vector<std::string>& names);

// A setting's value as labels and panel names show it: a string as is, a number in %g, else JSON.
[[nodiscard]] std::string setting_value_text(const nlohmann::json& value);

struct Summary {
  std::size_t records = 0;
  // Each is NaN where the run has no such value.
  double iterations = kMissing;
  double epochs = kMissing;
  double final_loss = kMissing;      // last finite training loss
  double best_accuracy = kMissing;   // over the evaluations
  double final_accuracy = kMissing;  // last evaluation
  double final_test_loss = kMissing;
  double bits = kMissing;  // cumulative, last record
  double bits_uncompressed = kMissing;
  double sim_s = kMissing;
  double wall_s = kMissing;
  double cost = kMissing;
  bool tuned = false;  // has tuner decisions (theta)
};
[[nodiscard]] Summary summarize(const Run& run);

// The x axes a figure can use (--x).
enum class Axis { kIter, kEpoch, kBits, kSim, kWall, kCost };
[[nodiscard]] std::string_view axis_name(Axis axis) noexcept;  // "iter", "epoch", "bits", ...
// Throws InvalidArgument listing the names for an unknown one.
[[nodiscard]] Axis parse_axis(std::string_view name);

// A dashed horizontal line across the training-loss figures (a target such as ε).
struct HLine {
  double y = 0;
  std::string label;  // its legend entry; "" = none
};
// Parses "Y" or "Y=LABEL"; throws InvalidArgument for anything else.
[[nodiscard]] HLine parse_hline(std::string_view text);
// A dashed vertical line at x = X seconds across the figures whose x axis is a time (sim, wall):
// an event of the run, such as the moment a link changed its rate.
struct VLine {
  double x = 0;
  std::string label;  // written beside the line's top; "" = none
};
// Parses "X" or "X=LABEL"; throws InvalidArgument for anything else.
[[nodiscard]] VLine parse_vline(std::string_view text);

struct YRange {
  double lo = kMissing;  // NaN = fitted to the data
  double hi = kMissing;
};
// Parses "LO:HI" (either may be empty, LO < HI); throws InvalidArgument.
[[nodiscard]] YRange parse_y_range(std::string_view text);

struct ReportOptions {
  std::filesystem::path out;
  // Empty: bits, sim, wall, epoch, and cost when every run logs a cost under one shared cost
  // model other than `bits` (where cost would repeat the bits figure).
  std::vector<Axis> x;
  std::string title;    // "" = "thinwire report"
  bool log_y = false;   // log scale for the loss axes and θ
  bool log_x = false;   // log scale for every x axis (bits and cost always have one)
  bool svg = true;      // draw NAME.svg beside NAME.png
  std::string y_label;  // what the runs' "loss" is, for the loss figures; "" = training loss
  std::string x_label;  // of every figure; "" = the axis's own (the cost model's, ...)
  YRange y_range;       // of the training-loss figures
  // > 1: the loss figures draw the mean of the last `smooth` losses (a moving average over
  // records, as the experiments' tables use); the data file's loss column holds that mean.
  std::size_t smooth = 0;
  std::vector<HLine> hlines;
  std::vector<VLine> vlines;
  // "" = one graph per figure; else one panel per value of this key of the runs' configs, in the
  // order of the runs, each panel's runs coloured from the start of the palette.
  std::string panel_by;
  // Names of the figures to draw ("loss_vs_cost", "theta_vs_iter"); empty = all.
  std::vector<std::string> figures;
};

// The runs' common --cost spec ("linear:latency=50us,bandwidth=100Mbit"), or "" when they differ
// or one has none.
[[nodiscard]] std::string shared_cost_model(const std::vector<Run>& runs);

struct Figure {
  std::string name;     // file stem: NAME.gp, NAME.png, NAME.svg
  std::string caption;  // one line for index.html
};

// Writes the data files and one gnuplot script per figure under options.out (created if needed)
// and returns the figures in the order index.html shows them. A figure is left out when no run
// has data for it (no evaluations: no accuracy figures; no tuner: no θ figure). Throws IoError,
// and InvalidArgument when options.figures names a figure that these runs do not give.
[[nodiscard]] std::vector<Figure> write_plot_files(const std::vector<Run>& runs,
                                                   const ReportOptions& options);

// The colour of each run in every figure ("#0072B2"), for the table's swatches: its place among
// the runs (with panel_by, among the runs of its panel); black for a highlighted run.
[[nodiscard]] std::vector<std::string> run_colors(const std::vector<Run>& runs,
                                                  const ReportOptions& options);

// The page: title, summary table, the figures (PNG inline, SVG linked), each run's settings.
[[nodiscard]] std::string render_index_html(const std::vector<Run>& runs,
                                            const std::vector<Figure>& figures,
                                            const ReportOptions& options);

}  // namespace thinwire::cli::report
