#include "thinwire/comm/threads.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

// A message whose bytes name its sender, index and length, so any mix-up shows.
Bytes pattern(int sender, int index, std::size_t length) {
  Bytes bytes(length);
  for (std::size_t i = 0; i < length; ++i) {
    bytes[i] = static_cast<std::byte>(
        (static_cast<std::size_t>(sender) * 31 + static_cast<std::size_t>(index) * 7 + i) & 0xFF);
  }
  return bytes;
}

ThreadsWorldOptions world_of(int size) {
  ThreadsWorldOptions options;
  options.size = size;
  return options;
}

TEST(ThreadsTest, RankAndSize) {
  std::atomic<int> rank_sum{0};
  run_threads_world(world_of(5), [&](Transport& t) {
    EXPECT_EQ(t.size(), 5);
    rank_sum += t.rank();
  });
  EXPECT_EQ(rank_sum.load(), 0 + 1 + 2 + 3 + 4);
}

TEST(ThreadsTest, MessagesKeepOrderPerSourceAndTag) {
  run_threads_world(world_of(2), [](Transport& t) {
    if (t.rank() == 0) {
      for (int i = 0; i < 3; ++i) t.send(1, pattern(0, i, 10), /*tag=*/0);
      for (int i = 0; i < 2; ++i) t.send(1, pattern(0, 100 + i, 10), /*tag=*/5);
    } else {
      // Tag 5 first: a later tag must not be blocked behind an earlier one.
      for (int i = 0; i < 2; ++i) EXPECT_EQ(t.recv(0, 5), pattern(0, 100 + i, 10));
      for (int i = 0; i < 3; ++i) EXPECT_EQ(t.recv(0, 0), pattern(0, i, 10));
    }
  });
}

TEST(ThreadsTest, VariableLengthsIncludingEmpty) {
  const std::vector<std::size_t> lengths{0, 1, 5, 1000, 0, 100000};
  run_threads_world(world_of(3), [&](Transport& t) {
    const int next = (t.rank() + 1) % t.size();
    const int prev = (t.rank() + t.size() - 1) % t.size();
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      t.send(next, pattern(t.rank(), static_cast<int>(i), lengths[i]));
    }
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      EXPECT_EQ(t.recv(prev), pattern(prev, static_cast<int>(i), lengths[i]));
    }
  });
}

TEST(ThreadsTest, SendToSelf) {
  run_threads_world(world_of(2), [](Transport& t) {
    t.send(t.rank(), pattern(t.rank(), 0, 3), 2);
    EXPECT_EQ(t.recv(t.rank(), 2), pattern(t.rank(), 0, 3));
  });
}

class ThreadsExchangeTest : public ::testing::TestWithParam<int> {};

TEST_P(ThreadsExchangeTest, CycleInBothDirections) {
  const int size = GetParam();
  run_threads_world(world_of(size), [](Transport& t) {
    const int next = (t.rank() + 1) % t.size();
    const int prev = (t.rank() + t.size() - 1) % t.size();
    for (int round = 0; round < 4; ++round) {
      const std::size_t length = static_cast<std::size_t>(round) * 13;
      EXPECT_EQ(t.exchange(next, pattern(t.rank(), round, length), prev),
                pattern(prev, round, length));
      EXPECT_EQ(t.exchange(prev, pattern(t.rank(), round, length + 1), next, /*tag=*/1),
                pattern(next, round, length + 1));
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, ThreadsExchangeTest, ::testing::Values(1, 2, 3, 4, 7));

TEST(ThreadsTest, BarrierSeparatesPhases) {
  constexpr int kSize = 4;
  constexpr int kRounds = 20;
  std::atomic<int> arrived{0};
  run_threads_world(world_of(kSize), [&](Transport& t) {
    for (int round = 1; round <= kRounds; ++round) {
      ++arrived;
      t.barrier();
      // Nobody may start the next round before everyone finished this one.
      EXPECT_GE(arrived.load(), round * kSize);
      t.barrier();
    }
  });
  EXPECT_EQ(arrived.load(), kSize * kRounds);
}

TEST(ThreadsTest, RecvTimesOutWhenNobodySends) {
  ThreadsWorldOptions options = world_of(2);
  options.timeout = Seconds(0.2);
  // Both ranks wait for each other and neither sends: each must give up with Timeout.
  EXPECT_THROW(run_threads_world(options, [](Transport& t) { (void)t.recv(1 - t.rank()); }),
               Timeout);
}

TEST(ThreadsTest, BarrierTimesOut) {
  ThreadsWorldOptions options = world_of(2);
  options.timeout = Seconds(0.2);
  EXPECT_THROW(run_threads_world(options,
                                 [](Transport& t) {
                                   if (t.rank() == 0) {
                                     t.barrier();
                                   } else {
                                     (void)t.recv(0);
                                   }
                                 }),
               Timeout);
}

TEST(ThreadsTest, WaitingForAFinishedRankFailsAtOnce) {
  // The default 60 s timeout would make a hang visible as a test timeout.
  try {
    run_threads_world(world_of(2), [](Transport& t) {
      if (t.rank() == 0) (void)t.recv(1);
    });
    FAIL() << "expected TransportError";
  } catch (const Timeout&) {
    FAIL() << "expected an immediate TransportError, got Timeout";
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 finished"), std::string::npos) << e.what();
  }
}

TEST(ThreadsTest, FailingRankStopsEveryPeerAndIsRethrown) {
  constexpr int kSize = 4;
  std::mutex mutex;
  std::vector<std::string> peer_errors;
  try {
    run_threads_world(world_of(kSize), [&](Transport& t) {
      t.barrier();
      try {
        switch (t.rank()) {
          case 2:
            throw std::runtime_error("boom");
          case 0:
            t.barrier();  // blocked in a barrier
            break;
          default:
            (void)t.recv(2);  // blocked on the failing rank
        }
      } catch (const TransportError& e) {
        if (dynamic_cast<const Timeout*>(&e) != nullptr) throw;
        std::lock_guard lock(mutex);
        peer_errors.emplace_back(e.what());
        // Later calls fail too, even non-blocking ones.
        EXPECT_THROW(t.send((t.rank() + 1) % kSize, Bytes(1)), TransportError);
        throw;
      }
    });
    FAIL() << "expected the original exception";
  } catch (const TransportError& e) {
    FAIL() << "rethrew a peer's TransportError instead of the original: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  ASSERT_EQ(peer_errors.size(), 3u);
  for (const std::string& what : peer_errors) {
    EXPECT_NE(what.find("rank 2 failed: boom"), std::string::npos) << what;
  }
}

TEST(ThreadsTest, InvalidPeerOrTag) {
  run_threads_world(world_of(2), [](Transport& t) {
    EXPECT_THROW(t.send(2, Bytes(1)), InvalidArgument);
    EXPECT_THROW(t.send(-1, Bytes(1)), InvalidArgument);
    EXPECT_THROW((void)t.recv(5), InvalidArgument);
    EXPECT_THROW(t.send(0, Bytes(1), -3), InvalidArgument);
    EXPECT_THROW((void)t.exchange(0, Bytes(1), 9), InvalidArgument);
  });
}

TEST(ThreadsTest, InvalidOptions) {
  auto noop = [](Transport&) {};
  EXPECT_THROW(run_threads_world(world_of(0), noop), InvalidArgument);
  ThreadsWorldOptions options = world_of(2);
  options.timeout = Seconds(0);
  EXPECT_THROW(run_threads_world(options, noop), InvalidArgument);
  options = world_of(2);
  options.link = LinkModel{};
  options.link->bandwidth_bits_per_s = -1;
  EXPECT_THROW(run_threads_world(options, noop), InvalidArgument);
}

TEST(ThreadsTest, WorldDrivenByCallerThreads) {
  ThreadsWorld world(world_of(3));
  std::vector<std::thread> workers;
  std::atomic<int> total{0};
  for (int r = 0; r < world.size(); ++r) {
    workers.emplace_back([&world, &total, r] {
      ThreadsTransport& t = world.transport(r);
      if (r == 0) {
        for (int peer = 1; peer < t.size(); ++peer) t.send(peer, pattern(0, peer, 4));
      } else {
        if (t.recv(0) == pattern(0, r, 4)) ++total;
      }
      world.finish(r);
    });
  }
  for (std::thread& w : workers) w.join();
  EXPECT_EQ(total.load(), 2);
  EXPECT_FALSE(world.failed_rank().has_value());
  EXPECT_THROW((void)world.transport(3), InvalidArgument);
}

TEST(ThreadsTest, WallClockWithoutLinkModel) {
  run_threads_world(world_of(1), [](Transport& t) {
    const double a = t.clock_seconds();
    t.advance_clock(100.0);  // ignored by a measured clock
    const double b = t.clock_seconds();
    EXPECT_GE(a, 0.0);
    EXPECT_GE(b, a);
    EXPECT_LT(b, 50.0);
  });
}

}  // namespace
}  // namespace thinwire::comm
