// A job that fails on purpose, for the failure tests in tests/mpi/CMakeLists.txt: the job must end
// (non-zero, with a message) instead of leaving peers waiting. Every rank except rank 1 waits for
// a message from rank 1 that never comes, with the default 60 s timeout; rank 1
//   throw   — throws; main catches it and calls abort_world (the documented main() pattern);
//   exit    — leaves the process without a word (std::_Exit), as a crash would;
// and with
//   timeout — every rank waits 1 s for a message nobody sends; the Timeout aborts the job.
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "thinwire/comm/mpi.hpp"

int main(int argc, char** argv) {
  using namespace thinwire::comm;
  MpiSession session(&argc, &argv);
  const std::string_view mode = argc > 1 ? argv[1] : "";
  try {
    MpiTransport transport;
    if (mode == "timeout") {
      transport.set_timeout(Seconds(1.0));
      (void)transport.recv((transport.rank() + 1) % transport.size(), 5);
    } else if (transport.rank() == 1) {
      if (mode == "throw") throw std::runtime_error("boom");
      if (mode == "exit") std::_Exit(3);
      throw std::invalid_argument("usage: failure_probe throw|exit|timeout");
    } else {
      (void)transport.recv(1);
    }
  } catch (const std::exception& e) {
    abort_world(e);
  }
  return 0;
}
