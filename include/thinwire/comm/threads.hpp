// Threads backend: an in-process world of N ranks, one thread per rank, the embedded default.
//
// Messaging: one mailbox per (source, destination, tag), guarded per destination by a mutex and a
// condition variable. send() copies into the mailbox and returns (buffered); recv(), exchange()
// and barrier() wait with a deadline of timeout() and throw Timeout. When a rank fails (its
// function throws, or ThreadsWorld::fail is called), the world closes: every blocked and every
// later blocking call of every peer throws TransportError("rank R failed: <what> ..."). A rank
// that finished normally makes a peer waiting for its message fail at once instead of at the
// deadline.
//
// Simulated clock (SPEC §4), when a LinkModel is given. Each rank keeps its own clock c:
//   - between communication calls c advances by the compute time measured on the rank's thread
//     (count_compute), plus whatever advance_clock() adds;
//   - send of b bytes departs at d = max(c, nic_free), arrives at a = d + t(b) (LinkModel), and
//     sets nic_free = a: a rank's outgoing messages are serialized on its link, so M−1 sends cost
//     (M−1)·t(b), the α–β closed form of an all-gather. The sender's clock does not move
//     (buffered, full duplex: sending overlaps computing and receiving);
//   - recv sets c = max(c, a) for the message it takes: waiting for the latest sender;
//   - barrier sets every c to the largest c plus ⌈log2 M⌉·α (a dissemination barrier's rounds).
// The receiving side's link is not modelled: messages that arrive together from many senders do
// not queue behind each other (optimistic for a star: parameter-server uplinks, gathers).
//
// Compute is measured with the thread CPU clock (CLOCK_THREAD_CPUTIME_ID), not wall time: with
// 8 ranks on 2 cores a thread spends most wall time waiting for a core, which a real node would
// not; CPU time counts only the work itself. Time inside communication calls (copies, waits) is
// not counted as compute; the link model charges for it instead. With count_compute = false the
// clock moves only by the link model and advance_clock(), so results match closed forms exactly
// and do not depend on the machine. Without a link model clock_seconds() is wall time since the
// world was created.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "thinwire/comm/link_model.hpp"
#include "thinwire/comm/transport.hpp"

namespace thinwire::comm {

struct ThreadsWorldOptions {
  int size = 1;
  std::optional<LinkModel> link;  // no model: clock_seconds() is wall time
  Seconds timeout = kDefaultTimeout;
  bool count_compute = true;  // simulated clock: add measured thread CPU time between calls
};

class ThreadsWorld;

// One rank's endpoint. Use it from one thread at a time (the rank's thread).
class ThreadsTransport final : public Transport {
 public:
  [[nodiscard]] int rank() const noexcept override { return rank_; }
  [[nodiscard]] int size() const noexcept override;

  void send(int peer, std::span<const std::byte> data, int tag = 0) override;
  [[nodiscard]] Bytes recv(int peer, int tag = 0) override;
  [[nodiscard]] Bytes exchange(int to, std::span<const std::byte> data, int from,
                               int tag = 0) override;
  void barrier() override;

  [[nodiscard]] double clock_seconds() const override;
  void advance_clock(double seconds) override;

  // Restarts the simulated clock at 0 and starts measuring compute on the calling thread. Threads
  // created for a rank need not call it (their CPU time starts at 0); a reused thread must. Call
  // it on every rank at the same point (e.g. right after a barrier), or arrival times of messages
  // in flight mix two epochs.
  void restart_clock();

 private:
  friend class ThreadsWorld;
  ThreadsTransport(ThreadsWorld& world, int rank);

  void check_peer(int peer, int tag, std::string_view op) const;
  void enter_call();  // adds compute since the last call to the clock
  void leave_call();  // starts measuring compute again
  [[nodiscard]] double compute_since_mark() const;

  ThreadsWorld* world_;
  int rank_;
  double clock_ = 0;     // simulated seconds, up to cpu_mark_
  double nic_free_ = 0;  // when this rank's outgoing link is free again
  double cpu_mark_ = 0;  // thread CPU seconds at the end of the last call
};

// A world whose ranks are driven by threads the caller owns (e.g. long-lived training workers).
// Each worker should end by calling finish(rank) or, on an error, fail(rank, what).
class ThreadsWorld {
 public:
  explicit ThreadsWorld(const ThreadsWorldOptions& options);
  ~ThreadsWorld();
  ThreadsWorld(const ThreadsWorld&) = delete;
  ThreadsWorld& operator=(const ThreadsWorld&) = delete;

  [[nodiscard]] int size() const noexcept;
  [[nodiscard]] const ThreadsWorldOptions& options() const noexcept;
  [[nodiscard]] ThreadsTransport& transport(int rank);

  // Closes the world because `rank` failed; blocked and later blocking calls of all ranks throw
  // TransportError("rank R failed: what"). Only the first failure is recorded.
  void fail(int rank, std::string_view what);
  // `rank` is done: a peer that waits for a message from it (with none queued) or in a barrier
  // throws TransportError at once.
  void finish(int rank);
  // The rank whose failure closed the world, if any.
  [[nodiscard]] std::optional<int> failed_rank() const;

 private:
  friend class ThreadsTransport;
  struct State;
  std::unique_ptr<State> state_;
};

// Runs fn(rank) on one thread per rank of `worlds` (one or more worlds of the same size, e.g. a
// data plane and a control plane) and returns when all have finished. A rank that returns is
// finished in every world; a rank that throws fails every world, so its peers' blocked calls end.
// If any rank threw, rethrows the first original exception (not the TransportErrors it caused in
// its peers). If a thread cannot be started, the ranks already running are failed and joined,
// and the error is rethrown. InvalidArgument for no worlds or worlds of different sizes.
void run_threads(std::span<ThreadsWorld* const> worlds, const std::function<void(int rank)>& fn);

// Runs fn(transport) on options.size threads, one per rank of a new world (run_threads).
void run_threads_world(const ThreadsWorldOptions& options,
                       const std::function<void(Transport&)>& fn);

}  // namespace thinwire::comm
