// The writing half of `thinwire report` (report_plot.hpp): data files and one gnuplot script per
// figure. Reading runs, labels and summaries are report_runs.cpp's.
#include "report_plot.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <utility>

#include "thinwire/core/error.hpp"

namespace thinwire::cli::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- writing --------------------------------------------------------------------------------

struct AxisInfo {
  Axis axis;
  std::string_view name;
  int column;  // in every data file
  std::string_view label;
  std::string_view description;
};

constexpr std::array kAxes{
    AxisInfo{Axis::kIter, "iter", 1, "iteration", "iteration"},
    AxisInfo{Axis::kEpoch, "epoch", 2, "epoch", "epoch"},
    AxisInfo{Axis::kBits, "bits", 3, "bits sent by all workers (cumulative, log scale)",
             "bits sent"},
    AxisInfo{Axis::kSim, "sim", 4, "simulated time (s)", "simulated time"},
    AxisInfo{Axis::kWall, "wall", 5, "wall-clock time (s)", "wall-clock time"},
    AxisInfo{Axis::kCost, "cost", 6, "cost (cumulative, log scale)", "cost"},
};

const AxisInfo& info(Axis axis) {
  return *std::find_if(kAxes.begin(), kAxes.end(),
                       [&](const AxisInfo& a) { return a.axis == axis; });
}

// Okabe–Ito colour-blind-safe palette; run i always gets line type i, in every figure. Line types
// 9-16 repeat the colours dashed, so that up to 16 runs (a panel of a grid of levels) differ.
constexpr std::array<const char*, 8> kColors{"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                             "#E69F00", "#56B4E9", "#000000", "#999999"};
constexpr std::array<int, 8> kPoints{7, 5, 9, 13, 11, 15, 6, 4};
constexpr std::size_t kLineTypes = 2 * kColors.size();
constexpr const char* kHighlight = "#000000";

std::string num(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// One line of text: a line break in a label or title would end a gnuplot command or a comment.
std::string one_line(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

// gnuplot single-quoted string: only the quote itself is special ('' stands for ').
std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : one_line(s)) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw IoError(path.string() + ": cannot write the file");
}

std::string run_stem(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "run%02zu", i + 1);
  return buf;
}

// The per-run data files (see the header for their columns); the loss is the mean of the last
// `smooth` losses when smooth > 1.
void write_data(const Run& run, std::size_t index, const fs::path& dir, std::size_t smooth) {
  static constexpr const char* kHeader = "# iter epoch bits sim_s wall_s cost";
  std::string train = std::string(kHeader) + " loss\n";
  std::string eval = std::string(kHeader) + " test_accuracy test_loss\n";
  std::string tune = std::string(kHeader) + " theta rho tuned_bits\n";
  std::deque<double> recent;  // the last `smooth` losses
  for (const Record& r : run.records) {
    const std::string x = num(r.iter) + " " + num(r.epoch) + " " + num(r.bits) + " " +
                          num(r.sim_s) + " " + num(r.wall_s) + " " + num(r.cost);
    if (std::isfinite(r.loss)) {
      recent.push_back(r.loss);
      if (recent.size() > std::max<std::size_t>(smooth, 1)) recent.pop_front();
      double sum = 0;
      for (const double v : recent) sum += v;
      train += x + " " + num(sum / static_cast<double>(recent.size())) + "\n";
    }
    if (std::isfinite(r.test_accuracy) || std::isfinite(r.test_loss)) {
      eval += x + " " + num(r.test_accuracy) + " " + num(r.test_loss) + "\n";
    }
    if (std::isfinite(r.theta)) {
      tune += x + " " + num(r.theta) + " " + num(r.rho) + " " + num(r.tuned_bits) + "\n";
    }
  }
  const std::string stem = run_stem(index);
  const std::string source = "# " + one_line(run.label + " (" + run.path.string() + ")") + "\n";
  write_text(dir / (stem + "_train.dat"), source + train);
  write_text(dir / (stem + "_eval.dat"), source + eval);
  write_text(dir / (stem + "_tune.dat"), source + tune);
}

double x_value(const Record& r, Axis axis) {
  switch (axis) {
    case Axis::kIter:
      return r.iter;
    case Axis::kEpoch:
      return r.epoch;
    case Axis::kBits:
      return r.bits;
    case Axis::kSim:
      return r.sim_s;
    case Axis::kWall:
      return r.wall_s;
    case Axis::kCost:
      return r.cost;
  }
  return kMissing;
}

bool log_axis(Axis axis) { return axis == Axis::kBits || axis == Axis::kCost; }

// How many points of `run` gnuplot can place: x and y finite, and positive on a log axis. A
// figure leaves out runs with none (gnuplot stops at a plot whose every point is undefined).
std::size_t plottable(const Run& run, Axis axis, double (*y)(const Record&), bool log_x,
                      bool log_y) {
  std::size_t n = 0;
  for (const Record& r : run.records) {
    const double xv = x_value(r, axis);
    const double yv = y(r);
    n += std::isfinite(xv) && std::isfinite(yv) && (!log_x || xv > 0) && (!log_y || yv > 0);
  }
  return n;
}

// Legends sit under the graph: a label longer than about half its width is cut (the table of
// index.html has it whole, beside the same colour).
std::string legend_text(const std::string& label) {
  constexpr std::size_t kMaxBytes = 64;
  if (label.size() <= kMaxBytes) return label;
  std::size_t end = kMaxBytes - 4;
  while (end > 0 && (static_cast<unsigned char>(label[end]) & 0xC0) == 0x80) --end;  // UTF-8
  return label.substr(0, end) + "…";
}

// A log y axis over [bottom, top] (positive). Tics at 1-1.5-2-3-4-5-6-8 within a decade, 1-2-5
// over up to three decades, else at the decades.
std::string log_y_axis(double bottom, double top) {
  const double span = top / bottom;
  const std::vector<double> mantissas = span < 10 ? std::vector<double>{1, 1.5, 2, 3, 4, 5, 6, 8}
                                        : span < 1000 ? std::vector<double>{1, 2, 5}
                                                      : std::vector<double>{1};
  std::string tics;
  for (int e = static_cast<int>(std::floor(std::log10(bottom)));
       e <= static_cast<int>(std::ceil(std::log10(top))); ++e) {
    for (const double m : mantissas) {
      const double v = m * std::pow(10.0, e);
      if (v >= bottom && v <= top) tics += (tics.empty() ? "" : ", ") + num(v);
    }
  }
  std::string s = "set logscale y 10\nset yrange [" + num(bottom) + ":" + num(top) + "]\n";
  s += "set format y '%g'\n";
  if (!tics.empty()) s += "set ytics (" + tics + ")\n";
  return s;
}

// The y axis of a figure whose data lie in [lo, hi] (NaN when there are none). A log axis is
// fitted to the data (gnuplot's own autoscale widens it to whole decades, which squeezes a loss
// that falls from 1.7 to 0.4 into a fifth of the height); `range` overrides either end.
std::string y_axis(double lo, double hi, bool log, const YRange& range) {
  if (log) {
    const double bottom = std::isfinite(range.lo) ? range.lo : lo / 1.08;
    const double top = std::isfinite(range.hi) ? range.hi : hi * 1.08;
    if (!(bottom > 0) || !std::isfinite(top) || !(top > bottom)) return "set logscale y 10\n";
    return log_y_axis(bottom, top);
  }
  if (!std::isfinite(range.lo) && !std::isfinite(range.hi)) return "";
  const auto end = [](double v) { return std::isfinite(v) ? num(v) : std::string("*"); };
  return "set yrange [" + end(range.lo) + ":" + end(range.hi) + "]\n";
}

struct Series {
  std::size_t run;
  std::string file;    // relative to the report directory
  std::string using_;  // gnuplot `using` clause
  std::string style;   // lines | linespoints
};

// What one figure draws.
struct Plot {
  std::string name;
  std::string title;
  std::string xlabel;
  std::string ylabel;
  bool log_x = false;
  std::string y_axis;  // gnuplot commands
  std::vector<Series> series;
  std::vector<HLine> hlines;
  std::vector<VLine> vlines;  // only on the time axes
};

// The panel of a run under --panel-by KEY: the value of KEY in its config.
std::string panel_of(const Run& run, const std::string& key) {
  if (key.empty()) return "";
  const json value = run.config.value(key, json());
  return value.is_null() ? "no " + key : setting_value_text(value);
}

// Each run's line type (0-based): its place among the runs of its panel. Where a run is
// highlighted (black), the others skip the palette's black.
std::vector<std::size_t> slots(const std::vector<Run>& runs, const std::string& panel_by) {
  const bool any_highlight =
      std::any_of(runs.begin(), runs.end(), [](const Run& r) { return r.highlight; });
  std::vector<std::size_t> types;
  for (std::size_t i = 0; i < kLineTypes; ++i) {
    if (!any_highlight || kColors[i % kColors.size()] != std::string_view(kHighlight)) {
      types.push_back(i);
    }
  }
  std::map<std::string, std::size_t> next;
  std::vector<std::size_t> out;
  for (const Run& run : runs) out.push_back(types[next[panel_of(run, panel_by)]++ % types.size()]);
  return out;
}

std::string plot_command(const std::vector<const Series*>& series, const std::vector<HLine>& hlines,
                         const std::vector<Run>& runs, const std::vector<std::size_t>& slot) {
  std::string s = "plot ";
  std::string sep;
  for (const Series* x : series) {
    s += sep + gp_quote(x->file) + " using " + x->using_ + " with " + x->style + " lt " +
         std::to_string(slot[x->run] + 1);
    if (runs[x->run].highlight) s += " lc rgb '" + std::string(kHighlight) + "' lw 3.5 dt 1";
    s += " title " + gp_quote(legend_text(runs[x->run].label));
    sep = ", \\\n     ";
  }
  for (const HLine& h : hlines) {
    s += sep + num(h.y) + " with lines dt 2 lc rgb '#808080' lw 1 " +
         (h.label.empty() ? std::string("notitle") : "title " + gp_quote(h.label));
    sep = ", \\\n     ";
  }
  return s + "\n";
}

// The commands after `set terminal` / `set output`; run once per output format.
std::string script_body(const Plot& p, const std::vector<std::string>& panels,
                        const std::vector<Run>& runs, const std::vector<std::size_t>& slot,
                        const std::string& panel_by) {
  std::string s = "set xlabel " + gp_quote(p.xlabel) + "\nset ylabel " + gp_quote(p.ylabel) + "\n";
  s += "set grid back lt 1 lc rgb '#e6e6e6' lw 1\nset border 3 lw 1\nset tics nomirror out\n";
  s += "set datafile missing 'NaN'\n";
  for (std::size_t i = 0; i < kLineTypes; ++i) {
    s += "set linetype " + std::to_string(i + 1) + " lc rgb '" + kColors[i % kColors.size()] +
         "' lw 2 dt " + (i < kColors.size() ? "1" : "2") + " pt " +
         std::to_string(kPoints[i % kPoints.size()]) + " ps 0.9\n";
  }
  s += "set linetype cycle " + std::to_string(kLineTypes) + "\n";
  if (p.log_x) s += "set logscale x 10\nset format x '%.0s%c'\nset mxtics 10\n";
  s += p.y_axis;
  for (std::size_t i = 0; i < p.vlines.size(); ++i) {
    const VLine& v = p.vlines[i];
    if (p.log_x && v.x <= 0) continue;  // not on a log axis
    const std::string tag = std::to_string(i + 1);
    s += "set arrow " + tag + " from " + num(v.x) + ", graph 0 to " + num(v.x) +
         ", graph 1 nohead back dt 3 lw 1.5 lc rgb '#c00000'\n";
    if (!v.label.empty()) {
      s += "set label " + tag + " " + gp_quote(v.label) + " at " + num(v.x) +
           ", graph 0.96 offset 0.5,0 tc rgb '#c00000' front\n";
    }
  }
  if (panels.empty()) {
    s += "set title " + gp_quote(p.title) + " font ',13'\n";
    // Below the graph, with one extra line of height: without it gnuplot 5.4 draws the first row
    // of the key over the x label.
    s += "set key outside below left Left reverse noautotitle height 1\n";
    std::vector<const Series*> all;
    for (const Series& x : p.series) all.push_back(&x);
    return s + plot_command(all, p.hlines, runs, slot);
  }
  // A grid of panels, each with its legend on its right (a level grid has up to 16 runs).
  s += "set key outside right top vertical Left reverse noautotitle font ',8' samplen 2\n";
  s += "set multiplot layout " + std::to_string((panels.size() + 2) / 3) + "," +
       std::to_string(std::min<std::size_t>(3, panels.size())) + " title " + gp_quote(p.title) +
       " font ',13'\n";
  for (const std::string& panel : panels) {
    std::vector<const Series*> mine;
    for (const Series& x : p.series) {
      if (panel_of(runs[x.run], panel_by) == panel) mine.push_back(&x);
    }
    s += "set title " + gp_quote(panel) + " font ',11'\n";
    s += plot_command(mine, p.hlines, runs, slot);
  }
  return s + "unset multiplot\n";
}

std::string script(const Plot& p, const std::vector<Run>& runs, const ReportOptions& options) {
  // The panels that have data in this figure, in the order of the runs.
  std::vector<std::string> panels;
  if (!options.panel_by.empty()) {
    for (const Series& x : p.series) {
      const std::string panel = panel_of(runs[x.run], options.panel_by);
      if (std::find(panels.begin(), panels.end(), panel) == panels.end()) panels.push_back(panel);
    }
  }
  const std::size_t cols = std::min<std::size_t>(3, panels.size());
  const std::size_t rows = (panels.size() + 2) / 3;
  const std::string size =
      panels.empty() ? "960,600" : std::to_string(cols * 600) + "," + std::to_string(rows * 430);
  const std::string body =
      script_body(p, panels, runs, slots(runs, options.panel_by), options.panel_by);
  std::string s = "# thinwire report: " + one_line(p.title) +
                  ".\n# Edit freely; re-draw with: gnuplot " + p.name + ".gp (in this directory)\n";
  // `reset`: thinwire runs all scripts in one gnuplot session, where settings would carry over.
  s += "reset\nset encoding utf8\n";
  s += "set terminal pngcairo size " + size + " font 'Sans,11' noenhanced linewidth " +
       (panels.empty() ? "1.5" : "1") + "\n";
  s += "set output " + gp_quote(p.name + ".png") + "\n" + body;
  if (options.svg) {
    // A multiplot cannot be `replot`ted: the SVG runs the same commands again.
    s += "set terminal svg size " + size + " font 'Sans,11' noenhanced dynamic background rgb " +
         "'white'\nset output " + gp_quote(p.name + ".svg") + "\n" + body;
  }
  s += "unset output\n";
  return s;
}

}  // namespace

std::vector<std::string> run_colors(const std::vector<Run>& runs, const ReportOptions& options) {
  const std::vector<std::size_t> slot = slots(runs, options.panel_by);
  std::vector<std::string> colors;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    colors.emplace_back(runs[i].highlight ? kHighlight : kColors[slot[i] % kColors.size()]);
  }
  return colors;
}

namespace {

// "V" or "V=LABEL" with V a finite number; `what` names V in the error ("Y", "X").
std::pair<double, std::string> parse_value_label(std::string_view text, std::string_view what) {
  const std::string_view number = text.substr(0, text.find('='));
  double value = 0;
  const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || ptr != number.data() + number.size() ||
      !std::isfinite(value)) {
    throw InvalidArgument("expected " + std::string(what) + " or " + std::string(what) +
                          "=LABEL with " + std::string(what) + " a number, got '" +
                          std::string(text) + "'");
  }
  std::string label;
  if (number.size() < text.size()) label = std::string(text.substr(number.size() + 1));
  return {value, std::move(label)};
}

}  // namespace

HLine parse_hline(std::string_view text) {
  auto [y, label] = parse_value_label(text, "Y");
  return {.y = y, .label = std::move(label)};
}

VLine parse_vline(std::string_view text) {
  auto [x, label] = parse_value_label(text, "X");
  return {.x = x, .label = std::move(label)};
}

YRange parse_y_range(std::string_view text) {
  const auto colon = text.find(':');
  const auto end = [&](std::string_view part) {
    double v = kMissing;
    if (part.empty()) return v;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || ptr != part.data() + part.size() || !std::isfinite(v)) {
      throw InvalidArgument("expected LO:HI (numbers, either may be empty), got '" +
                            std::string(text) + "'");
    }
    return v;
  };
  if (colon == std::string_view::npos) end("not a range");
  const YRange range{.lo = end(text.substr(0, colon)), .hi = end(text.substr(colon + 1))};
  if (range.lo >= range.hi) {
    throw InvalidArgument("LO must be below HI, got '" + std::string(text) + "'");
  }
  return range;
}

std::string_view axis_name(Axis axis) noexcept { return info(axis).name; }

Axis parse_axis(std::string_view name) {
  std::string names;
  for (const AxisInfo& a : kAxes) {
    if (a.name == name) return a.axis;
    names += (names.empty() ? "" : ", ") + std::string(a.name);
  }
  throw InvalidArgument("unknown x axis '" + std::string(name) + "' (choose from " + names + ")");
}

std::vector<Figure> write_plot_files(const std::vector<Run>& runs, const ReportOptions& options) {
  std::error_code ec;
  fs::create_directories(options.out / "data", ec);
  if (ec) throw IoError(options.out.string() + ": cannot create the directory: " + ec.message());

  bool any_accuracy = false;
  bool any_test_loss = false;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    write_data(runs[i], i, options.out / "data", options.smooth);
    for (const Record& r : runs[i].records) {
      any_accuracy |= std::isfinite(r.test_accuracy);
      any_test_loss |= std::isfinite(r.test_loss);
    }
  }
  const auto loss = [](const Record& r) { return r.loss; };
  // The cost model, when the runs share one (costs under different models do not compare).
  const std::string cost_model = shared_cost_model(runs);
  std::vector<Axis> axes = options.x;
  if (axes.empty()) {
    axes = {Axis::kBits, Axis::kSim, Axis::kWall, Axis::kEpoch};
    const bool all_costed = std::all_of(runs.begin(), runs.end(), [&](const Run& run) {
      return plottable(run, Axis::kCost, loss, true, false) > 0;
    });
    if (all_costed && !cost_model.empty() && cost_model != "bits") axes.push_back(Axis::kCost);
  }
  const std::string prefix = options.title.empty() ? "" : options.title + ": ";
  std::vector<Figure> figures;
  std::vector<std::string> drawable;  // every figure with data, for an unknown --figures name
  const auto emit = [&](Plot plot) {
    drawable.push_back(plot.name);
    const auto& wanted = options.figures;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), plot.name) == wanted.end()) {
      return;
    }
    write_text(options.out / (plot.name + ".gp"), script(plot, runs, options));
    figures.push_back({plot.name, plot.title});
  };
  const auto x_log = [&](Axis axis) { return log_axis(axis) || options.log_x; };
  // The y range of `series` (positive values only on a log axis), NaN when empty.
  const auto y_span = [&](const std::vector<Series>& series, Axis axis, double (*y)(const Record&),
                          bool log, const std::vector<HLine>& hlines) {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    const auto see = [&](double v) {
      if (!std::isfinite(v) || (log && v <= 0)) return;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    };
    for (const Series& x : series) {
      for (const Record& r : runs[x.run].records) {
        const double xv = x_value(r, axis);
        if (std::isfinite(xv) && (!x_log(axis) || xv > 0)) see(y(r));
      }
    }
    for (const HLine& h : hlines) see(h.y);
    return std::isfinite(lo) ? std::pair{lo, hi} : std::pair{kMissing, kMissing};
  };
  const auto xlabel = [&](Axis axis, const std::string& base) {
    return options.log_x && !log_axis(axis) ? base + " (log scale)" : base;
  };

  // One figure per (metric, x axis): `file` is the data file's suffix, `y` the using column.
  struct Metric {
    std::string name, what, ylabel, file, y;
    double (*value)(const Record&);
    bool log_y;
    std::string style;
    YRange range;
    std::vector<HLine> hlines;
  };
  std::string loss_name = options.y_label.empty() ? "training loss" : options.y_label;
  if (options.smooth > 1) loss_name += " (mean of " + std::to_string(options.smooth) + " records)";
  std::vector<Metric> metrics{{"loss", loss_name,
                               options.log_y ? loss_name + " (log scale)" : loss_name, "_train.dat",
                               "7", loss, options.log_y, "lines", options.y_range, options.hlines}};
  if (any_accuracy) {
    metrics.push_back({"accuracy",
                       "test accuracy",
                       "test accuracy (%)",
                       "_eval.dat",
                       "($7*100)",
                       [](const Record& r) { return r.test_accuracy; },
                       false,
                       "linespoints",
                       {},
                       {}});
  } else if (any_test_loss) {  // a regression problem: no accuracy, but a test loss
    metrics.push_back({"test_loss",
                       "test loss",
                       "test loss",
                       "_eval.dat",
                       "8",
                       [](const Record& r) { return r.test_loss; },
                       options.log_y,
                       "linespoints",
                       {},
                       {}});
  }
  for (const Metric& m : metrics) {
    for (const Axis axis : axes) {
      const AxisInfo& a = info(axis);
      Plot plot;
      for (std::size_t i = 0; i < runs.size(); ++i) {
        const std::size_t n = plottable(runs[i], axis, m.value, x_log(axis), m.log_y);
        if (n == 0) continue;
        plot.series.push_back({i, "data/" + run_stem(i) + m.file,
                               std::to_string(a.column) + ":" + m.y, n < 2 ? "points" : m.style});
      }
      if (plot.series.empty()) continue;
      plot.name = m.name + "_vs_" + std::string(a.name);
      plot.title = prefix + m.what + " vs " + std::string(a.description);
      // In a grid of panels a full cost spec would run into the next panel: its name only.
      const std::string model =
          options.panel_by.empty() ? cost_model : cost_model.substr(0, cost_model.find(':'));
      plot.xlabel =
          !options.x_label.empty()
              ? options.x_label
              : xlabel(axis, axis == Axis::kCost
                                 ? "cost under " +
                                       (model.empty() ? "each run's --cost model" : model) +
                                       " (cumulative, log scale)"
                                 : std::string(a.label));
      plot.ylabel = m.ylabel;
      plot.log_x = x_log(axis);
      const auto [lo, hi] = y_span(plot.series, axis, m.value, m.log_y, m.hlines);
      plot.y_axis = y_axis(lo, hi, m.log_y, m.range);
      plot.hlines = m.hlines;
      if (axis == Axis::kSim || axis == Axis::kWall) plot.vlines = options.vlines;
      emit(std::move(plot));
    }
  }

  // θ over iterations for the tuned runs (SPEC §3: the tuner's decision is logged).
  const auto theta = [](const Record& r) { return r.theta; };
  Plot plot{.name = "theta_vs_iter",
            .title = prefix + "codec level θ chosen by the tuner",
            .xlabel = options.x_label.empty() ? xlabel(Axis::kIter, "iteration") : options.x_label,
            .ylabel = options.log_y ? "θ (k, density, s or bucket; log scale)"
                                    : "θ (k, density, s or bucket)",
            .log_x = options.log_x,
            .y_axis = {},
            .series = {},
            .hlines = {},
            .vlines = {}};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const std::size_t n = plottable(runs[i], Axis::kIter, theta, options.log_x, options.log_y);
    if (n == 0) continue;
    plot.series.push_back(
        {i, "data/" + run_stem(i) + "_tune.dat", "1:7", n < 2 ? "points" : "lines"});
  }
  if (!plot.series.empty()) {
    const auto [lo, hi] = y_span(plot.series, Axis::kIter, theta, options.log_y, {});
    plot.y_axis = y_axis(lo, hi, options.log_y, {});
    // θ is in each codec's own unit (k, density, s, bucket): panels get their own y range.
    if (!options.panel_by.empty()) plot.y_axis = options.log_y ? "set logscale y 10\n" : "";
    emit(std::move(plot));
  }

  for (const std::string& name : options.figures) {
    if (std::find(drawable.begin(), drawable.end(), name) != drawable.end()) continue;
    std::string names;
    for (const std::string& d : drawable) names += (names.empty() ? "" : ", ") + d;
    throw InvalidArgument("no figure '" + name + "' in this report (its runs give: " +
                          (names.empty() ? "none" : names) + ")");
  }
  return figures;
}

}  // namespace thinwire::cli::report
