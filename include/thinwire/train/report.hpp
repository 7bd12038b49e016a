// What `thinwire train` shows a person: a progress bar on a terminal, plain periodic lines
// otherwise (logs, CI, mpirun), and the final summary table with the run's uncompressed
// counterpart (the same messages with the identity codec; algorithm.hpp says how it is computed).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "thinwire/train/engine.hpp"

namespace thinwire::train {

enum class ProgressStyle : std::uint8_t {
  kAuto,   // bar if the stream is a terminal, else lines
  kBar,    // redraws one line with '\r'
  kLines,  // one line per tenth of the run and per evaluation
  kNone,
};

class ProgressDisplay final : public TrainObserver {
 public:
  explicit ProgressDisplay(std::FILE* out = stderr, ProgressStyle style = ProgressStyle::kAuto);
  ~ProgressDisplay() override;
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void on_start(const TrainSetup& setup, std::uint64_t first_iteration) override;
  void on_record(const nlohmann::json& record) override;
  // Ends the bar's line (called by the destructor too).
  void close();

 private:
  std::FILE* out_;
  ProgressStyle style_;
  std::uint64_t total_ = 1;
  std::uint64_t next_line_ = 0;  // iteration at which the next plain line is due
  bool bar_open_ = false;
  std::string last_accuracy_;
};

// "1.23 Gbit", "456 kbit" (decimal prefixes, as link rates are quoted).
[[nodiscard]] std::string format_bits(double bits);
// "12.3 s", "450 ms", "3 min 12 s".
[[nodiscard]] std::string format_seconds(double seconds);

// The final table, several lines ending in '\n'.
[[nodiscard]] std::string format_summary(const TrainSetup& setup, const TrainSummary& summary);

}  // namespace thinwire::train
