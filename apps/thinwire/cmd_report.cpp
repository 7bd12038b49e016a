// `thinwire report RUN.jsonl... --out DIR` (SPEC §6): plots of training loss and test accuracy
// against bits, simulated time, wall time and epochs, θ over iterations for tuned runs, and an
// index.html with a summary table. The drawing is gnuplot's (Debian's gnuplot-nox): this file
// validates the flags, loads the runs, has report_plot.cpp write data files and scripts, runs
// gnuplot once over all scripts in DIR and writes the page.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "report_plot.hpp"

extern char** environ;

namespace thinwire::cli {
namespace {

namespace fs = std::filesystem;

struct ReportCli {
  std::vector<std::string> files;
  std::string out;
  std::vector<std::string> labels;  // FILE=TEXT
  std::vector<std::string> x;
  std::string title;
  bool log_y = false;
  bool log_x = false;
  bool no_svg = false;
  std::string y_label;
  std::string x_label;
  std::string y_range;
  std::string smooth;
  std::vector<std::string> hlines;
  std::vector<std::string> vlines;
  std::string panel_by;
  std::vector<std::string> highlight;  // FILE
  std::vector<std::string> figures;
};

// The gnuplot executable on PATH, or "" when there is none.
std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path == nullptr ? "" : path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / "gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) {
      return candidate.string();
    }
  }
  return "";
}

// The first line of gnuplot's output that reports an error (else its last line), for the
// one-line error of SPEC §6.
std::string gnuplot_complaint(const fs::path& log) {
  std::ifstream in(log);
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t^") == std::string::npos) continue;
    if (line.find("warning:") != std::string::npos) continue;
    // gnuplot names the place as `"NAME.gp" line N: message` after echoing the command.
    if (line.rfind("\"", 0) == 0 && line.find("\" line ") != std::string::npos) return line;
    last = line;
  }
  return last.empty() ? "no message" : last;
}

// Runs `gnuplot SCRIPT...` in `dir`, its output going to dir/gnuplot.log (kept on failure).
void run_gnuplot(const std::string& gnuplot, const fs::path& dir,
                 const std::vector<report::Figure>& figures) {
  std::vector<std::string> args{gnuplot};
  for (const report::Figure& f : figures) args.push_back(f.name + ".gp");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const fs::path log = dir / "gnuplot.log";
  const std::string log_name = log.string();
  const std::string dir_name = dir.string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_name.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addchdir_np(&actions, dir_name.c_str());
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, gnuplot.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw IoError("cannot start " + gnuplot + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw IoError(std::string("waiting for gnuplot: ") + std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw IoError("gnuplot failed on the scripts in " + dir_name + " (" + gnuplot_complaint(log) +
                  "; full output in " + log_name + ")");
  }
  std::error_code ec;
  fs::remove(log, ec);
  for (const report::Figure& f : figures) {
    const fs::path png = dir / (f.name + ".png");
    if (!fs::exists(png) || fs::file_size(png) == 0) {
      throw IoError("gnuplot did not draw " + png.string() + " (its script is " + f.name + ".gp)");
    }
  }
}

// Whether FILE names `run`: the path as given, or its file name, or its stem.
bool names_run(const std::string& file, const report::Run& run) {
  return file == run.path.string() || file == run.path.filename().string() ||
         file == run.path.stem().string();
}

// Applies --highlight FILE.
void apply_highlights(const std::vector<std::string>& files, std::vector<report::Run>& runs) {
  for (const std::string& file : files) {
    bool matched = false;
    for (report::Run& run : runs) {
      if (names_run(file, run)) run.highlight = matched = true;
    }
    if (!matched) {
      throw UsageError("--highlight: '" + file + "' is not one of the metrics files given");
    }
  }
}

// Applies --label FILE=TEXT.
void apply_labels(const std::vector<std::string>& overrides, std::vector<report::Run>& runs) {
  for (const std::string& item : overrides) {
    bool matched = false;
    // The first '=' that ends a FILE naming a run: file names may hold '=' too.
    for (auto eq = item.find('='); eq != std::string::npos && !matched;
         eq = item.find('=', eq + 1)) {
      const std::string file = item.substr(0, eq);
      for (report::Run& run : runs) {
        if (names_run(file, run)) {
          run.label = item.substr(eq + 1);
          matched = true;
        }
      }
    }
    if (!matched) {
      throw UsageError("--label: '" + item +
                       "' is not FILE=TEXT for one of the metrics files given");
    }
  }
}

void run_report(const ReportCli& cli) {
  if (cli.files.empty()) {
    throw UsageError(
        "report: no metrics files given (usage: thinwire report RUN.jsonl... --out DIR)");
  }
  report::ReportOptions options;
  options.out = cli.out;
  options.title = cli.title;
  options.log_y = cli.log_y;
  options.log_x = cli.log_x;
  options.svg = !cli.no_svg;
  options.y_label = cli.y_label;
  options.x_label = cli.x_label;
  if (!cli.y_range.empty()) {
    options.y_range = as_usage("--y-range", [&] { return report::parse_y_range(cli.y_range); });
  }
  if (!cli.smooth.empty()) {
    options.smooth = parse_unsigned(cli.smooth, "--smooth", 1, 1000000, "[1, 10^6]");
  }
  for (const std::string& item : cli.hlines) {
    options.hlines.push_back(as_usage("--hline", [&] { return report::parse_hline(item); }));
  }
  for (const std::string& item : cli.vlines) {
    options.vlines.push_back(as_usage("--vline", [&] { return report::parse_vline(item); }));
  }
  options.panel_by = cli.panel_by;
  options.figures = cli.figures;
  if (!cli.x.empty()) {
    for (const std::string& name : cli.x) {
      options.x.push_back(as_usage("--x", [&] { return report::parse_axis(name); }));
    }
  }
  for (const std::string& item : cli.labels) {
    if (item.find('=') == std::string::npos) {
      throw UsageError("--label: expected FILE=TEXT, got '" + item + "'");
    }
  }

  std::vector<report::Run> runs;
  std::vector<nlohmann::json> configs;
  std::vector<std::string> names;
  for (const std::string& file : cli.files) {
    runs.push_back(report::load_run(file));
    configs.push_back(runs.back().config);
    names.push_back(fs::path(file).stem().string());
  }
  const std::vector<std::string> labels = report::derive_labels(configs, names);
  for (std::size_t i = 0; i < runs.size(); ++i) runs[i].label = labels[i];
  apply_labels(cli.labels, runs);
  apply_highlights(cli.highlight, runs);

  const std::vector<report::Figure> figures =
      as_usage("--figures", [&] { return report::write_plot_files(runs, options); });
  const std::string gnuplot = find_gnuplot();
  if (gnuplot.empty()) {
    throw IoError(
        "gnuplot not found on PATH: thinwire report draws its figures with gnuplot (Debian/Ubuntu: "
        "apt-get install gnuplot-nox); the data files and gnuplot scripts are in " +
        options.out.string());
  }
  if (!figures.empty()) run_gnuplot(gnuplot, options.out, figures);

  const fs::path index = options.out / "index.html";
  std::ofstream page(index, std::ios::binary | std::ios::trunc);
  page << report::render_index_html(runs, figures, options);
  page.close();
  if (!page) throw IoError(index.string() + ": cannot write the file");
  std::cout << "report: " << index.string() << " (" << runs.size()
            << (runs.size() == 1 ? " run, " : " runs, ") << figures.size() << " figures)\n";
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto cli = std::make_shared<ReportCli>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Plot metrics files of 'thinwire train --metrics' and write DIR/index.html");
  cmd->add_option("runs", cli->files, "metrics files (JSONL) of the runs to compare")
      ->type_name("RUN.jsonl");
  cmd->add_option("--out", cli->out,
                  "directory for index.html, the PNG/SVG figures, data files "
                  "and gnuplot scripts (created if missing)")
      ->type_name("DIR")
      ->required();
  cmd->add_option("--label", cli->labels,
                  "name a run in legends and the table (repeatable); FILE is the path as given, "
                  "its file name or its stem. Default: what sets the run apart from the others")
      ->type_name("FILE=TEXT")
      ->allow_extra_args(false);
  cmd->add_option("--x", cli->x,
                  "x axes of the loss and accuracy figures, comma-separated: iter, epoch, bits, "
                  "sim, wall, cost [bits,sim,wall,epoch; and cost when the runs share a --cost "
                  "model other than bits]")
      ->type_name("AXES")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option("--title", cli->title, "title of the page and of every figure")
      ->type_name("TEXT");
  cmd->add_flag("--log-y", cli->log_y, "log scale for the loss axes and θ");
  cmd->add_flag("--log-x", cli->log_x,
                "log scale for every x axis (bits and cost always have one); points at x <= 0 "
                "are left out");
  cmd->add_option("--y-label", cli->y_label,
                  "what the runs' 'loss' is, for the loss figures' y axis, titles and table "
                  "[training loss]")
      ->type_name("TEXT");
  cmd->add_option("--x-label", cli->x_label,
                  "x axis label of every figure (units, say) [the axis's own]")
      ->type_name("TEXT");
  cmd->add_option("--y-range", cli->y_range,
                  "y range of the loss figures; either end may be empty [fitted to the data]")
      ->type_name("LO:HI");
  cmd->add_option("--smooth", cli->smooth,
                  "draw the training loss as the mean of the last N records [1: as logged]")
      ->type_name("N");
  cmd->add_option("--hline", cli->hlines,
                  "a dashed horizontal line at Y across the loss figures, in the legend as LABEL "
                  "when given (repeatable)")
      ->type_name("Y[=LABEL]")
      ->allow_extra_args(false);
  cmd->add_option("--vline", cli->vlines,
                  "a dashed vertical line at X seconds across the figures against sim or wall "
                  "time (an event such as a link's rate change), marked LABEL when given "
                  "(repeatable)")
      ->type_name("X[=LABEL]")
      ->allow_extra_args(false);
  cmd->add_option("--panel-by", cli->panel_by,
                  "one panel per value of this setting of the runs' configs (e.g. codec), each "
                  "with its own legend, in every figure")
      ->type_name("KEY");
  cmd->add_option("--highlight", cli->highlight,
                  "draw this run black and thick (repeatable); FILE as for --label")
      ->type_name("FILE")
      ->allow_extra_args(false);
  cmd->add_option("--figures", cli->figures,
                  "draw only these figures, comma-separated (loss_vs_bits, theta_vs_iter, ...: "
                  "the PNG names) [all that have data]")
      ->type_name("NAMES")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_flag("--no-svg", cli->no_svg, "draw PNG figures only");
  cmd->footer(
      "Needs gnuplot (Debian/Ubuntu package gnuplot-nox). The scripts stay in DIR: edit one and\n"
      "re-draw it with 'cd DIR && gnuplot NAME.gp'.\n"
      "Example: thinwire report runs/identity.jsonl runs/qsgd.jsonl --out report --log-y");
  cmd->callback([cli] { run_report(*cli); });
}

}  // namespace thinwire::cli
