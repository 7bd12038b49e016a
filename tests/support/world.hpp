// One test body, either backend: run_world(size, fn) runs fn(transport) on every rank of a world
// of `size` ranks.
//
//   - In ordinary test binaries it is a threads world (comm/threads.hpp): fn runs on `size`
//     threads and the first original exception is rethrown.
//   - In MPI test binaries (built with thinwire_add_mpi_gtest, which defines THINWIRE_TEST_MPI
//     and supplies main) fn runs once in this process, on its MpiTransport. The world size is
//     fixed by mpiexec, so a body written for another size is skipped (GTEST_SKIP). An exception
//     escaping fn aborts the job (abort_world): MPI cannot tell peers that one rank gave up.
//     A barrier after fn keeps one test's messages out of the next test.
//
// Failures inside fn should be EXPECT_*: an ASSERT_* returns from fn on one rank only, and its
// peers then wait for it until their timeout.
#pragma once

#include <gtest/gtest.h>

#include <functional>

#include "thinwire/comm/threads.hpp"
#include "thinwire/comm/transport.hpp"

#if defined(THINWIRE_TEST_MPI)
#include "thinwire/comm/mpi.hpp"
#endif

namespace thinwire::test {

#if defined(THINWIRE_TEST_MPI)

inline constexpr bool kMpiWorld = true;

// This process's transport, created by the MPI test main (tests/mpi/mpi_test_main.cpp).
comm::MpiTransport& mpi_world();

inline void run_world(int size, const std::function<void(comm::Transport&)>& fn) {
  comm::MpiTransport& transport = mpi_world();
  if (transport.size() != size) {
    GTEST_SKIP() << "body for " << size << " ranks; mpiexec started " << transport.size();
  }
  const comm::Seconds timeout = transport.timeout();
  try {
    fn(transport);
    transport.set_timeout(timeout);  // a body may have shortened it
    transport.barrier();
  } catch (const std::exception& e) {
    comm::abort_world(e);
  }
}

#else

inline constexpr bool kMpiWorld = false;

inline void run_world(int size, const std::function<void(comm::Transport&)>& fn) {
  comm::ThreadsWorldOptions options;
  options.size = size;
  comm::run_threads_world(options, fn);
}

#endif

}  // namespace thinwire::test
