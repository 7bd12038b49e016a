// LinkTimer: a transport decorator that feeds `--cost auto`'s estimator (tune/online_link.hpp)
// with the run's own messages, and measures how long a step spends blocked in communication.
//
// Two sources, chosen by the backend:
//   simulated (threads with a link model): every message this rank sends is a sample
//     (8·bytes, t(bytes)) with t the link model of the simulated clock — the time the simulated
//     link charges for it. The host's clock is never read, so the estimate, and every level the
//     rule chooses from it, is a deterministic function of the configuration.
//   measured (MPI): every exchange() — one hop of a ring (all-gather, ring all-reduce, gossip
//     rounds) — is timed with the steady clock, as a sample (8·bytes received, seconds): the hop
//     ends when the neighbour's message has arrived. The first blocking call of a step is left
//     out: it absorbs the time the slowest rank took to compute, which is no property of the
//     link. Patterns of plain send/recv (the parameter server) give no samples: a receive that
//     finds its message already there, or waits for a peer's compute, times nothing useful, so
//     there the estimate stays at the prior.
// begin_step() marks the start of a step; blocked_seconds() is the measured time spent inside
// blocking calls since then (recv, exchange, barrier, flush). The worker's fixed time of an
// iteration (measured mode only) is the step's wall time less that, plus what the first blocking
// call took beyond one message's modelled time: the wait for the slowest rank, which every
// iteration pays whatever the level.
#pragma once

#include <chrono>
#include <optional>

#include "thinwire/comm/link_model.hpp"
#include "thinwire/comm/transport.hpp"
#include "thinwire/tune/online_link.hpp"

namespace thinwire::train {

class LinkTimer final : public comm::Transport {
 public:
  // `inner` must outlive this object. Without an estimator (set_estimator) it only forwards.
  explicit LinkTimer(comm::Transport& inner) : inner_(inner) { set_timeout(inner.timeout()); }
  LinkTimer(const LinkTimer&) = delete;
  LinkTimer& operator=(const LinkTimer&) = delete;

  // Samples go to `estimator` (may be null: none); `simulated` is the threads backend's link
  // model (simulated mode), nullopt for measured mode.
  void set_estimator(tune::OnlineLink* estimator, std::optional<comm::LinkModel> simulated) {
    estimator_ = estimator;
    simulated_ = simulated;
  }

  void begin_step() noexcept {
    blocked_s_ = 0;
    first_call_ = true;
    first_s_ = 0;
    first_bits_ = 0;
  }
  [[nodiscard]] double blocked_seconds() const noexcept { return blocked_s_; }
  // The first blocking call of the step: its duration and the bits it received (0 for a barrier
  // or flush). What it took beyond one message's time was the wait for the slowest rank.
  [[nodiscard]] double first_call_seconds() const noexcept { return first_s_; }
  [[nodiscard]] double first_call_bits() const noexcept { return first_bits_; }

  [[nodiscard]] int rank() const noexcept override { return inner_.rank(); }
  [[nodiscard]] int size() const noexcept override { return inner_.size(); }

  void send(int peer, std::span<const std::byte> data, int tag = 0) override {
    sync_timeout().send(peer, data, tag);
    charge_simulated(data.size());
  }
  [[nodiscard]] comm::Bytes recv(int peer, int tag = 0) override {
    const Clock::time_point start = Clock::now();
    comm::Bytes message = sync_timeout().recv(peer, tag);
    blocked(start, message.size());
    return message;
  }
  [[nodiscard]] comm::Bytes exchange(int to, std::span<const std::byte> data, int from,
                                     int tag = 0) override {
    const Clock::time_point start = Clock::now();
    comm::Bytes message = sync_timeout().exchange(to, data, from, tag);
    const bool first = first_call_;
    const double seconds = blocked(start, message.size());
    charge_simulated(data.size());
    if (estimator_ != nullptr && !simulated_ && !first) {
      estimator_->observe_message(8.0 * static_cast<double>(message.size()), seconds);
    }
    return message;
  }
  void barrier() override {
    const Clock::time_point start = Clock::now();
    sync_timeout().barrier();
    blocked(start);
  }
  void flush() override {
    const Clock::time_point start = Clock::now();
    sync_timeout().flush();
    blocked_s_ += seconds_since(start);  // not a synchronization with a peer's compute
  }

  [[nodiscard]] double clock_seconds() const override { return inner_.clock_seconds(); }
  void advance_clock(double seconds) override { inner_.advance_clock(seconds); }

 private:
  using Clock = std::chrono::steady_clock;

  static double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
  // Accounts a blocking call that started at `start` and received `bytes`; returns its duration.
  double blocked(Clock::time_point start, std::size_t bytes = 0) {
    const double seconds = seconds_since(start);
    blocked_s_ += seconds;
    if (first_call_) {
      first_s_ = seconds;
      first_bits_ = 8.0 * static_cast<double>(bytes);
    }
    first_call_ = false;
    return seconds;
  }
  void charge_simulated(std::size_t bytes) {
    if (estimator_ == nullptr || !simulated_) return;
    estimator_->observe_message(8.0 * static_cast<double>(bytes),
                                simulated_->message_seconds(bytes));
  }
  comm::Transport& sync_timeout() {
    inner_.set_timeout(timeout());
    return inner_;
  }

  comm::Transport& inner_;
  tune::OnlineLink* estimator_ = nullptr;
  std::optional<comm::LinkModel> simulated_;
  double blocked_s_ = 0;
  bool first_call_ = true;
  double first_s_ = 0;
  double first_bits_ = 0;
};

}  // namespace thinwire::train
