#include "thinwire/comm/mpi.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

using Clock = std::chrono::steady_clock;

void check(int rc, int rank, std::string_view op) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  throw TransportError("mpi: rank " + std::to_string(rank) + ": " + std::string(op) + ": " +
                       (length > 0 ? std::string(text, static_cast<std::size_t>(length))
                                   : "MPI error " + std::to_string(rc)));
}

// "0.2 s", "60 s": durations in messages without trailing zeros.
std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", seconds);
  return text;
}

double seconds_now() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Between two polls of a pending request. OpenMPI's TCP transport moves a message only inside MPI
// calls (its progress thread does not help: btl_tcp_progress_thread=1 measured no better), so
// the polls must be dense: any sleep, even sleep_for(1us) (about 55 us with the kernel's timer
// slack), made a 2-rank all-gather of 200 KiB messages on a 10 Mbit/s netlab link take 1.7x the
// link time, against 1.1-1.2x with yields only (experiments/netlab_validation/README.md). A
// yield still hands the core to ranks that compute when a machine is oversubscribed.
void pause_between_polls() { std::this_thread::yield(); }

// OpenMPI's TCP transport sends a message above btl_tcp_eager_limit (64 KiB by default) only after
// a rendezvous handshake, each step of which waits for the peer's next MPI call. On netlab's
// shaped links that cost up to 1.5x the link time for the 200 KiB messages of an MLP's
// all-gather at 4 ranks on 2 cores, and nothing with eager sends (docs/results.md,
// netlab-validation). Unless the user chose values (in the environment, which `mpirun --mca` and
// `-x` also set), messages up to 512 KiB go eagerly; OpenMPI reads these at MPI_Init.
void default_tcp_eager_limit() {
  setenv("OMPI_MCA_btl_tcp_eager_limit", "524288", 0);
  setenv("OMPI_MCA_btl_tcp_max_send_size", "524288", 0);
}

bool mpi_running() {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

}  // namespace

// ---- MpiSession ---------------------------------------------------------------------------------

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized == 0) {
    default_tcp_eager_limit();
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      throw TransportError("mpi: MPI_Init_thread failed");
    }
    owns_ = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiSession::~MpiSession() {
  if (!owns_ || !mpi_running()) return;
  // MPI_Finalize waits for every rank; a rank leaving because of an exception would make it hang,
  // so it takes the job down instead.
  if (std::uncaught_exceptions() > 0) abort_world("leaving an MPI session with an exception");
  MPI_Finalize();
}

int MpiSession::rank() const {
  int rank = 0;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), -1, "MPI_Comm_rank");
  return rank;
}

int MpiSession::size() const {
  int size = 0;
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), -1, "MPI_Comm_size");
  return size;
}

// ---- MpiTransport -------------------------------------------------------------------------------

MpiTransport::MpiTransport(MPI_Comm comm) {
  check(MPI_Comm_dup(comm, &comm_), -1, "MPI_Comm_dup");
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), -1, "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(comm_, &rank_), -1, "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), rank_, "MPI_Comm_size");
  void* tag_ub = nullptr;
  int found = 0;
  check(MPI_Comm_get_attr(comm_, MPI_TAG_UB, &tag_ub, &found), rank_, "MPI_Comm_get_attr");
  if (found != 0 && tag_ub != nullptr) tag_ub_ = *static_cast<int*>(tag_ub);
  start_ = MPI_Wtime();
}

MpiTransport::~MpiTransport() {
  if (!mpi_running()) return;
  // Unwinding from an error: peers may be gone, so do not wait for them.
  const bool failing = std::uncaught_exceptions() > 0;
  const double deadline = seconds_now() + (failing ? 0.0 : timeout().count());
  while (!pending_.empty()) {
    try {
      reap_sends();
    } catch (const TransportError&) {
      break;
    }
    if (pending_.empty() || seconds_now() >= deadline) break;
    pause_between_polls();
  }
  for (PendingSend& send : pending_) {
    MPI_Cancel(&send.request);
    MPI_Request_free(&send.request);
  }
  // Buffers of cancelled sends and abandoned receives must outlive MPI's use of them.
  if (!pending_.empty() || !abandoned_.empty()) return;
  MPI_Comm_free(&comm_);
}

void MpiTransport::check_peer(int peer, int tag, std::string_view op) const {
  if (peer < 0 || peer >= size_) {
    throw InvalidArgument("mpi: rank " + std::to_string(rank_) + " " + std::string(op) + ": peer " +
                          std::to_string(peer) + " is outside a world of " + std::to_string(size_));
  }
  if (tag < 0 || tag > tag_ub_) {
    throw InvalidArgument("mpi: " + std::string(op) + ": tag must be in [0, " +
                          std::to_string(tag_ub_) + "], got " + std::to_string(tag));
  }
}

void MpiTransport::reap_sends() {
  for (PendingSend& send : pending_) {
    int done = 0;
    check(MPI_Test(&send.request, &done, MPI_STATUS_IGNORE), rank_, "MPI_Test (send)");
  }
  std::erase_if(pending_, [](const PendingSend& send) { return send.request == MPI_REQUEST_NULL; });
}

void MpiTransport::wait_for(MPI_Request& request, double deadline, std::string_view op) {
  for (;;) {
    int done = 0;
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), rank_, op);
    if (done != 0) return;
    reap_sends();
    if (seconds_now() >= deadline) {
      throw Timeout("mpi: rank " + std::to_string(rank_) + " " + std::string(op) +
                    ": timed out after " + seconds_text(timeout().count()));
    }
    pause_between_polls();
  }
}

void MpiTransport::send(int peer, std::span<const std::byte> data, int tag) {
  check_peer(peer, tag, "send");
  if (data.size() > static_cast<std::size_t>(INT_MAX)) {
    throw InvalidArgument("mpi: send: messages are limited to " + std::to_string(INT_MAX) +
                          " bytes, got " + std::to_string(data.size()));
  }
  reap_sends();
  PendingSend& pending = pending_.emplace_back(PendingSend{Bytes(data.begin(), data.end())});
  const int rc = MPI_Isend(pending.data.data(), static_cast<int>(pending.data.size()), MPI_BYTE,
                           peer, tag, comm_, &pending.request);
  if (rc != MPI_SUCCESS) pending_.pop_back();
  check(rc, rank_, "MPI_Isend to rank " + std::to_string(peer));
}

Bytes MpiTransport::recv(int peer, int tag) {
  check_peer(peer, tag, "recv");
  const std::string op =
      "recv from rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")";
  const double deadline = seconds_now() + timeout().count();
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status{};
  for (;;) {
    int found = 0;
    check(MPI_Improbe(peer, tag, comm_, &found, &message, &status), rank_, op);
    if (found != 0) break;
    reap_sends();
    if (seconds_now() >= deadline) {
      throw Timeout("mpi: rank " + std::to_string(rank_) + " " + op + ": timed out after " +
                    seconds_text(timeout().count()));
    }
    pause_between_polls();
  }
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), rank_, op);
  Bytes data(static_cast<std::size_t>(std::max(count, 0)));
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Imrecv(data.data(), count, MPI_BYTE, &message, &request), rank_, op);
  try {
    wait_for(request, deadline, op);
  } catch (...) {
    abandoned_.push_back(std::move(data));  // MPI may still write into it
    throw;
  }
  return data;
}

Bytes MpiTransport::exchange(int to, std::span<const std::byte> data, int from, int tag) {
  check_peer(from, tag, "exchange");
  // A buffered send (one copy) rather than MPI_Isend from the caller's buffer: if the receive
  // fails, the caller's buffer may be freed while MPI still reads it.
  send(to, data, tag);
  return recv(from, tag);
}

void MpiTransport::barrier() {
  const double deadline = seconds_now() + timeout().count();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(comm_, &request), rank_, "MPI_Ibarrier");
  wait_for(request, deadline, "barrier");
}

void MpiTransport::flush() {
  const double deadline = seconds_now() + timeout().count();
  for (;;) {
    reap_sends();
    if (pending_.empty()) return;
    if (seconds_now() >= deadline) {
      throw Timeout("mpi: rank " + std::to_string(rank_) +
                    " flush: " + std::to_string(pending_.size()) + " sends not received after " +
                    seconds_text(timeout().count()));
    }
    pause_between_polls();
  }
}

double MpiTransport::clock_seconds() const { return MPI_Wtime() - start_; }

// ---- abort_world --------------------------------------------------------------------------------

void abort_world(std::string_view message) {
  const bool running = mpi_running();
  int rank = -1;
  if (running) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "error: rank %d: %.*s\n", rank, static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
  if (running) MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

void abort_world(const std::exception& error) { abort_world(std::string_view(error.what())); }

}  // namespace thinwire::comm
