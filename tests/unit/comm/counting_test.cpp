#include "thinwire/comm/counting.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "thinwire/comm/threads.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

ThreadsWorldOptions world_of(int size) {
  ThreadsWorldOptions options;
  options.size = size;
  return options;
}

TEST(CountingTest, CountsSendsAndReceives) {
  constexpr int kSize = 3;
  std::atomic<std::uint64_t> total_sent{0};
  std::atomic<std::uint64_t> total_received{0};
  run_threads_world(world_of(kSize), [&](Transport& inner) {
    CountingTransport t(inner);
    EXPECT_EQ(t.rank(), inner.rank());
    EXPECT_EQ(t.size(), kSize);
    const int next = (t.rank() + 1) % kSize;
    const int prev = (t.rank() + kSize - 1) % kSize;
    // Rank r sends messages of 0, 10 and 100·(r+1) bytes.
    t.send(next, Bytes(0));
    t.send(next, Bytes(10));
    t.send(next, Bytes(100 * static_cast<std::size_t>(t.rank() + 1)));
    for (int i = 0; i < 3; ++i) (void)t.recv(prev);
    TrafficStats s = t.stats();
    EXPECT_EQ(s.messages_sent, 3u);
    EXPECT_EQ(s.bytes_sent, 110u + 100u * static_cast<std::uint64_t>(t.rank()));
    EXPECT_EQ(s.messages_received, 3u);
    EXPECT_EQ(s.bytes_received, 110u + 100u * static_cast<std::uint64_t>(prev));
    total_sent += s.bytes_sent;
    total_received += s.bytes_received;

    t.reset();
    EXPECT_EQ(t.stats().messages_sent, 0u);
    EXPECT_EQ(t.stats().bytes_received, 0u);

    // exchange: one message each way; barrier: nothing.
    (void)t.exchange(next, Bytes(7), prev, /*tag=*/3);
    t.barrier();
    s = t.stats();
    EXPECT_EQ(s.messages_sent, 1u);
    EXPECT_EQ(s.bytes_sent, 7u);
    EXPECT_EQ(s.messages_received, 1u);
    EXPECT_EQ(s.bytes_received, 7u);
  });
  EXPECT_EQ(total_sent.load(), total_received.load());
}

TEST(CountingTest, DecoratorsStack) {
  run_threads_world(world_of(2), [](Transport& inner) {
    CountingTransport outer_count(inner);
    CountingTransport count(static_cast<Transport&>(outer_count));
    if (count.rank() == 0) {
      count.send(1, Bytes(5));
      EXPECT_EQ(outer_count.stats().bytes_sent, 5u);
      EXPECT_EQ(count.stats().bytes_sent, 5u);
    } else {
      EXPECT_EQ(count.recv(0).size(), 5u);
      EXPECT_EQ(outer_count.stats().messages_received, 1u);
    }
  });
}

TEST(CountingTest, ForwardsTimeoutAndClock) {
  ThreadsWorldOptions options = world_of(2);
  options.link = LinkModel::parse("bandwidth=1Mbit,latency=0");
  options.count_compute = false;
  // The world's timeout is 60 s; the decorator's 0.1 s must govern its calls.
  EXPECT_THROW(run_threads_world(options,
                                 [](Transport& inner) {
                                   CountingTransport t(inner);
                                   EXPECT_EQ(t.timeout(), inner.timeout());
                                   t.advance_clock(1.5);
                                   EXPECT_DOUBLE_EQ(t.clock_seconds(), 1.5);
                                   EXPECT_DOUBLE_EQ(inner.clock_seconds(), 1.5);
                                   t.set_timeout(Seconds(0.1));
                                   (void)t.recv(1 - t.rank());
                                 }),
               Timeout);
}

TEST(CountingTest, FailedCallsAreNotCounted) {
  run_threads_world(world_of(1), [](Transport& inner) {
    CountingTransport t(inner);
    EXPECT_THROW(t.send(4, Bytes(9)), InvalidArgument);
    EXPECT_EQ(t.stats().messages_sent, 0u);
    EXPECT_EQ(t.stats().bytes_sent, 0u);
  });
}

// The observer hears each message counted as sent, in order, with its size: sends and exchanges,
// not receives, not a failed send.
TEST(CountingTest, ObserverHearsEveryMessageCountedAsSent) {
  struct Sizes final : SendObserver {
    std::vector<std::size_t> seen;
    void sent(std::size_t bytes) noexcept override { seen.push_back(bytes); }
  };
  run_threads_world(world_of(2), [](Transport& inner) {
    CountingTransport t(inner);
    Sizes sizes;
    const int peer = 1 - t.rank();
    t.send(peer, Bytes(3));  // before the observer: counted, not heard
    t.set_observer(&sizes);
    t.send(peer, Bytes(5));
    (void)t.exchange(peer, Bytes(11), peer, /*tag=*/2);
    for (int i = 0; i < 2; ++i) (void)t.recv(peer);
    EXPECT_THROW(t.send(4, Bytes(9)), InvalidArgument);
    EXPECT_EQ(sizes.seen, (std::vector<std::size_t>{5, 11}));
    EXPECT_EQ(t.stats().bytes_sent, 19u);
  });
}

}  // namespace
}  // namespace thinwire::comm
