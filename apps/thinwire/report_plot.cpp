#include "report_plot.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "thinwire/core/error.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/metrics.hpp"

namespace thinwire::cli::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- reading --------------------------------------------------------------------------------

// Line numbers of the non-empty lines, which read_metrics returns (it skips empty ones), so that
// errors about a record can name FILE:LINE.
std::vector<std::size_t> nonempty_line_numbers(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::size_t> numbers;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty()) numbers.push_back(n);
  }
  return numbers;
}

double field(const json& record, const char* key, const std::string& where) {
  const auto it = record.find(key);
  if (it == record.end() || it->is_null()) return kMissing;
  if (!it->is_number()) {
    throw IoError(where + ": '" + key + "' is " + it->dump() + ", not a number");
  }
  return it->get<double>();
}

// ---- labels ---------------------------------------------------------------------------------

// Settings that say where a run wrote things or how often, not what was run.
const std::set<std::string, std::less<>> kOutputOnly{
    "metrics",   "save-model", "checkpoint",   "checkpoint-every", "resume",
    "log-every", "eval-every", "on-nonfinite", "progress"};

// A codec spec split for display: "qsgd:s=7,bucket=512+ef" -> qsgd, [(s,7),(bucket,512)], "+ef".
// The parameters keep the order the registry wrote them in (its canonical spec puts the level
// first), which Spec's sorted map would lose.
struct CodecParts {
  std::string name;
  std::vector<std::pair<std::string, std::string>> params;
  std::string suffix;
};

CodecParts split_codec(const std::string& spec) {
  CodecParts parts;
  std::string base = spec;
  if (const auto plus = base.find('+'); plus != std::string::npos) {
    parts.suffix = base.substr(plus);
    base.resize(plus);
  }
  const auto colon = base.find(':');
  parts.name = base.substr(0, colon);
  if (colon == std::string::npos) return parts;
  std::string rest = base.substr(colon + 1);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string item = rest.substr(0, comma);
    const auto eq = item.find('=');
    parts.params.emplace_back(item.substr(0, eq),
                              eq == std::string::npos ? "" : item.substr(eq + 1));
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  return parts;
}

std::string value_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", value.get<double>());
    return buf;
  }
  return value.dump();
}

// The codec part of every label (see derive_labels).
std::vector<std::string> codec_labels(const std::vector<json>& configs) {
  std::vector<CodecParts> parts;
  for (const json& c : configs) {
    const json value = c.value("codec", json());
    parts.push_back(split_codec(value.is_string() ? value.get<std::string>() : ""));
  }
  // Parameters whose value is not the same across the runs of one codec name.
  std::map<std::string, std::set<std::string>> varying;
  for (const CodecParts& a : parts) {
    for (const CodecParts& b : parts) {
      if (a.name != b.name) continue;
      for (const auto& [key, value] : a.params) {
        const auto other = std::find_if(b.params.begin(), b.params.end(),
                                        [&](const auto& p) { return p.first == key; });
        if (other == b.params.end() || other->second != value) varying[a.name].insert(key);
      }
    }
  }
  std::vector<std::string> labels;
  for (const CodecParts& p : parts) {
    std::string text = p.name;
    std::string params;
    for (std::size_t i = 0; i < p.params.size(); ++i) {
      const auto& [key, value] = p.params[i];
      if (i != 0 && varying[p.name].count(key) == 0) continue;
      params += (params.empty() ? "" : ",") + key + (value.empty() ? "" : "=" + value);
    }
    if (!params.empty()) text += ":" + params;
    labels.push_back(text + p.suffix);
  }
  return labels;
}

// One setting's part of a label, "" when it adds nothing (a false flag, the fixed tuner).
std::string setting_text(const std::string& key, const json& value) {
  if (value.is_null()) return "";
  if (value.is_boolean()) return value.get<bool>() ? key : "";
  const std::string text = value_text(value);
  if (key == "tuner") return text == "fixed" ? "" : text;
  static const std::set<std::string, std::less<>> kSelfNamed{
      "algorithm", "sync", "backend", "topology", "problem", "data", "sharding", "link", "cost"};
  if (kSelfNamed.count(key) != 0) return text;
  if (key == "workers") return "M=" + text;  // SPEC's names for the math
  if (key == "local-steps") return "H=" + text;
  return key + "=" + text;
}

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

// Okabe–Ito colour-blind-safe palette; run i always gets line type i, in every figure.
constexpr std::array<const char*, 8> kColors{"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                             "#E69F00", "#56B4E9", "#000000", "#999999"};
constexpr std::array<int, 8> kPoints{7, 5, 9, 13, 11, 15, 6, 4};

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

// The per-run data files (see the header for their columns).
void write_data(const Run& run, std::size_t index, const fs::path& dir) {
  static constexpr const char* kHeader = "# iter epoch bits sim_s wall_s cost";
  std::string train = std::string(kHeader) + " loss\n";
  std::string eval = std::string(kHeader) + " test_accuracy test_loss\n";
  std::string tune = std::string(kHeader) + " theta rho tuned_bits\n";
  for (const Record& r : run.records) {
    const std::string x = num(r.iter) + " " + num(r.epoch) + " " + num(r.bits) + " " +
                          num(r.sim_s) + " " + num(r.wall_s) + " " + num(r.cost);
    if (std::isfinite(r.loss)) {
      train += x + " " + num(r.loss) + "\n";
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
std::size_t plottable(const Run& run, Axis axis, double (*y)(const Record&), bool log_y) {
  std::size_t n = 0;
  for (const Record& r : run.records) {
    const double xv = x_value(r, axis);
    const double yv = y(r);
    n +=
        std::isfinite(xv) && std::isfinite(yv) && (!log_axis(axis) || xv > 0) && (!log_y || yv > 0);
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

// A log y axis fitted to [lo, hi] (positive): gnuplot's own autoscale widens it to whole decades,
// which squeezes a loss that falls from 1.7 to 0.4 into a fifth of the height. Tics at 1-1.5-2-3-
// 4-5-6-8 within a decade, 1-2-5 over up to three decades, else at the decades.
std::string log_y_axis(double lo, double hi) {
  const double bottom = lo / 1.08;
  const double top = hi * 1.08;
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

struct Series {
  std::size_t run;
  std::string file;    // relative to the report directory
  std::string using_;  // gnuplot `using` clause
  std::string style;   // lines | linespoints
};

std::string script(const std::string& name, const std::string& title, const std::string& xlabel,
                   const std::string& ylabel, bool log_x, const std::string& y_axis,
                   const std::vector<Run>& runs, const std::vector<Series>& series, bool svg) {
  std::string s = "# thinwire report: " + title + ".\n# Edit freely; re-draw with: gnuplot " +
                  name + ".gp (in this directory)\n";
  // `reset`: thinwire runs all scripts in one gnuplot session, where settings would carry over.
  s += "reset\nset encoding utf8\n";
  s += "set terminal pngcairo size 960,600 font 'Sans,11' noenhanced linewidth 1.5\n";
  s += "set output " + gp_quote(name + ".png") + "\n";
  s += "set title " + gp_quote(title) + " font ',13'\n";
  s += "set xlabel " + gp_quote(xlabel) + "\nset ylabel " + gp_quote(ylabel) + "\n";
  s += "set grid back lt 1 lc rgb '#e6e6e6' lw 1\nset border 3 lw 1\nset tics nomirror out\n";
  // Below the graph, with one extra line of height: without it gnuplot 5.4 draws the first row
  // of the key over the x label.
  s += "set key outside below left Left reverse noautotitle height 1\n";
  s += "set datafile missing 'NaN'\n";
  for (std::size_t i = 0; i < kColors.size(); ++i) {
    s += "set linetype " + std::to_string(i + 1) + " lc rgb '" + kColors[i] + "' lw 2 pt " +
         std::to_string(kPoints[i]) + " ps 0.9\n";
  }
  s += "set linetype cycle " + std::to_string(kColors.size()) + "\n";
  if (log_x) s += "set logscale x 10\nset format x '%.0s%c'\nset mxtics 10\n";
  s += y_axis;
  s += "plot ";
  for (std::size_t k = 0; k < series.size(); ++k) {
    const Series& x = series[k];
    s += (k == 0 ? "" : ", \\\n     ") + gp_quote(x.file) + " using " + x.using_ + " with " +
         x.style + " lt " + std::to_string(x.run + 1) + " title " +
         gp_quote(legend_text(runs[x.run].label));
  }
  s += "\n";
  if (svg) {
    s += "set terminal svg size 960,600 font 'Sans,11' noenhanced dynamic background rgb 'white'\n";
    s += "set output " + gp_quote(name + ".svg") + "\nreplot\n";
  }
  s += "unset output\n";
  return s;
}

}  // namespace

std::string shared_cost_model(const std::vector<Run>& runs) {
  std::string model;
  for (const Run& run : runs) {
    const json value = run.config.value("cost", json());
    if (!value.is_string()) return "";
    if (!model.empty() && value.get<std::string>() != model) return "";
    model = value.get<std::string>();
  }
  return model;
}

Run load_run(const fs::path& path) {
  const std::vector<json> lines = train::read_metrics(path);
  if (lines.empty() || !lines[0].contains("config") || !lines[0]["config"].is_object()) {
    throw IoError(path.string() +
                  ":1: not a thinwire metrics file (its first line must be {\"config\": {...}}, "
                  "as 'thinwire train --metrics' writes)");
  }
  Run run{.path = path, .config = lines[0]["config"], .records = {}, .label = {}};
  const std::vector<std::size_t> numbers = nonempty_line_numbers(path);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const json& line = lines[i];
    const std::string where =
        path.string() + ":" + std::to_string(i < numbers.size() ? numbers[i] : i + 1);
    Record r;
    r.iter = field(line, "iter", where);
    if (!std::isfinite(r.iter)) throw IoError(where + ": the record has no 'iter'");
    r.epoch = field(line, "epoch", where);
    r.bits = field(line, "bits", where);
    r.bits_uncompressed = field(line, "bits_uncompressed", where);
    r.sim_s = field(line, "sim_s", where);
    r.wall_s = field(line, "wall_s", where);
    r.loss = field(line, "loss", where);
    r.test_accuracy = field(line, "test_accuracy", where);
    r.test_loss = field(line, "test_loss", where);
    r.theta = field(line, "theta", where);
    r.rho = field(line, "rho", where);
    r.tuned_bits = field(line, "tuned_bits", where);
    r.cost = field(line, "cost", where);
    run.records.push_back(r);
  }
  return run;
}

std::vector<std::string> derive_labels(const std::vector<json>& configs,
                                       const std::vector<std::string>& names) {
  // The order settings appear in: the tuner before the codec it tunes, then how the run is
  // organized, then the rest in the order of `thinwire train --help`, then unknown keys.
  std::vector<std::string> order{"tuner", "codec", "algorithm", "sync", "backend"};
  for (const train::ConfigField& f : train::config_fields()) {
    if (std::find(order.begin(), order.end(), f.name) == order.end()) order.emplace_back(f.name);
  }
  std::set<std::string> extra;
  for (const json& c : configs) {
    for (const auto& [key, value] : c.items()) {
      if (std::find(order.begin(), order.end(), key) == order.end()) extra.insert(key);
    }
  }
  order.insert(order.end(), extra.begin(), extra.end());

  const std::vector<std::string> codecs = codec_labels(configs);
  std::vector<std::string> labels(configs.size());
  for (const std::string& key : order) {
    if (kOutputOnly.count(key) != 0) continue;
    bool differs = false;
    for (const json& c : configs) differs |= c.value(key, json()) != configs[0].value(key, json());
    if (key != "codec" && !differs) continue;
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const std::string part =
          key == "codec" ? codecs[i] : setting_text(key, configs[i].value(key, json()));
      if (!part.empty()) labels[i] += (labels[i].empty() ? "" : " ") + part;
    }
  }
  // Runs of the same configuration (repeats) are told apart by their file names.
  std::map<std::string, int> count;
  for (const std::string& l : labels) ++count[l];
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string name = i < names.size() ? names[i] : std::to_string(i + 1);
    if (labels[i].empty()) {
      labels[i] = name;
    } else if (count[labels[i]] > 1) {
      labels[i] += " [" + name + "]";
    }
  }
  return labels;
}

Summary summarize(const Run& run) {
  Summary s;
  s.records = run.records.size();
  double best = -1;
  for (const Record& r : run.records) {
    s.iterations = r.iter;
    if (std::isfinite(r.epoch)) s.epochs = r.epoch;
    if (std::isfinite(r.loss)) s.final_loss = r.loss;
    if (std::isfinite(r.test_accuracy)) {
      s.final_accuracy = r.test_accuracy;
      best = std::max(best, r.test_accuracy);
    }
    if (std::isfinite(r.test_loss)) s.final_test_loss = r.test_loss;
    if (std::isfinite(r.bits)) s.bits = r.bits;
    if (std::isfinite(r.bits_uncompressed)) s.bits_uncompressed = r.bits_uncompressed;
    if (std::isfinite(r.sim_s)) s.sim_s = r.sim_s;
    if (std::isfinite(r.wall_s)) s.wall_s = r.wall_s;
    if (std::isfinite(r.cost)) s.cost = r.cost;
    if (std::isfinite(r.theta)) s.tuned = true;
  }
  if (best >= 0) s.best_accuracy = best;
  return s;
}

std::string_view run_color(std::size_t index) noexcept { return kColors[index % kColors.size()]; }

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
    write_data(runs[i], i, options.out / "data");
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
      return plottable(run, Axis::kCost, loss, false) > 0;
    });
    if (all_costed && !cost_model.empty() && cost_model != "bits") axes.push_back(Axis::kCost);
  }
  const std::string prefix = options.title.empty() ? "" : options.title + ": ";
  std::vector<Figure> figures;

  // One figure per (metric, x axis): `file` is the data file's suffix, `y` the using column.
  struct Metric {
    std::string name, what, ylabel, file, y;
    double (*value)(const Record&);
    bool log_y;
    std::string style;
  };
  std::vector<Metric> metrics{{"loss", "training loss",
                               options.log_y ? "training loss (log scale)" : "training loss",
                               "_train.dat", "7", loss, options.log_y, "lines"}};
  if (any_accuracy) {
    metrics.push_back({"accuracy", "test accuracy", "test accuracy (%)", "_eval.dat", "($7*100)",
                       [](const Record& r) { return r.test_accuracy; }, false, "linespoints"});
  } else if (any_test_loss) {  // a regression problem: no accuracy, but a test loss
    metrics.push_back({"test_loss", "test loss", "test loss", "_eval.dat", "8",
                       [](const Record& r) { return r.test_loss; }, options.log_y, "linespoints"});
  }
  for (const Metric& m : metrics) {
    for (const Axis axis : axes) {
      const AxisInfo& a = info(axis);
      std::vector<Series> series;
      for (std::size_t i = 0; i < runs.size(); ++i) {
        const std::size_t n = plottable(runs[i], axis, m.value, m.log_y);
        if (n == 0) continue;
        series.push_back({i, "data/" + run_stem(i) + m.file, std::to_string(a.column) + ":" + m.y,
                          n < 2 ? "points" : m.style});
      }
      if (series.empty()) continue;
      const std::string name = m.name + "_vs_" + std::string(a.name);
      const std::string title = prefix + m.what + " vs " + std::string(a.description);
      const std::string xlabel =
          axis == Axis::kCost
              ? "cost under " + (cost_model.empty() ? "each run's --cost model" : cost_model) +
                    " (cumulative, log scale)"
              : std::string(a.label);
      std::string y_axis;
      if (m.log_y) {
        double lo = std::numeric_limits<double>::infinity();
        double hi = 0;
        for (const Series& x : series) {
          for (const Record& r : runs[x.run].records) {
            const double xv = x_value(r, axis);
            const double yv = m.value(r);
            if (!std::isfinite(xv) || (log_axis(axis) && xv <= 0) || !(yv > 0)) continue;
            lo = std::min(lo, yv);
            hi = std::max(hi, yv);
          }
        }
        if (hi > 0 && std::isfinite(hi)) y_axis = log_y_axis(lo, hi);
      }
      write_text(options.out / (name + ".gp"), script(name, title, xlabel, m.ylabel, log_axis(axis),
                                                      y_axis, runs, series, options.svg));
      figures.push_back({name, title});
    }
  }

  // θ over iterations for the tuned runs (SPEC §3: the tuner's decision is logged).
  std::vector<Series> theta;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const std::size_t n = plottable(
        runs[i], Axis::kIter, [](const Record& r) { return r.theta; }, false);
    if (n == 0) continue;
    theta.push_back({i, "data/" + run_stem(i) + "_tune.dat", "1:7", n < 2 ? "points" : "lines"});
  }
  if (!theta.empty()) {
    const std::string title = prefix + "codec level θ chosen by the tuner";
    write_text(options.out / "theta_vs_iter.gp",
               script("theta_vs_iter", title, "iteration", "θ (k, density, s or bucket)", false, "",
                      runs, theta, options.svg));
    figures.push_back({"theta_vs_iter", title});
  }
  return figures;
}

}  // namespace thinwire::cli::report
