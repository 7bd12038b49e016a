// Counting decorator: wraps any Transport and counts the messages and bytes that pass through it,
// on every backend. Bytes are payload bytes as handed to send()/returned by recv(); the wire
// format's own header is part of that payload (codec/message.hpp), transport framing is not.
//
// Counters are atomics (relaxed), so stats() may be read from another thread while the rank
// runs. exchange() counts as one message sent and one received; barrier() counts nothing.
// An optional SendObserver is told the size of every message counted as sent, in order, on the
// rank's thread: one count of what went out, which a meter can price per message (train prices
// every message under its cost models this way) without a second decorator of its own.
// The decorator has its own timeout (initially the inner transport's), copied to the inner
// transport before every forwarded call: set the timeout on the decorator.
#pragma once

#include <atomic>
#include <cstdint>

#include "thinwire/comm/transport.hpp"

namespace thinwire::comm {

// Told the payload size of each message a CountingTransport counts as sent, in send order.
class SendObserver {
 public:
  virtual ~SendObserver() = default;
  virtual void sent(std::size_t bytes) noexcept = 0;
};

struct TrafficStats {
  std::uint64_t messages_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_received = 0;
};

class CountingTransport final : public Transport {
 public:
  // `inner` must outlive this object. To wrap another CountingTransport, pass it as Transport&
  // (a CountingTransport argument selects the deleted copy constructor).
  explicit CountingTransport(Transport& inner) : inner_(inner) { set_timeout(inner.timeout()); }
  CountingTransport(const CountingTransport&) = delete;
  CountingTransport& operator=(const CountingTransport&) = delete;

  [[nodiscard]] int rank() const noexcept override { return inner_.rank(); }
  [[nodiscard]] int size() const noexcept override { return inner_.size(); }

  void send(int peer, std::span<const std::byte> data, int tag = 0) override {
    sync_timeout().send(peer, data, tag);
    count_sent(data.size());
  }
  [[nodiscard]] Bytes recv(int peer, int tag = 0) override {
    Bytes message = sync_timeout().recv(peer, tag);
    count_received(message.size());
    return message;
  }
  [[nodiscard]] Bytes exchange(int to, std::span<const std::byte> data, int from,
                               int tag = 0) override {
    Bytes message = sync_timeout().exchange(to, data, from, tag);
    count_sent(data.size());
    count_received(message.size());
    return message;
  }
  void barrier() override { sync_timeout().barrier(); }
  void flush() override { sync_timeout().flush(); }

  [[nodiscard]] double clock_seconds() const override { return inner_.clock_seconds(); }
  void advance_clock(double seconds) override { inner_.advance_clock(seconds); }

  [[nodiscard]] Transport& inner() noexcept { return inner_; }
  // Reports every message counted as sent from now on to `observer` (not owned; null: none).
  void set_observer(SendObserver* observer) noexcept { observer_ = observer; }

  [[nodiscard]] TrafficStats stats() const noexcept {
    return TrafficStats{messages_sent_.load(std::memory_order_relaxed),
                        bytes_sent_.load(std::memory_order_relaxed),
                        messages_received_.load(std::memory_order_relaxed),
                        bytes_received_.load(std::memory_order_relaxed)};
  }
  void reset() noexcept {
    messages_sent_.store(0, std::memory_order_relaxed);
    bytes_sent_.store(0, std::memory_order_relaxed);
    messages_received_.store(0, std::memory_order_relaxed);
    bytes_received_.store(0, std::memory_order_relaxed);
  }

 private:
  Transport& sync_timeout() {
    inner_.set_timeout(timeout());
    return inner_;
  }
  void count_sent(std::size_t bytes) noexcept {
    messages_sent_.fetch_add(1, std::memory_order_relaxed);
    bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
    if (observer_ != nullptr) observer_->sent(bytes);
  }
  void count_received(std::size_t bytes) noexcept {
    messages_received_.fetch_add(1, std::memory_order_relaxed);
    bytes_received_.fetch_add(bytes, std::memory_order_relaxed);
  }

  Transport& inner_;
  SendObserver* observer_ = nullptr;
  std::atomic<std::uint64_t> messages_sent_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::uint64_t> messages_received_{0};
  std::atomic<std::uint64_t> bytes_received_{0};
};

}  // namespace thinwire::comm
