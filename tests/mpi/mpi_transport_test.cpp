// MpiTransport specifics beyond the shared contract (tests/unit/comm/transport_contract_test.cpp).
#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "support/world.hpp"
#include "thinwire/comm/counting.hpp"
#include "thinwire/comm/mpi.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

TEST(MpiTransportTest, WorldMatchesMpiexec) {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(test::mpi_world().size(), size);
}

TEST(MpiTransportTest, TagAboveUpperBoundIsRejected) {
  MpiTransport& t = test::mpi_world();
  int* tag_ub = nullptr;
  int found = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &found);
  ASSERT_NE(found, 0);
  if (*tag_ub < INT_MAX) {
    EXPECT_THROW(t.send(t.rank(), Bytes(1), *tag_ub + 1), InvalidArgument);
  }
}

TEST(MpiTransportTest, FlushWaitsForBufferedSends) {
  MpiTransport& t = test::mpi_world();
  const int next = (t.rank() + 1) % t.size();
  const int prev = (t.rank() + t.size() - 1) % t.size();
  t.send(next, Bytes(1 << 20, std::byte{7}), 9);
  const Bytes got = t.recv(prev, 9);
  EXPECT_EQ(got.size(), std::size_t{1} << 20);
  EXPECT_NO_THROW(t.flush());
  t.barrier();
}

// MpiSession set OpenMPI's TCP eager limit before MPI_Init (the test launcher leaves it unset),
// where OpenMPI's parameter system reads it.
TEST(MpiTransportTest, SessionRaisesTheTcpEagerLimit) {
  const char* eager = std::getenv("OMPI_MCA_btl_tcp_eager_limit");
  const char* fragment = std::getenv("OMPI_MCA_btl_tcp_max_send_size");
  ASSERT_NE(eager, nullptr);
  ASSERT_NE(fragment, nullptr);
  EXPECT_STREQ(eager, "524288");
  EXPECT_STREQ(fragment, "524288");
}

TEST(MpiTransportTest, CountingDecoratorOnMpi) {
  MpiTransport& mpi = test::mpi_world();
  CountingTransport t(mpi);
  const int next = (t.rank() + 1) % t.size();
  const int prev = (t.rank() + t.size() - 1) % t.size();
  (void)t.exchange(next, Bytes(100), prev, 11);
  EXPECT_EQ(t.stats().bytes_sent, 100u);
  EXPECT_EQ(t.stats().bytes_received, 100u);
  t.barrier();
}

TEST(MpiTransportTest, WallClockIgnoresAdvance) {
  MpiTransport& t = test::mpi_world();
  const double before = t.clock_seconds();
  t.advance_clock(1000.0);
  EXPECT_LT(t.clock_seconds() - before, 100.0);
}

}  // namespace
}  // namespace thinwire::comm
