// index.html of `thinwire report`: one self-contained page (inline CSS, no scripts) that opens
// from the report directory in any browser, so a report can be copied or attached as a folder.
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "report_plot.hpp"
#include "thinwire/train/config.hpp"
#include "thinwire/train/report.hpp"

namespace thinwire::cli::report {
namespace {

using nlohmann::json;

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string printf_text(const char* format, double v) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string percent(double fraction) { return printf_text("%.2f %%", 100 * fraction); }

// "12.1 % (8.3× fewer)": what was sent as a share of the same messages with the identity codec.
std::string sent_ratio(double bits, double uncompressed) {
  if (!std::isfinite(bits) || !std::isfinite(uncompressed) || uncompressed <= 0) return "-";
  std::string text = printf_text("%.1f %%", 100 * bits / uncompressed);
  if (bits > 0 && bits < uncompressed) text += printf_text(" (%.1f× fewer)", uncompressed / bits);
  return text;
}

// A numeric cell; `exact` (the unrounded value) shows on hover and lets scripts scrape the page.
std::string cell(const std::string& text, double exact = std::nan("")) {
  std::string td = "<td class=\"num\"";
  if (std::isfinite(exact)) td += " title=\"" + printf_text("%.17g", exact) + "\"";
  return td + ">" + escape(text) + "</td>";
}

std::string setting_value(const json& value) {
  if (value.is_null()) return "-";
  return value.is_string() ? value.get<std::string>() : value.dump();
}

constexpr const char* kStyle = R"(
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35em 0.7em; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.swatch { display: inline-block; width: 1.6em; height: 0.35em; vertical-align: middle;
          margin-right: 0.5em; border-radius: 2px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr));
           gap: 1.5em; }
figure { margin: 0; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }
details { margin: 0.4em 0; }
)";

}  // namespace

std::string render_index_html(const std::vector<Run>& runs, const std::vector<Figure>& figures,
                              const ReportOptions& options) {
  const std::string title = options.title.empty() ? "thinwire report" : options.title;
  std::vector<Summary> summaries;
  bool any_accuracy = false;
  bool any_test_loss = false;
  bool any_cost = false;
  for (const Run& run : runs) {
    summaries.push_back(summarize(run));
    any_accuracy |= std::isfinite(summaries.back().final_accuracy);
    any_test_loss |= std::isfinite(summaries.back().final_test_loss);
    any_cost |= std::isfinite(summaries.back().cost);
  }

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<title>" + escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  h += "<h1>" + escape(title) + "</h1>\n";
  h += "<p class=\"meta\">" + std::to_string(runs.size()) + (runs.size() == 1 ? " run" : " runs") +
       ", made by <code>thinwire report</code> from metrics files of <code>thinwire train "
       "--metrics</code>. Bits are the real encoded sizes, headers included, summed over all "
       "workers.</p>\n";

  // ---- summary table
  h += "<h2>Summary</h2>\n<table class=\"summary\">\n<thead><tr><th>run</th><th>file</th>"
       "<th>iterations</th><th>epochs</th><th>final " +
       escape(options.y_label.empty() ? "training loss" : options.y_label) + "</th>";
  if (any_accuracy) h += "<th>best test accuracy</th><th>final test accuracy</th>";
  if (!any_accuracy && any_test_loss) h += "<th>final test loss</th>";
  h += "<th>bits sent</th><th>sent / uncompressed</th><th>simulated time</th><th>wall time</th>";
  const std::string cost_model = shared_cost_model(runs);
  if (any_cost) {
    h += "<th>cost" + (cost_model.empty() ? "" : "<br><small>" + escape(cost_model) + "</small>") +
         "</th>";
  }
  h += "</tr></thead>\n<tbody>\n";
  const std::vector<std::string> colors = run_colors(runs, options);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Summary& s = summaries[i];
    h += "<tr><td><span class=\"swatch\" style=\"background:" + colors[i] + "\"></span>" +
         escape(runs[i].label) + "</td>";
    h += "<td><code>" + escape(runs[i].path.string()) + "</code></td>";
    h += cell(printf_text("%.0f", s.iterations), s.iterations);
    h += cell(printf_text("%.3g", s.epochs), s.epochs);
    h += cell(printf_text("%.4g", s.final_loss), s.final_loss);
    if (any_accuracy) {
      h += cell(percent(s.best_accuracy), s.best_accuracy);
      h += cell(percent(s.final_accuracy), s.final_accuracy);
    }
    if (!any_accuracy && any_test_loss) {
      h += cell(printf_text("%.4g", s.final_test_loss), s.final_test_loss);
    }
    h += cell(std::isfinite(s.bits) ? train::format_bits(s.bits) : "-", s.bits);
    h += cell(sent_ratio(s.bits, s.bits_uncompressed),
              s.bits_uncompressed > 0 ? s.bits / s.bits_uncompressed : std::nan(""));
    h += cell(train::format_seconds(s.sim_s), s.sim_s);
    h += cell(train::format_seconds(s.wall_s), s.wall_s);
    if (any_cost) h += cell(printf_text("%.4g", s.cost), s.cost);
    h += "</tr>\n";
  }
  h += "</tbody>\n</table>\n";

  // ---- figures
  h += "<h2>Figures</h2>\n";
  if (figures.empty()) h += "<p>No run has records to plot.</p>\n";
  h += "<div class=\"figures\">\n";
  for (const Figure& f : figures) {
    const std::string name = escape(f.name);
    h += "<figure><a href=\"" + name + (options.svg ? ".svg" : ".png") + "\"><img src=\"" + name +
         ".png\" alt=\"" + escape(f.caption) + "\"></a>\n<figcaption>" + escape(f.caption);
    if (options.svg) h += " · <a href=\"" + name + ".svg\">SVG</a>";
    h += " · <a href=\"" + name + ".gp\">gnuplot script</a></figcaption></figure>\n";
  }
  h += "</div>\n";

  // ---- settings: those that tell the runs apart, then the shared ones, then each file's own
  std::vector<std::string> keys;
  for (const train::ConfigField& f : train::config_fields()) keys.emplace_back(f.name);
  std::set<std::string> seen(keys.begin(), keys.end());
  for (const Run& run : runs) {
    for (const auto& [key, value] : run.config.items()) {
      if (seen.insert(key).second) keys.push_back(key);
    }
  }
  std::vector<std::string> differing;
  std::string common;
  for (const std::string& key : keys) {
    bool present = false;
    bool differs = false;
    for (const Run& run : runs) {
      present |= run.config.contains(key);
      differs |= run.config.value(key, json()) != runs[0].config.value(key, json());
    }
    if (!present) continue;
    if (differs) {
      differing.push_back(key);
    } else {
      common += "<tr><td><code>" + escape(key) + "</code></td><td><code>" +
                escape(setting_value(runs[0].config.value(key, json()))) + "</code></td></tr>\n";
    }
  }
  h += "<h2>Settings</h2>\n";
  if (!differing.empty()) {
    h += "<table class=\"settings\">\n<thead><tr><th>run</th>";
    for (const std::string& key : differing) h += "<th><code>" + escape(key) + "</code></th>";
    h += "</tr></thead>\n<tbody>\n";
    for (const Run& run : runs) {
      h += "<tr><td>" + escape(run.label) + "</td>";
      for (const std::string& key : differing) {
        h += "<td><code>" + escape(setting_value(run.config.value(key, json()))) + "</code></td>";
      }
      h += "</tr>\n";
    }
    h += "</tbody>\n</table>\n";
  }
  h += "<details><summary>settings shared by " +
       std::string(runs.size() == 1 ? "the run" : "all runs") + "</summary>\n<table>\n" + common +
       "</table></details>\n";
  for (const Run& run : runs) {
    h += "<details><summary>first line of <code>" + escape(run.path.string()) +
         "</code></summary><pre>" + escape(run.config.dump(2)) + "</pre></details>\n";
  }
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace thinwire::cli::report
