#include "thinwire/comm/threads.hpp"

#include <time.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

using Clock = std::chrono::steady_clock;

struct Message {
  Bytes data;
  double arrival_s = 0;  // simulated arrival time (0 without a link model)
};

// Messages addressed to one rank, keyed by (source, tag); FIFO per key.
struct Inbox {
  std::mutex mutex;
  std::condition_variable ready;
  std::map<std::pair<int, int>, std::deque<Message>> queues;
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

Clock::time_point deadline_after(Seconds timeout) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
}

// "0.2 s", "60 s": durations in messages without trailing zeros.
std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", seconds);
  return text;
}

std::string rank_name(int rank) { return "rank " + std::to_string(rank); }

}  // namespace

struct ThreadsWorld::State {
  ThreadsWorldOptions options;
  Clock::time_point start = Clock::now();
  std::vector<std::unique_ptr<Inbox>> inboxes;
  std::vector<std::unique_ptr<ThreadsTransport>> transports;

  // Read without the lock by waiters (their predicates); written under `mutex`, and each inbox
  // is locked once afterwards before notifying, so no waiter misses the change.
  std::atomic<bool> closed{false};
  std::unique_ptr<std::atomic<bool>[]> finished;

  std::mutex mutex;  // guards everything below, and the barrier
  std::condition_variable changed;
  std::string close_reason;
  int failed_rank = -1;
  int finished_count = 0;
  int arrived = 0;
  std::uint64_t generation = 0;
  double pending_max_clock = 0;   // largest clock among ranks in the current barrier
  double released_max_clock = 0;  // result of the last completed barrier

  void wake_everyone() {
    for (auto& inbox : inboxes) {
      { std::lock_guard lock(inbox->mutex); }
      inbox->ready.notify_all();
    }
    changed.notify_all();
  }

  [[noreturn]] void throw_closed(int rank, std::string_view op) {
    std::string reason;
    {
      std::lock_guard lock(mutex);
      reason = close_reason;
    }
    throw TransportError(reason + " (seen by " + rank_name(rank) + " in " + std::string(op) + ")");
  }
};

// ---- ThreadsWorld -------------------------------------------------------------------------------

ThreadsWorld::ThreadsWorld(const ThreadsWorldOptions& options) : state_(std::make_unique<State>()) {
  if (options.size < 1) {
    throw InvalidArgument("threads: world size must be at least 1, got " +
                          std::to_string(options.size));
  }
  if (!(options.timeout.count() > 0)) {
    throw InvalidArgument("threads: timeout must be positive, got " +
                          seconds_text(options.timeout.count()));
  }
  if (options.link) options.link->validate();
  state_->options = options;
  state_->finished = std::make_unique<std::atomic<bool>[]>(static_cast<std::size_t>(options.size));
  for (int r = 0; r < options.size; ++r) {
    state_->inboxes.push_back(std::make_unique<Inbox>());
    state_->transports.push_back(std::unique_ptr<ThreadsTransport>(new ThreadsTransport(*this, r)));
    state_->transports.back()->set_timeout(options.timeout);
  }
}

ThreadsWorld::~ThreadsWorld() = default;

int ThreadsWorld::size() const noexcept { return state_->options.size; }

const ThreadsWorldOptions& ThreadsWorld::options() const noexcept { return state_->options; }

ThreadsTransport& ThreadsWorld::transport(int rank) {
  if (rank < 0 || rank >= size()) {
    throw InvalidArgument("threads: rank " + std::to_string(rank) + " is outside a world of " +
                          std::to_string(size()));
  }
  return *state_->transports[static_cast<std::size_t>(rank)];
}

void ThreadsWorld::fail(int rank, std::string_view what) {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->closed.load()) return;
    state_->failed_rank = rank;
    state_->close_reason = rank_name(rank) + " failed: " + std::string(what);
    state_->closed.store(true);
  }
  state_->wake_everyone();
}

void ThreadsWorld::finish(int rank) {
  (void)transport(rank);  // validates the rank
  {
    std::lock_guard lock(state_->mutex);
    if (state_->finished[static_cast<std::size_t>(rank)].exchange(true)) return;
    ++state_->finished_count;
  }
  state_->wake_everyone();
}

std::optional<int> ThreadsWorld::failed_rank() const {
  std::lock_guard lock(state_->mutex);
  if (state_->failed_rank < 0) return std::nullopt;
  return state_->failed_rank;
}

// ---- ThreadsTransport ---------------------------------------------------------------------------

ThreadsTransport::ThreadsTransport(ThreadsWorld& world, int rank) : world_(&world), rank_(rank) {}

int ThreadsTransport::size() const noexcept { return world_->size(); }

void ThreadsTransport::check_peer(int peer, int tag, std::string_view op) const {
  if (peer < 0 || peer >= size()) {
    throw InvalidArgument("threads: " + rank_name(rank_) + " " + std::string(op) + ": peer " +
                          std::to_string(peer) + " is outside a world of " +
                          std::to_string(size()));
  }
  if (tag < 0) {
    throw InvalidArgument("threads: " + std::string(op) + ": tag must be non-negative, got " +
                          std::to_string(tag));
  }
}

double ThreadsTransport::compute_since_mark() const {
  const auto& options = world_->state_->options;
  if (!options.link || !options.count_compute) return 0;
  return std::max(0.0, thread_cpu_seconds() - cpu_mark_);
}

void ThreadsTransport::enter_call() { clock_ += compute_since_mark(); }

void ThreadsTransport::leave_call() {
  const auto& options = world_->state_->options;
  if (options.link && options.count_compute) cpu_mark_ = thread_cpu_seconds();
}

void ThreadsTransport::send(int peer, std::span<const std::byte> data, int tag) {
  check_peer(peer, tag, "send");
  ThreadsWorld::State& state = *world_->state_;
  if (state.closed.load()) state.throw_closed(rank_, "send to " + rank_name(peer));
  enter_call();
  Message message{Bytes(data.begin(), data.end()), 0.0};
  if (state.options.link) {
    const double depart = std::max(clock_, nic_free_);
    message.arrival_s = depart + state.options.link->message_seconds(data.size());
    nic_free_ = message.arrival_s;
  }
  Inbox& inbox = *state.inboxes[static_cast<std::size_t>(peer)];
  {
    std::lock_guard lock(inbox.mutex);
    inbox.queues[{rank_, tag}].push_back(std::move(message));
  }
  inbox.ready.notify_all();
  leave_call();
}

Bytes ThreadsTransport::recv(int peer, int tag) {
  check_peer(peer, tag, "recv");
  ThreadsWorld::State& state = *world_->state_;
  enter_call();
  const auto deadline = deadline_after(timeout());
  const std::string op = "recv from " + rank_name(peer) + " (tag " + std::to_string(tag) + ")";
  Inbox& inbox = *state.inboxes[static_cast<std::size_t>(rank_)];
  std::unique_lock lock(inbox.mutex);
  std::deque<Message>& queue = inbox.queues[{peer, tag}];
  for (;;) {
    if (state.closed.load()) {  // stop promptly, even with messages queued
      lock.unlock();
      state.throw_closed(rank_, op);
    }
    if (!queue.empty()) break;
    if (state.finished[static_cast<std::size_t>(peer)].load()) {
      throw TransportError("threads: " + rank_name(rank_) + " " + op + ": " + rank_name(peer) +
                           " finished without sending it");
    }
    if (inbox.ready.wait_until(lock, deadline) == std::cv_status::timeout && queue.empty()) {
      throw Timeout("threads: " + rank_name(rank_) + " " + op + ": timed out after " +
                    seconds_text(timeout().count()));
    }
  }
  Message message = std::move(queue.front());
  queue.pop_front();
  lock.unlock();
  clock_ = std::max(clock_, message.arrival_s);
  leave_call();
  return std::move(message.data);
}

Bytes ThreadsTransport::exchange(int to, std::span<const std::byte> data, int from, int tag) {
  check_peer(from, tag, "exchange");
  send(to, data, tag);  // buffered, so a cycle of exchanges cannot deadlock
  return recv(from, tag);
}

void ThreadsTransport::barrier() {
  ThreadsWorld::State& state = *world_->state_;
  enter_call();
  const auto deadline = deadline_after(timeout());
  std::unique_lock lock(state.mutex);
  auto check_open = [&] {
    if (state.closed.load()) {
      lock.unlock();
      state.throw_closed(rank_, "barrier");
    }
    if (state.finished_count > 0) {
      throw TransportError("threads: " + rank_name(rank_) +
                           " barrier: a rank finished before reaching it");
    }
  };
  check_open();
  const std::uint64_t generation = state.generation;
  state.pending_max_clock = std::max(state.pending_max_clock, clock_);
  if (++state.arrived == size()) {
    state.arrived = 0;
    state.released_max_clock = state.pending_max_clock;
    state.pending_max_clock = 0;
    ++state.generation;
    state.changed.notify_all();
  } else {
    while (state.generation == generation) {
      check_open();
      if (state.changed.wait_until(lock, deadline) == std::cv_status::timeout &&
          state.generation == generation) {
        --state.arrived;
        throw Timeout("threads: " + rank_name(rank_) + " barrier: timed out after " +
                      seconds_text(timeout().count()));
      }
    }
  }
  const double released = state.released_max_clock;
  lock.unlock();
  if (state.options.link) {
    const double rounds = std::ceil(std::log2(static_cast<double>(size())));
    clock_ = released + rounds * state.options.link->message_seconds(0);
  }
  leave_call();
}

double ThreadsTransport::clock_seconds() const {
  const ThreadsWorld::State& state = *world_->state_;
  if (!state.options.link) {
    return std::chrono::duration<double>(Clock::now() - state.start).count();
  }
  return clock_ + compute_since_mark();
}

void ThreadsTransport::advance_clock(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) {
    throw InvalidArgument("threads: advance_clock needs a non-negative finite time, got " +
                          seconds_text(seconds));
  }
  if (world_->state_->options.link) clock_ += seconds;
}

void ThreadsTransport::restart_clock() {
  clock_ = 0;
  nic_free_ = 0;
  cpu_mark_ = thread_cpu_seconds();
}

// ---- run_threads_world --------------------------------------------------------------------------

void run_threads(std::span<ThreadsWorld* const> worlds, const std::function<void(int rank)>& fn) {
  if (worlds.empty()) throw InvalidArgument("run_threads: no world");
  const int size = worlds.front()->size();
  for (const ThreadsWorld* w : worlds) {
    if (w->size() != size) throw InvalidArgument("run_threads: worlds of different sizes");
  }
  const auto fail = [&](int rank, std::string_view what) {
    for (ThreadsWorld* w : worlds) w->fail(rank, what);
  };
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(size));
  std::vector<std::thread> threads;
  threads.reserve(errors.size());
  auto body = [&](int rank) {
    try {
      fn(rank);
      for (ThreadsWorld* w : worlds) w->finish(rank);
    } catch (const std::exception& e) {
      errors[static_cast<std::size_t>(rank)] = std::current_exception();
      fail(rank, e.what());
    } catch (...) {
      errors[static_cast<std::size_t>(rank)] = std::current_exception();
      fail(rank, "unknown exception");
    }
  };
  try {
    for (int r = 0; r < size; ++r) threads.emplace_back(body, r);
  } catch (const std::exception& e) {  // could not start a thread: stop those that run
    fail(static_cast<int>(threads.size()), std::string("could not start: ") + e.what());
    for (std::thread& t : threads) t.join();
    throw;
  }
  for (std::thread& t : threads) t.join();
  // The first rank to fail is the cause (every world records the same first failure).
  if (const auto failed = worlds.front()->failed_rank()) {
    std::rethrow_exception(errors[static_cast<std::size_t>(*failed)]);
  }
}

void run_threads_world(const ThreadsWorldOptions& options,
                       const std::function<void(Transport&)>& fn) {
  ThreadsWorld world(options);
  ThreadsWorld* const worlds[] = {&world};
  run_threads(worlds, [&](int rank) { fn(world.transport(rank)); });
}

}  // namespace thinwire::comm
