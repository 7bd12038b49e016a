// The Transport contract (comm/transport.hpp), written once with tests/support/world.hpp: this
// file runs on the threads backend in comm_test and on MPI in comm_mpi_test (under mpiexec with
// 1–4 ranks, where bodies for other world sizes are skipped).
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "support/world.hpp"
#include "thinwire/comm/transport.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

using test::run_world;

// Bytes that name their sender, index and length, so any mix-up shows.
Bytes pattern(int sender, int index, std::size_t length) {
  Bytes bytes(length);
  for (std::size_t i = 0; i < length; ++i) {
    bytes[i] = static_cast<std::byte>(
        (static_cast<std::size_t>(sender) * 31 + static_cast<std::size_t>(index) * 7 + i * 13) &
        0xFF);
  }
  return bytes;
}

int next_of(const Transport& t) { return (t.rank() + 1) % t.size(); }
int prev_of(const Transport& t) { return (t.rank() + t.size() - 1) % t.size(); }

class TransportContractTest : public ::testing::TestWithParam<int> {};

TEST_P(TransportContractTest, RankAndSize) {
  const int size = GetParam();
  run_world(size, [&](Transport& t) {
    EXPECT_EQ(t.size(), size);
    EXPECT_GE(t.rank(), 0);
    EXPECT_LT(t.rank(), size);
  });
}

TEST_P(TransportContractTest, OrderPerSourceAndTag) {
  run_world(GetParam(), [](Transport& t) {
    for (int i = 0; i < 4; ++i) t.send(next_of(t), pattern(t.rank(), i, 16), /*tag=*/1);
    for (int i = 0; i < 3; ++i) t.send(next_of(t), pattern(t.rank(), 50 + i, 8), /*tag=*/2);
    // The later tag first: it must not wait behind the earlier one.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(t.recv(prev_of(t), 2), pattern(prev_of(t), 50 + i, 8));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(t.recv(prev_of(t), 1), pattern(prev_of(t), i, 16));
  });
}

TEST_P(TransportContractTest, VariableLengthsIncludingEmpty) {
  const std::vector<std::size_t> lengths{0, 1, 5, 1000, 0, 1 << 20};
  run_world(GetParam(), [&](Transport& t) {
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      t.send(next_of(t), pattern(t.rank(), static_cast<int>(i), lengths[i]));
    }
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      EXPECT_EQ(t.recv(prev_of(t)), pattern(prev_of(t), static_cast<int>(i), lengths[i]));
    }
  });
}

// Sends are buffered: everyone sending large messages to everyone before anyone receives must
// not deadlock (it would with rendezvous-protocol blocking sends).
TEST_P(TransportContractTest, SendToAllThenReceiveFromAll) {
  constexpr std::size_t kBytes = 256 << 10;
  run_world(GetParam(), [&](Transport& t) {
    for (int peer = 0; peer < t.size(); ++peer) t.send(peer, pattern(t.rank(), peer, kBytes), 3);
    for (int peer = t.size() - 1; peer >= 0; --peer) {
      EXPECT_EQ(t.recv(peer, 3), pattern(peer, t.rank(), kBytes));
    }
  });
}

TEST_P(TransportContractTest, ExchangeCycles) {
  run_world(GetParam(), [](Transport& t) {
    for (int round = 0; round < 4; ++round) {
      const std::size_t length = static_cast<std::size_t>(round) * 1000;
      EXPECT_EQ(t.exchange(next_of(t), pattern(t.rank(), round, length), prev_of(t)),
                pattern(prev_of(t), round, length));
      EXPECT_EQ(t.exchange(prev_of(t), pattern(t.rank(), round, length + 1), next_of(t), 4),
                pattern(next_of(t), round, length + 1));
    }
  });
}

TEST_P(TransportContractTest, BarriersBetweenMessages) {
  run_world(GetParam(), [](Transport& t) {
    for (int round = 0; round < 5; ++round) {
      t.barrier();
      t.send(next_of(t), pattern(t.rank(), round, 3));
      t.barrier();
      EXPECT_EQ(t.recv(prev_of(t)), pattern(prev_of(t), round, 3));
    }
  });
}

TEST_P(TransportContractTest, RecvTimesOut) {
  run_world(GetParam(), [](Transport& t) {
    const Seconds timeout = t.timeout();
    t.set_timeout(Seconds(0.2));
    EXPECT_THROW((void)t.recv(next_of(t), /*tag=*/77), Timeout);
    t.set_timeout(timeout);
    t.barrier();  // nobody finishes (or sends) before every rank has timed out
  });
}

TEST_P(TransportContractTest, InvalidPeerOrTag) {
  run_world(GetParam(), [](Transport& t) {
    EXPECT_THROW(t.send(t.size(), Bytes(1)), InvalidArgument);
    EXPECT_THROW(t.send(-1, Bytes(1)), InvalidArgument);
    EXPECT_THROW((void)t.recv(t.size()), InvalidArgument);
    EXPECT_THROW(t.send(0, Bytes(1), -1), InvalidArgument);
    EXPECT_THROW((void)t.exchange(0, Bytes(1), -2), InvalidArgument);
  });
}

TEST_P(TransportContractTest, ClockDoesNotGoBack) {
  run_world(GetParam(), [](Transport& t) {
    const double before = t.clock_seconds();
    t.barrier();
    EXPECT_GE(t.clock_seconds(), before);
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, TransportContractTest, ::testing::Values(1, 2, 3, 4, 7),
                         [](const ::testing::TestParamInfo<int>& param) {
                           return "M" + std::to_string(param.param);
                         });

}  // namespace
}  // namespace thinwire::comm
