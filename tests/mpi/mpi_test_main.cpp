// main() for GoogleTest binaries under mpiexec: initializes MPI, creates this process's
// MpiTransport (tests/support/world.hpp), runs every test on every rank, and exits with the same
// status on all ranks. Rank 0 prints the usual report; other ranks print only their failures, so
// a failure on any rank is visible with its rank.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "support/world.hpp"
#include "thinwire/comm/mpi.hpp"

namespace thinwire::test {
namespace {

std::unique_ptr<comm::MpiTransport> g_world;

// Tests run for seconds; a lost message should fail well before CTest's timeout.
constexpr comm::Seconds kTestTimeout{30.0};

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_,
                 result.file_name() != nullptr ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
};

}  // namespace

comm::MpiTransport& mpi_world() { return *g_world; }

}  // namespace thinwire::test

int main(int argc, char** argv) {
  using namespace thinwire;
  comm::MpiSession session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int failed = 0;
  try {
    test::g_world = std::make_unique<comm::MpiTransport>();
    test::g_world->set_timeout(test::kTestTimeout);
    if (session.rank() != 0) {
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new test::FailurePrinter(session.rank()));
    }
    const int local = RUN_ALL_TESTS();
    MPI_Allreduce(&local, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    test::g_world.reset();
  } catch (const std::exception& e) {
    comm::abort_world(e);
  }
  return failed;
}
