// `thinwire report` (SPEC §6): end to end from real `thinwire train` runs and hand-written metrics
// files to index.html and gnuplot's PNGs, the error contract (one `error:` line, exit 2 for usage,
// 1 for files and a missing gnuplot), and the label derivation of report_plot.cpp, which is
// compiled into this test. Assumes gnuplot (gnuplot-nox) is installed, as scripts/setup does.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "report_plot.hpp"
#include "support/process.hpp"
#include "support/scratch_dir.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/train/metrics.hpp"

namespace thinwire {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using Result = test::ProcessResult;
using test::slurp;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string printf_text(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

class ReportTest : public test::ScratchDirTest {
 protected:
  // Runs the tool in dir_ with `args` (no shell); `env` replaces the environment when given.
  Result run(std::vector<std::string> args, const std::vector<std::string>& env = {}) const {
    args.insert(args.begin(), THINWIRE_CLI_PATH);
    return test::run_process(args, dir_, std::chrono::seconds(120), {.cwd = dir_, .env = env});
  }

  // Expects a failure with `code` and exactly one stderr line "error: ..." containing `needle`.
  void expect_error(const std::vector<std::string>& args, int code, const std::string& needle,
                    const std::vector<std::string>& env = {}) {
    std::string joined;
    for (const std::string& a : args) joined += " " + a;
    SCOPED_TRACE("thinwire" + joined);
    const Result r = run(args, env);
    EXPECT_EQ(r.exit_code, code) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "stderr must be one line: " << r.err;
    EXPECT_TRUE(contains(r.err, needle)) << "expected '" << needle << "' in " << r.err;
  }

  // A small real training run (softmax regression on synthetic data, 2 workers, 20 iterations,
  // an evaluation every 10) writing `metrics`.
  void train(const std::string& codec, const std::string& metrics) {
    const Result r = run({"train",
                          "--data",
                          "synthetic:n=400,d=20,task=softmax,classes=3,test_fraction=0.25",
                          "--problem",
                          "softmax",
                          "--workers",
                          "2",
                          "--batch-size",
                          "16",
                          "--iterations",
                          "20",
                          "--log-every",
                          "5",
                          "--eval-every",
                          "10",
                          "--codec",
                          codec,
                          "--metrics",
                          metrics,
                          "--progress",
                          "none"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
  }
};

// A PNG file starts with these 8 bytes (PNG specification, §5.2).
bool is_png(const fs::path& file) {
  const std::string bytes = slurp(file);
  return bytes.size() > 1000 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

TEST_F(ReportTest, TrainRunsGiveFiguresAndATableWithTheirNumbers) {
  train("identity", "identity.jsonl");
  train("qsgd:s=15,bucket=64", "qsgd.jsonl");
  const Result r = run({"report", "identity.jsonl", "qsgd.jsonl", "--out", "rep"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(contains(r.out, "index.html")) << r.out;

  for (const std::string y : {"loss", "accuracy"}) {
    for (const std::string x : {"bits", "sim", "wall", "epoch"}) {
      const std::string name = y + "_vs_" + x;
      SCOPED_TRACE(name);
      EXPECT_TRUE(is_png(path("rep") / (name + ".png")));
      EXPECT_EQ(slurp(path("rep") / (name + ".svg")).rfind("<?xml", 0), 0u);
      EXPECT_TRUE(contains(slurp(path("rep") / (name + ".gp")), "plot "));
    }
  }
  EXPECT_FALSE(fs::exists(path("rep") / "theta_vs_iter.png")) << "no run was tuned";
  EXPECT_FALSE(fs::exists(path("rep") / "gnuplot.log"));

  const std::string html = slurp(path("rep") / "index.html");
  // Labels from what differs: the codec, with its level and the parameter that differs.
  EXPECT_TRUE(contains(html, "identity</td>")) << html;
  EXPECT_TRUE(contains(html, "qsgd:s=15</td>")) << html;
  EXPECT_TRUE(contains(html, "<img src=\"loss_vs_bits.png\""));
  EXPECT_TRUE(contains(slurp(path("rep") / "loss_vs_bits.gp"), "title 'qsgd:s=15'"));
  for (const std::string file : {"identity.jsonl", "qsgd.jsonl"}) {
    SCOPED_TRACE(file);
    const std::vector<json> lines = train::read_metrics(path(file));
    ASSERT_GE(lines.size(), 5u);
    const json& last = lines.back();
    ASSERT_TRUE(last.contains("test_accuracy")) << last.dump();  // iteration 20 is evaluated
    // Every number of the row, unrounded in the cell's title and rounded in its text.
    EXPECT_TRUE(
        contains(html, "title=\"" + printf_text("%.17g", last["bits"].get<double>()) + "\">"));
    EXPECT_TRUE(contains(html, ">" + printf_text("%.4g", last["loss"].get<double>()) + "</td>"));
    EXPECT_TRUE(contains(
        html, ">" + printf_text("%.2f %%", 100 * last["test_accuracy"].get<double>()) + "</td>"));
    EXPECT_TRUE(contains(html, "title=\"" + printf_text("%.17g", last["wall_s"].get<double>())));
    EXPECT_TRUE(contains(html, "<code>" + file + "</code>"));
  }
  // Identity sends exactly its uncompressed size.
  EXPECT_TRUE(contains(html, ">100.0 %</td>")) << html;
}

TEST_F(ReportTest, TunedRunsGetAThetaFigureAndFlagsShapeTheReport) {
  const std::string config_fixed =
      R"({"config":{"codec":"topk:k=0.1+ef","tuner":"fixed","workers":4,"metrics":"a.jsonl"}})";
  const std::string config_tuned =
      R"({"config":{"codec":"topk:k=0.1+ef","tuner":"dynamic","workers":4,"metrics":"b.jsonl"}})";
  std::string fixed = config_fixed + "\n";
  std::string tuned = config_tuned + "\n";
  for (int i = 1; i <= 6; ++i) {
    const double loss = 1.0 / i;
    fixed += json{{"iter", 10 * i},
                  {"epoch", i},
                  {"loss", loss},
                  {"bits", 1000 * i},
                  {"bits_uncompressed", 8000 * i},
                  {"sim_s", 0.1 * i},
                  {"wall_s", 0.2 * i}}
                 .dump() +
             "\n";
    tuned += json{{"iter", 10 * i},
                  {"epoch", i},
                  {"loss", loss / 2},
                  {"bits", 600 * i},
                  {"bits_uncompressed", 8000 * i},
                  {"sim_s", 0.1 * i},
                  {"wall_s", 0.2 * i},
                  {"theta", 10 + i},
                  {"rho", 0.5},
                  {"tuned_bits", 400}}
                 .dump() +
             "\n";
  }
  write("a.jsonl", fixed);
  write("b.jsonl", tuned);
  const Result r = run({"report", "a.jsonl", "b.jsonl", "--out", "rep", "--x", "bits", "--title",
                        "Tuning <test>", "--log-y", "--no-svg", "--label", "a=fixed k"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(is_png(path("rep/loss_vs_bits.png")));
  EXPECT_TRUE(is_png(path("rep/theta_vs_iter.png")));
  EXPECT_FALSE(fs::exists(path("rep/loss_vs_sim.png"))) << "--x bits only";
  EXPECT_FALSE(fs::exists(path("rep/loss_vs_bits.svg"))) << "--no-svg";
  EXPECT_FALSE(fs::exists(path("rep/accuracy_vs_bits.png"))) << "no evaluations";
  const std::string theta_script = slurp(path("rep/theta_vs_iter.gp"));
  EXPECT_TRUE(contains(theta_script, "'data/run02_tune.dat'"));
  EXPECT_FALSE(contains(theta_script, "run01")) << "the fixed run has no θ";
  EXPECT_TRUE(contains(slurp(path("rep/loss_vs_bits.gp")), "set logscale y"));

  const std::string html = slurp(path("rep/index.html"));
  EXPECT_TRUE(contains(html, "<h1>Tuning &lt;test&gt;</h1>"));
  EXPECT_TRUE(contains(html, "fixed k</td>"));                // --label
  EXPECT_TRUE(contains(html, "dynamic topk:k=0.1+ef</td>"));  // derived
  EXPECT_TRUE(contains(html, ">6.000 kbit</td>")) << html;
  EXPECT_TRUE(contains(html, ">3.600 kbit</td>")) << html;
  EXPECT_TRUE(contains(html, ">7.5 % (13.3× fewer)</td>")) << html;  // 3600 / 48000
}

// Runs priced under one shared cost model other than bits also get figures against that cost.
TEST_F(ReportTest, ASharedCostModelAddsCostFigures) {
  for (const std::string cost : {"bits", "linear:latency=1ms,bandwidth=10Mbit"}) {
    SCOPED_TRACE(cost);
    for (const std::string name : {"a", "b"}) {
      std::string text =
          json{{"config", {{"codec", name == "a" ? "identity" : "sign"}, {"cost", cost}}}}.dump() +
          "\n";
      for (int i = 1; i <= 3; ++i) {
        text += json{{"iter", i}, {"loss", 1.0 / i}, {"bits", 100 * i}, {"cost", 0.5 * i}}.dump() +
                "\n";
      }
      write(name + ".jsonl", text);
    }
    fs::remove_all(path("rep"));
    const Result r = run({"report", "a.jsonl", "b.jsonl", "--out", "rep"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(fs::exists(path("rep/loss_vs_cost.png")), cost != "bits");
    EXPECT_FALSE(fs::exists(path("rep/loss_vs_sim.gp"))) << "no record has sim_s";
    EXPECT_TRUE(contains(slurp(path("rep/index.html")), "<small>" + cost + "</small>"));
    if (cost != "bits") {
      EXPECT_TRUE(is_png(path("rep/loss_vs_cost.png")));
      EXPECT_TRUE(contains(slurp(path("rep/loss_vs_cost.gp")), "cost under " + cost));
    }
  }
}

TEST_F(ReportTest, ARunWithoutRecordsStillGetsItsRow) {
  write("empty.jsonl", R"({"config":{"codec":"identity"}})"
                       "\n");
  const Result r = run({"report", "empty.jsonl", "--out", "rep"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = slurp(path("rep/index.html"));
  EXPECT_TRUE(contains(html, "No run has records to plot."));
  EXPECT_TRUE(contains(html, "<code>empty.jsonl</code>"));
}

TEST_F(ReportTest, UsageErrorsExitWithTwo) {
  write("a.jsonl", R"({"config":{"codec":"identity"}})"
                   "\n");
  expect_error({"report", "--out", "rep"}, 2, "no metrics files");
  expect_error({"report", "a.jsonl"}, 2, "--out");
  expect_error({"report", "a.jsonl", "--out", "rep", "--x", "bits,speed"}, 2, "unknown x axis");
  expect_error({"report", "a.jsonl", "--out", "rep", "--label", "b.jsonl=B"}, 2, "--label");
  expect_error({"report", "a.jsonl", "--out", "rep", "--label", "nolabel"}, 2, "FILE=TEXT");
}

TEST_F(ReportTest, RuntimeErrorsExitWithOneAndNameTheFile) {
  const std::string config = R"({"config":{"codec":"identity"}})";
  write("bad.jsonl", config + "\n{\"iter\":1,\"loss\":1}\n{not json\n{\"iter\":3}\n");
  write("noconfig.jsonl", "{\"iter\":1,\"loss\":1}\n");
  write("badtype.jsonl", config + "\n\n{\"iter\":1,\"loss\":\"low\"}\n");
  write("noiter.jsonl", config + "\n{\"loss\":1}\n");
  write("good.jsonl", config + "\n{\"iter\":1,\"loss\":1,\"bits\":8}\n");
  expect_error({"report", "missing.jsonl", "--out", "rep"}, 1, "missing.jsonl");
  expect_error({"report", "bad.jsonl", "--out", "rep"}, 1, "bad.jsonl:3");
  expect_error({"report", "noconfig.jsonl", "--out", "rep"}, 1, "noconfig.jsonl:1");
  expect_error({"report", "badtype.jsonl", "--out", "rep"}, 1, "badtype.jsonl:3: 'loss'");
  expect_error({"report", "noiter.jsonl", "--out", "rep"}, 1, "noiter.jsonl:2");
  // Without gnuplot on PATH: say which package to install; the scripts are still written.
  expect_error({"report", "good.jsonl", "--out", "rep"}, 1, "gnuplot-nox", {"PATH=/nonexistent"});
  EXPECT_TRUE(fs::exists(path("rep/loss_vs_bits.gp")));
  EXPECT_FALSE(fs::exists(path("rep/index.html")));
}

TEST_F(ReportTest, HelpDescribesTheCommand) {
  const Result r = run({"report", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, "--out"));
  EXPECT_TRUE(contains(r.out, "gnuplot-nox"));
}

// ---- label derivation and summaries (report_plot.cpp, no process) ---------------------------

std::vector<std::string> labels(const std::vector<std::string>& configs) {
  std::vector<json> parsed;
  std::vector<std::string> names;
  for (const std::string& c : configs) {
    parsed.push_back(json::parse(c));
    names.push_back(std::string(1, static_cast<char>('a' + names.size())));
  }
  return cli::report::derive_labels(parsed, names);
}

TEST(ReportLabels, CodecLevelAlwaysOtherSettingsWhenTheyDiffer) {
  using V = std::vector<std::string>;
  const std::string q7 = "qsgd:s=7,bucket=512,norm=max,coding=packed";
  EXPECT_EQ(labels({R"({"codec":"identity","sync":"ring"})",
                    R"({"codec":")" + q7 + R"(","sync":"ring"})"}),
            (V{"identity", "qsgd:s=7"}));
  EXPECT_EQ(labels({R"({"codec":")" + q7 + R"("})",
                    R"({"codec":"qsgd:s=15,bucket=512,norm=max,coding=packed"})"}),
            (V{"qsgd:s=7", "qsgd:s=15"}));
  EXPECT_EQ(labels({R"({"codec":"qsgd:s=7,bucket=512"})", R"({"codec":"qsgd:s=7,bucket=64"})"}),
            (V{"qsgd:s=7,bucket=512", "qsgd:s=7,bucket=64"}));
  EXPECT_EQ(labels({R"({"codec":"topk:k=0.1+ef","tuner":"dynamic","workers":4})",
                    R"({"codec":"topk:k=0.1+ef","tuner":"fixed","workers":8})"}),
            (V{"dynamic topk:k=0.1+ef M=4", "topk:k=0.1+ef M=8"}));
  EXPECT_EQ(labels({R"({"codec":"identity","algorithm":"local-sgd","local-steps":4,"lr":0.1})",
                    R"({"codec":"identity","algorithm":"sgd","local-steps":1,"lr":0.05})"}),
            (V{"identity local-sgd H=4 lr=0.1", "identity sgd H=1 lr=0.05"}));
  EXPECT_EQ(labels({R"({"codec":"sign","nesterov":true})", R"({"codec":"sign","nesterov":false})"}),
            (V{"sign nesterov", "sign"}));
}

TEST(ReportLabels, OutputSettingsDoNotCountAndRepeatsGetTheirFileNames) {
  using V = std::vector<std::string>;
  EXPECT_EQ(labels({R"({"codec":"identity","metrics":"a.jsonl","log-every":5})",
                    R"({"codec":"identity","metrics":"b.jsonl","log-every":10})"}),
            (V{"identity [a]", "identity [b]"}));
  EXPECT_EQ(labels({R"({})", R"({"codec":"identity"})"}), (V{"a", "identity"}));
}

TEST(ReportSummary, BestAndFinalAccuracyAndLastCounters) {
  cli::report::Run run;
  for (int i = 1; i <= 4; ++i) {
    cli::report::Record r;
    r.iter = i;
    r.loss = i == 4 ? cli::report::kMissing : 1.0 / i;  // a non-finite loss is logged as null
    r.bits = 100.0 * i;
    if (i % 2 == 0) r.test_accuracy = i == 2 ? 0.9 : 0.8;
    run.records.push_back(r);
  }
  const cli::report::Summary s = cli::report::summarize(run);
  EXPECT_EQ(s.records, 4u);
  EXPECT_EQ(s.iterations, 4);
  EXPECT_DOUBLE_EQ(s.final_loss, 1.0 / 3);
  EXPECT_DOUBLE_EQ(s.best_accuracy, 0.9);
  EXPECT_DOUBLE_EQ(s.final_accuracy, 0.8);
  EXPECT_EQ(s.bits, 400);
  EXPECT_TRUE(std::isnan(s.wall_s));
  EXPECT_FALSE(s.tuned);
}

// ---- the options that shape the figures (write_plot_files, no process) -----------------------

namespace rp = cli::report;

// A run of `n` records at iterations 0..n-1 whose loss halves each step; tuned runs log θ.
rp::Run toy_run(const std::string& name, const json& config, int n, bool tuned = false) {
  rp::Run run{.path = name + ".jsonl",
              .config = config.is_null() ? json::object() : config,  // `{}` is null in json
              .records = {},
              .label = name};
  for (int i = 0; i < n; ++i) {
    rp::Record r;
    r.iter = i;
    r.loss = std::pow(0.5, i);
    r.cost = 10.0 * i;
    if (tuned) r.theta = 1 + i;
    run.records.push_back(r);
  }
  return run;
}

class ReportOptionsTest : public test::ScratchDirTest {
 protected:
  rp::ReportOptions options() const {
    rp::ReportOptions o;
    o.out = path("rep");
    o.x = {rp::Axis::kIter};
    o.svg = false;
    return o;
  }
  std::string script(const std::string& name) const { return slurp(path("rep") / (name + ".gp")); }
};

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST_F(ReportOptionsTest, HLineIsDrawnAcrossTheLossFiguresOnly) {
  const std::vector<rp::Run> runs{toy_run("a", {}, 5, true)};
  rp::ReportOptions o = options();
  o.hlines = {{.y = 1e-3, .label = "ε"}, {.y = 0.5, .label = ""}};
  (void)rp::write_plot_files(runs, o);
  const std::string loss = script("loss_vs_iter");
  EXPECT_TRUE(contains(loss, "0.001 with lines dt 2 lc rgb '#808080' lw 1 title 'ε'")) << loss;
  EXPECT_TRUE(contains(loss, "0.5 with lines dt 2 lc rgb '#808080' lw 1 notitle")) << loss;
  EXPECT_FALSE(contains(script("theta_vs_iter"), "with lines dt 2 lc rgb '#808080'"));
  // Without the option there is no line.
  (void)rp::write_plot_files(runs, options());
  EXPECT_FALSE(contains(script("loss_vs_iter"), "#808080"));
}

TEST_F(ReportOptionsTest, VLineIsDrawnAcrossTheTimeFiguresOnly) {
  std::vector<rp::Run> runs{toy_run("a", {}, 5, true)};
  for (rp::Record& r : runs[0].records) r.sim_s = r.wall_s = 0.5 * r.iter;
  rp::ReportOptions o = options();
  o.x = {rp::Axis::kIter, rp::Axis::kSim, rp::Axis::kWall};
  o.vlines = {{.x = 1.5, .label = "rate change"}, {.x = 3, .label = ""}};
  (void)rp::write_plot_files(runs, o);
  for (const std::string name : {"loss_vs_sim", "loss_vs_wall"}) {
    const std::string gp = script(name);
    EXPECT_TRUE(contains(gp, "set arrow 1 from 1.5, graph 0 to 1.5, graph 1 nohead")) << gp;
    EXPECT_TRUE(contains(gp, "set label 1 'rate change' at 1.5, graph 0.96")) << gp;
    EXPECT_TRUE(contains(gp, "set arrow 2 from 3, graph 0 to 3, graph 1 nohead")) << gp;
    EXPECT_FALSE(contains(gp, "set label 2")) << gp;
  }
  EXPECT_FALSE(contains(script("loss_vs_iter"), "set arrow"));
  EXPECT_FALSE(contains(script("theta_vs_iter"), "set arrow"));
}

TEST_F(ReportOptionsTest, LogXAndYRangeSetTheAxes) {
  const std::vector<rp::Run> runs{toy_run("a", {}, 5, true)};
  (void)rp::write_plot_files(runs, options());
  EXPECT_FALSE(contains(script("loss_vs_iter"), "set logscale x"));
  EXPECT_FALSE(contains(script("loss_vs_iter"), "set yrange"));

  rp::ReportOptions o = options();
  o.log_x = true;
  o.log_y = true;
  o.y_range = {.lo = 1e-5, .hi = 2};
  (void)rp::write_plot_files(runs, o);
  const std::string loss = script("loss_vs_iter");
  EXPECT_TRUE(contains(loss, "set logscale x 10")) << loss;
  EXPECT_TRUE(contains(loss, "set xlabel 'iteration (log scale)'")) << loss;
  EXPECT_TRUE(contains(loss, "set yrange [1e-05:2]")) << loss;
  // --log-y puts θ on a log axis too; the y range is the loss figures' only.
  const std::string theta = script("theta_vs_iter");
  EXPECT_TRUE(contains(theta, "set logscale x 10"));
  EXPECT_TRUE(contains(theta, "set logscale y 10"));
  EXPECT_FALSE(contains(theta, "[1e-05:2]"));

  // A linear axis with one end given leaves the other to gnuplot.
  o.log_y = false;
  o.y_range = {.lo = rp::kMissing, .hi = 3};
  (void)rp::write_plot_files(runs, o);
  EXPECT_TRUE(contains(script("loss_vs_iter"), "set yrange [*:3]"));
}

TEST_F(ReportOptionsTest, LogXLeavesOutARunWithOnlyXAtZero) {
  const std::vector<rp::Run> runs{toy_run("a", {}, 4), toy_run("b", {}, 1)};  // b: iter 0 only
  rp::ReportOptions o = options();
  (void)rp::write_plot_files(runs, o);
  EXPECT_TRUE(contains(script("loss_vs_iter"), "run02"));
  o.log_x = true;
  (void)rp::write_plot_files(runs, o);
  EXPECT_FALSE(contains(script("loss_vs_iter"), "run02"));
}

TEST_F(ReportOptionsTest, PanelByGivesOnePanelPerValueEachColouredFromTheStart) {
  const std::vector<rp::Run> runs{toy_run("a1", {{"family", "a"}}, 4),
                                  toy_run("a2", {{"family", "a"}}, 4),
                                  toy_run("b1", {{"family", "b"}}, 4)};
  rp::ReportOptions o = options();
  o.panel_by = "family";
  o.svg = true;
  (void)rp::write_plot_files(runs, o);
  const std::string loss = script("loss_vs_iter");
  // PNG and SVG each draw the whole grid (a multiplot cannot be replotted).
  EXPECT_EQ(count(loss, "set multiplot layout 1,2 title 'training loss vs iteration'"), 2u) << loss;
  EXPECT_EQ(count(loss, "unset multiplot"), 2u);
  EXPECT_EQ(count(loss, "set title 'a' font ',11'"), 2u);
  EXPECT_EQ(count(loss, "set title 'b' font ',11'"), 2u);
  // b1 is the first run of its panel: line type 1, as a1.
  EXPECT_TRUE(contains(loss, "'data/run03_train.dat' using 1:7 with lines lt 1 title 'b1'"))
      << loss;
  EXPECT_TRUE(contains(loss, "'data/run02_train.dat' using 1:7 with lines lt 2 title 'a2'"));
  // θ is in each codec's unit: with panels, gnuplot fits each panel's y axis.
  std::vector<rp::Run> tuned{toy_run("a", {{"family", "a"}}, 4, true),
                             toy_run("b", {{"family", "b"}}, 4, true)};
  tuned[1].records.back().theta = 1000;
  o.log_y = true;
  (void)rp::write_plot_files(tuned, o);
  EXPECT_TRUE(contains(script("theta_vs_iter"), "set logscale y 10"));
  EXPECT_FALSE(contains(script("theta_vs_iter"), "set yrange"));
  o.panel_by = "";
  (void)rp::write_plot_files(tuned, o);
  EXPECT_TRUE(contains(script("theta_vs_iter"), "set yrange"));
  o.panel_by = "family";
  const std::vector<std::string> colors = rp::run_colors(runs, o);
  EXPECT_EQ(colors[2], colors[0]);
  EXPECT_NE(colors[1], colors[0]);
  // Without panels: one graph, run i has line type i.
  (void)rp::write_plot_files(runs, options());
  EXPECT_FALSE(contains(script("loss_vs_iter"), "multiplot"));
  EXPECT_TRUE(contains(script("loss_vs_iter"), "with lines lt 3 title 'b1'"));
  EXPECT_NE(rp::run_colors(runs, options())[2], colors[0]);
}

TEST_F(ReportOptionsTest, AHighlightedRunIsBlackAndThick) {
  std::vector<rp::Run> runs{toy_run("a", {}, 4), toy_run("dyn", {}, 4)};
  runs[1].highlight = true;
  (void)rp::write_plot_files(runs, options());
  const std::string loss = script("loss_vs_iter");
  EXPECT_TRUE(contains(loss, "lt 2 lc rgb '#000000' lw 3.5 dt 1 title 'dyn'")) << loss;
  EXPECT_TRUE(contains(loss, "with lines lt 1 title 'a'")) << loss;  // the others as they were
  EXPECT_EQ(rp::run_colors(runs, options())[1], "#000000");
  // The palette has black (the 7th colour): beside a highlighted run, no other run is black.
  std::vector<rp::Run> many;
  for (int i = 0; i < 9; ++i) many.push_back(toy_run("r" + std::to_string(i), {}, 3));
  EXPECT_EQ(rp::run_colors(many, options())[6], "#000000");
  many[8].highlight = true;
  const std::vector<std::string> colors = rp::run_colors(many, options());
  for (int i = 0; i < 8; ++i) EXPECT_NE(colors[i], "#000000") << i;
}

TEST_F(ReportOptionsTest, FiguresSelectsAndAnUnknownNameListsTheOthers) {
  const std::vector<rp::Run> runs{toy_run("a", {}, 4, true)};
  rp::ReportOptions o = options();
  o.figures = {"theta_vs_iter"};
  const std::vector<rp::Figure> figures = rp::write_plot_files(runs, o);
  ASSERT_EQ(figures.size(), 1u);
  EXPECT_EQ(figures[0].name, "theta_vs_iter");
  EXPECT_FALSE(fs::exists(path("rep/loss_vs_iter.gp")));
  o.figures = {"loss_vs_speed"};
  try {
    (void)rp::write_plot_files(runs, o);
    ADD_FAILURE() << "an unknown figure name must throw";
  } catch (const InvalidArgument& e) {
    EXPECT_TRUE(contains(e.what(), "'loss_vs_speed'")) << e.what();
    EXPECT_TRUE(contains(e.what(), "loss_vs_iter, theta_vs_iter")) << e.what();
  }
}

TEST_F(ReportOptionsTest, XLabelAndTheCostModelsNameInPanels) {
  const json config{{"cost", "energy:payload=102B,header=25B"}, {"family", "a"}};
  const std::vector<rp::Run> runs{toy_run("a", config, 4)};
  rp::ReportOptions o = options();
  o.x = {rp::Axis::kCost};
  (void)rp::write_plot_files(runs, o);
  EXPECT_TRUE(contains(script("loss_vs_cost"), "cost under energy:payload=102B,header=25B ("));
  o.panel_by = "family";  // a panel is a third as wide: the model's name only
  (void)rp::write_plot_files(runs, o);
  EXPECT_TRUE(contains(script("loss_vs_cost"), "'cost under energy (cumulative, log scale)'"));
  o.x_label = "energy (J)";
  (void)rp::write_plot_files(runs, o);
  EXPECT_TRUE(contains(script("loss_vs_cost"), "set xlabel 'energy (J)'"));
  EXPECT_FALSE(contains(script("loss_vs_cost"), "cost under"));
}

TEST_F(ReportOptionsTest, YLabelNamesTheLoss) {
  const std::vector<rp::Run> runs{toy_run("a", {}, 4)};
  rp::ReportOptions o = options();
  o.y_label = "suboptimality";
  (void)rp::write_plot_files(runs, o);
  EXPECT_TRUE(contains(script("loss_vs_iter"), "set ylabel 'suboptimality'"));
  EXPECT_TRUE(contains(script("loss_vs_iter"), "set title 'suboptimality vs iteration'"));
}

TEST_F(ReportOptionsTest, SmoothDrawsTheMovingMeanOfTheLoss) {
  const std::vector<rp::Run> runs{toy_run("a", {}, 4)};  // losses 1, 0.5, 0.25, 0.125
  rp::ReportOptions o = options();
  (void)rp::write_plot_files(runs, o);
  const std::string raw = slurp(path("rep/data/run01_train.dat"));
  EXPECT_TRUE(contains(raw, " 20 0.25\n")) << raw;
  o.smooth = 2;
  (void)rp::write_plot_files(runs, o);
  const std::string mean = slurp(path("rep/data/run01_train.dat"));
  EXPECT_TRUE(contains(mean, " 0 1\n")) << mean;        // one loss so far (cost 0)
  EXPECT_TRUE(contains(mean, " 10 0.75\n")) << mean;    // (1 + 0.5) / 2
  EXPECT_TRUE(contains(mean, " 30 0.1875\n")) << mean;  // (0.25 + 0.125) / 2
  EXPECT_TRUE(contains(script("loss_vs_iter"), "set ylabel 'training loss (mean of 2 records)'"));
}

TEST(ReportParse, HLineAndYRange) {
  const rp::HLine h = rp::parse_hline("1e-3=ε = 10⁻³");
  EXPECT_DOUBLE_EQ(h.y, 1e-3);
  EXPECT_EQ(h.label, "ε = 10⁻³");
  EXPECT_EQ(rp::parse_hline("-2").label, "");
  for (const std::string bad : {"", "=x", "abc", "1e-3x=y", "inf"}) {
    EXPECT_THROW((void)rp::parse_hline(bad), InvalidArgument) << bad;
  }
  const rp::VLine v = rp::parse_vline("1.5=rate change");
  EXPECT_DOUBLE_EQ(v.x, 1.5);
  EXPECT_EQ(v.label, "rate change");
  EXPECT_THROW((void)rp::parse_vline("soon"), InvalidArgument);
  const rp::YRange r = rp::parse_y_range("1e-5:2");
  EXPECT_DOUBLE_EQ(r.lo, 1e-5);
  EXPECT_DOUBLE_EQ(r.hi, 2);
  EXPECT_TRUE(std::isnan(rp::parse_y_range(":2").lo));
  EXPECT_TRUE(std::isnan(rp::parse_y_range("1:").hi));
  for (const std::string bad : {"2", "2:1", "1:1", "a:2", "1:2:3"}) {
    EXPECT_THROW((void)rp::parse_y_range(bad), InvalidArgument) << bad;
  }
}

// The same options through the command line, drawn by gnuplot (a grid of panels included).
TEST_F(ReportTest, FigureOptionsDrawAndBadValuesAreUsageErrors) {
  for (const std::string name : {"a1", "a2", "b1"}) {
    std::string text =
        json{{"config", {{"family", name.substr(0, 1)}, {"cost", "bits"}}}}.dump() + "\n";
    for (int i = 0; i < 5; ++i) {
      text += json{{"iter", i}, {"loss", std::pow(0.3, i)}, {"cost", 100 * (i + 1)}}.dump() + "\n";
    }
    write(name + ".jsonl", text);
  }
  const Result r =
      run({"report",       "a1.jsonl",   "a2.jsonl",      "b1.jsonl",    "--out",  "rep",
           "--x",          "cost",       "--log-y",       "--y-range",   "1e-4:2", "--hline",
           "1e-3=ε",       "--panel-by", "family",        "--highlight", "a2",     "--figures",
           "loss_vs_cost", "--y-label",  "suboptimality", "--title",     "grid"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(is_png(path("rep/loss_vs_cost.png")));
  EXPECT_EQ(slurp(path("rep/loss_vs_cost.svg")).rfind("<?xml", 0), 0u);
  EXPECT_TRUE(contains(slurp(path("rep/loss_vs_cost.gp")), "lc rgb '#000000' lw 3.5"));
  EXPECT_TRUE(contains(slurp(path("rep/index.html")), "background:#000000"));
  EXPECT_TRUE(contains(slurp(path("rep/index.html")), "<th>final suboptimality</th>"));

  expect_error({"report", "a1.jsonl", "--out", "rep", "--hline", "low"}, 2, "--hline");
  expect_error({"report", "a1.jsonl", "--out", "rep", "--vline", "later"}, 2, "--vline");
  expect_error({"report", "a1.jsonl", "--out", "rep", "--y-range", "2:1"}, 2, "--y-range");
  expect_error({"report", "a1.jsonl", "--out", "rep", "--highlight", "c1"}, 2, "--highlight");
  expect_error({"report", "a1.jsonl", "--out", "rep", "--figures", "loss_vs_speed"}, 2,
               "loss_vs_speed");
}

}  // namespace
}  // namespace thinwire
