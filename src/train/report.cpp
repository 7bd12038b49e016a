#include "thinwire/train/report.hpp"

#include <unistd.h>

#include <cmath>
#include <sstream>

namespace thinwire::train {
namespace {

constexpr int kBarWidth = 28;

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string row(const std::string& label, const std::string& run, const std::string& identity = {},
                const std::string& note = {}) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %-26s %-18s %-18s %s", label.c_str(), run.c_str(),
                identity.c_str(), note.c_str());
  std::string line = buf;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line + "\n";
}

}  // namespace

std::string format_bits(double bits) {
  static constexpr const char* kUnits[] = {"bit", "kbit", "Mbit", "Gbit", "Tbit", "Pbit"};
  int unit = 0;
  while (std::fabs(bits) >= 1000 && unit < 5) {
    bits /= 1000;
    ++unit;
  }
  return (unit == 0 ? fixed(bits, 0)
                    : fixed(bits, bits < 10    ? 3
                                  : bits < 100 ? 2
                                               : 1)) +
         " " + kUnits[unit];
}

std::string format_seconds(double s) {
  if (!std::isfinite(s)) return "-";
  if (s < 1e-3) return fixed(s * 1e6, 0) + " us";
  if (s < 1) return fixed(s * 1e3, 0) + " ms";
  if (s < 120) return fixed(s, s < 10 ? 2 : 1) + " s";
  const auto minutes = static_cast<long>(s / 60);
  return std::to_string(minutes) + " min " + fixed(s - 60.0 * static_cast<double>(minutes), 0) +
         " s";
}

ProgressDisplay::ProgressDisplay(std::FILE* out, ProgressStyle style) : out_(out), style_(style) {
  if (style_ == ProgressStyle::kAuto) {
    style_ = ::isatty(::fileno(out_)) != 0 ? ProgressStyle::kBar : ProgressStyle::kLines;
  }
}

ProgressDisplay::~ProgressDisplay() { close(); }

void ProgressDisplay::close() {
  if (bar_open_) {
    std::fputc('\n', out_);
    std::fflush(out_);
    bar_open_ = false;
  }
}

void ProgressDisplay::on_start(const TrainSetup& setup, std::uint64_t first_iteration) {
  total_ = std::max<std::uint64_t>(1, setup.total_iterations);
  next_line_ = first_iteration;
  if (style_ == ProgressStyle::kNone) return;
  const TrainConfig& c = setup.config;
  std::fprintf(
      out_,
      "thinwire train: %s on %s, %s, %llu workers (%s), sync %s, codec %s; %llu "
      "iterations%s\n",
      c.problem.c_str(), setup.train.name().c_str(),
      std::string(algorithm_name(c.algorithm)).c_str(), static_cast<unsigned long long>(c.workers),
      std::string(backend_name(c.backend)).c_str(), c.sync.c_str(), c.codec.c_str(),
      static_cast<unsigned long long>(total_),
      first_iteration > 0 ? (", resuming at " + std::to_string(first_iteration)).c_str() : "");
  std::fflush(out_);
}

void ProgressDisplay::on_record(const nlohmann::json& record) {
  if (style_ == ProgressStyle::kNone) return;
  const auto iter = record.value("iter", std::uint64_t{0});
  const bool evaluated = record.contains("test_accuracy") || record.contains("test_loss");
  if (record.contains("test_accuracy")) {
    last_accuracy_ = fixed(100 * record["test_accuracy"].get<double>(), 2) + " %";
  }
  const std::string loss = record.contains("loss") && record["loss"].is_number()
                               ? fixed(record["loss"].get<double>(), 4)
                               : "-";
  const std::string bits = format_bits(record.value("bits", 0.0));
  const std::string sim = format_seconds(record.value("sim_s", 0.0));
  const double fraction = static_cast<double>(iter) / static_cast<double>(total_);

  if (style_ == ProgressStyle::kBar) {
    const auto filled = static_cast<int>(fraction * kBarWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kBarWidth, '.');
    std::fprintf(
        out_, "\r[%s] %3.0f%%  iter %llu/%llu  epoch %.2f  loss %s  acc %s  bits %s  sim %s\x1b[K",
        bar.c_str(), 100 * fraction, static_cast<unsigned long long>(iter),
        static_cast<unsigned long long>(total_), record.value("epoch", 0.0), loss.c_str(),
        last_accuracy_.empty() ? "-" : last_accuracy_.c_str(), bits.c_str(), sim.c_str());
    bar_open_ = true;
    std::fflush(out_);
    return;
  }
  if (iter < next_line_ && !evaluated && iter != total_) return;
  while (next_line_ <= iter) next_line_ += std::max<std::uint64_t>(1, total_ / 10);
  std::fprintf(out_,
               "iter %llu/%llu (%3.0f%%)  epoch %.2f  loss %s%s%s  bits %s  sim %s  wall %s\n",
               static_cast<unsigned long long>(iter), static_cast<unsigned long long>(total_),
               100 * fraction, record.value("epoch", 0.0), loss.c_str(),
               evaluated && !last_accuracy_.empty() ? "  test acc " : "",
               evaluated && !last_accuracy_.empty() ? last_accuracy_.c_str() : "", bits.c_str(),
               sim.c_str(), format_seconds(record.value("wall_s", 0.0)).c_str());
  std::fflush(out_);
}

std::string format_summary(const TrainSetup& setup, const TrainSummary& s) {
  const TrainConfig& c = setup.config;
  std::ostringstream out;
  out << "\nthinwire train summary: " << algorithm_name(c.algorithm) << ", sync " << c.sync
      << ", codec " << c.codec << ", " << c.workers << " workers (" << backend_name(c.backend)
      << ")\n";
  out << row("", "this run", "uncompressed*");
  out << row("iterations", std::to_string(s.iterations) + " (" + fixed(s.epochs, 2) + " ep)");
  if (s.test_accuracy) out << row("test accuracy", fixed(100 * *s.test_accuracy, 2) + " %");
  if (s.test_loss) out << row("test loss", fixed(*s.test_loss, 4));
  if (std::isfinite(s.final_loss)) out << row("training loss (last log)", fixed(s.final_loss, 4));
  const double ratio =
      s.bits > 0 ? static_cast<double>(s.bits_uncompressed) / static_cast<double>(s.bits) : 0.0;
  out << row("bits sent (all workers)", format_bits(static_cast<double>(s.bits)),
             format_bits(static_cast<double>(s.bits_uncompressed)),
             s.bits > 0 ? "(" + fixed(ratio, 1) + "x)" : "");
  if (c.cost != "bits") {
    // Σ over workers and messages of C(bits) (tune/cost_model.hpp), in the model's own unit.
    char cost[32];
    std::snprintf(cost, sizeof cost, "%.6g", s.cost);
    out << row("cost (" + c.cost.substr(0, c.cost.find(':')) + " model)", cost);
  }
  const bool simulated = c.backend == Backend::kThreads;
  const double sim_uncompressed = s.sim_s - s.comm_s + s.comm_uncompressed_s;
  out << row(simulated ? "communication time (sim)" : "communication time",
             format_seconds(s.comm_s), format_seconds(s.comm_uncompressed_s));
  out << row(simulated ? "simulated time" : "time (slowest rank)", format_seconds(s.sim_s),
             format_seconds(sim_uncompressed),
             s.sim_s > 0 ? "(" + fixed(sim_uncompressed / s.sim_s, 2) + "x)" : "");
  out << row("wall time", format_seconds(s.wall_s));
  if (s.skipped > 0) out << row("skipped steps (non-finite)", std::to_string(s.skipped));
  if (s.resumed_from > 0) out << row("resumed at iteration", std::to_string(s.resumed_from));
  out << "  * the same messages with the identity codec (32-byte header + 4 bytes per value), "
         "timed by the link model\n    "
      << c.link << " along each synchronization's critical path; communication time is rank 0's\n";
  return out.str();
}

}  // namespace thinwire::train
