// The reading half of `thinwire report` (report_plot.hpp): metrics files into runs, the labels
// that tell runs apart, and their summaries. The figures are report_plot.cpp's.
#include "report_plot.hpp"

#include <algorithm>
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
  const std::string text = setting_value_text(value);
  if (key == "tuner") return text == "fixed" ? "" : text;
  static const std::set<std::string, std::less<>> kSelfNamed{
      "algorithm", "sync", "backend", "topology", "problem", "data", "sharding", "link", "cost"};
  if (kSelfNamed.count(key) != 0) return text;
  if (key == "workers") return "M=" + text;  // SPEC's names for the math
  if (key == "local-steps") return "H=" + text;
  return key + "=" + text;
}

}  // namespace

std::string setting_value_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", value.get<double>());
    return buf;
  }
  return value.dump();
}

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

}  // namespace thinwire::cli::report
