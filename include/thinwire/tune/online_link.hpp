// `--cost auto`: the link's α and β, and the compute time of an iteration, estimated online from
// the run's own messages, so that the dynamic rule prices each iteration in seconds on the link
// at hand (SPEC §3; docs/tuning.md, "--cost auto").
//
//   OnlineLink   a window of the last N (bits, seconds) message samples and the last K
//                per-iteration compute times. refit() fits t(b) = α + b·s (s = 1/β seconds per
//                bit) by Theil–Sen: s is the median of the slopes of every pair of samples whose
//                sizes differ by at least `min_spread` of the larger, each slope weighted by its
//                pair's size difference (a pair of nearly equal sizes says little about s and
//                much about noise), α the median of t_i − s·b_i. Each
//                median ignores up to half of its inputs, so a few messages delayed by a peer's
//                compute or a scheduler hiccup do not move the fit (breakdown point ≈ 29 % of the
//                samples for s, 50 % for α). Without a pair of distinct sizes (every rank sends one
//                level) or with a slope the noise makes ≤ 0, α stays at its last value (the
//                prior's before any fit) and s = median((t_i − α)/b_i): the time of what is sent
//                is charged to its bits, so a size that turns out slow is priced slow and the rule
//                moves to others, which identify the slope. α ≥ 0 and s ≥ 1e-13 s/bit keep the
//                cost positive and non-decreasing. The compute time is the median of
//                the window of iteration compute times (0 until the first).
//   AutoCost     the cost model of `--cost auto[:latency=50us,bandwidth=1Gbit,window=48]`:
//                C(b) = α̂ + b/β̂ seconds from its OnlineLink; before the first sample α̂, β̂ are the
//                prior given by `latency` and `bandwidth` (default: the threads backend's default
//                link). compute_seconds() is the estimate the iteration's price adds as its fixed
//                cost.
//
// Where the samples come from is the caller's business (train/link_timer.hpp): on the threads
// backend the simulated link's time of each message (never the host's clock, so a run is a
// deterministic function of its configuration), on MPI the measured duration of each message
// exchange. Every fit is a pure function of the window's contents in insertion order, and save()
// / load() carry the window and the last fit through a checkpoint, so a resumed run continues
// with the same estimates bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thinwire/tune/cost_model.hpp"

namespace thinwire::tune {

struct LinkSample {
  double bits = 0;     // message size, header included
  double seconds = 0;  // its time on the link
};

struct LineFit {
  double intercept = 0;       // α, seconds
  double slope = 0;           // s, seconds per bit
  bool slope_fitted = false;  // false: no pair of distinct sizes gave a positive slope
};

// Weighted Theil–Sen fit of seconds = intercept + slope·bits over `samples` (overview); pairs whose
// sizes differ by less than min_spread·max(b_i, b_j) give no slope. Without a positive slope from
// the pairs, intercept = fallback_intercept and slope = median((t_i − intercept)/b_i) (or
// fallback_slope when no sample has bits). Clamped: intercept ≥ 0, slope ≥ 1e-13.
[[nodiscard]] LineFit theil_sen(std::span<const LinkSample> samples, double fallback_intercept,
                                double fallback_slope, double min_spread);

struct OnlineLinkOptions {
  std::size_t window = 48;          // message samples kept
  std::size_t compute_window = 16;  // iterations whose compute time is kept
  double prior_latency_s = 50e-6;   // α before the first sample
  double prior_bandwidth = 1e9;     // β (bit/s) before the first pair of distinct sizes
  double min_spread = 0.02;         // see theil_sen
};

class OnlineLink {
 public:
  // InvalidArgument unless window ≥ 2, compute_window ≥ 1, the prior is finite with α ≥ 0 and
  // β > 0, and min_spread is in [0, 1).
  explicit OnlineLink(const OnlineLinkOptions& options = {});

  [[nodiscard]] const OnlineLinkOptions& options() const noexcept { return options_; }

  // A message of `bits` bits that took `seconds` (ignored unless both are finite and ≥ 0).
  void observe_message(double bits, double seconds);
  // The compute time of one iteration (ignored unless finite and ≥ 0).
  void observe_compute(double seconds);
  // Fits α, β and the compute time from the windows (see the overview).
  void refit();

  [[nodiscard]] double latency_s() const noexcept { return fit_.intercept; }
  [[nodiscard]] double seconds_per_bit() const noexcept { return fit_.slope; }
  [[nodiscard]] double bandwidth_bits_per_s() const noexcept { return 1.0 / fit_.slope; }
  [[nodiscard]] bool bandwidth_fitted() const noexcept { return fit_.slope_fitted; }
  [[nodiscard]] double compute_s() const noexcept { return compute_s_; }
  [[nodiscard]] std::size_t samples() const noexcept { return messages_.size(); }
  // Modelled seconds of one message of `bits` bits: α̂ + bits·ŝ.
  [[nodiscard]] double message_seconds(double bits) const noexcept {
    return fit_.intercept + bits * fit_.slope;
  }

  // The windows and the fit as text, and back (CorruptMessage if malformed). Doubles are written
  // in their shortest round-trip form, so a loaded estimator equals the saved one exactly.
  [[nodiscard]] std::string save() const;
  void load(std::string_view state);

 private:
  OnlineLinkOptions options_;
  std::vector<LinkSample> messages_;  // a ring of options_.window samples
  std::size_t next_message_ = 0;      // where the next sample goes once the ring is full
  std::vector<double> compute_;
  std::size_t next_compute_ = 0;
  LineFit fit_;
  double compute_s_ = 0;
};

// `--cost auto`: C(b) = α̂ + b/β̂ from an OnlineLink (overview).
class AutoCost final : public CostModel {
 public:
  explicit AutoCost(const OnlineLinkOptions& options = {}) : link_(options) {}

  [[nodiscard]] std::unique_ptr<CostModel> clone() const override {
    return std::make_unique<AutoCost>(*this);
  }

  [[nodiscard]] std::string_view name() const noexcept override { return "auto"; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] double cost(std::uint64_t bits) const noexcept override {
    return link_.message_seconds(static_cast<double>(bits));
  }

  [[nodiscard]] OnlineLink& link() noexcept { return link_; }
  [[nodiscard]] const OnlineLink& link() const noexcept { return link_; }
  // The estimated compute time of an iteration (the price's fixed part).
  [[nodiscard]] double compute_seconds() const noexcept { return link_.compute_s(); }

 private:
  OnlineLink link_;
};

}  // namespace thinwire::tune
