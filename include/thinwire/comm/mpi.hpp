// MPI backend (OpenMPI): the real distributed engine. Built only when THINWIRE_HAVE_MPI is 1
// (thinwire::comm defines it publicly, so `#if THINWIRE_HAVE_MPI` works in user code).
//
// One MpiTransport per process, used from one thread (MPI_THREAD_FUNNELED). Semantics match the
// threads backend:
//   - send() is buffered: the bytes are copied and sent with MPI_Isend, so "everyone sends, then
//     everyone receives" cannot deadlock; completed sends are reaped on every call.
//   - recv() accepts any length: MPI_Improbe in a polling loop (yield, then short sleeps) until
//     the message is there or timeout() has passed (Timeout), then MPI_Imrecv, again polled.
//   - exchange() is a buffered send and a receive, so a cycle of exchanges cannot deadlock.
//   - barrier() is MPI_Ibarrier polled against the timeout.
// MPI errors come back as TransportError carrying MPI_Error_string (the communicator uses
// MPI_ERRORS_RETURN). After a Timeout or TransportError the transport is unusable: the process
// should end with abort_world().
//
// Failure policy: MPI has no way to tell peers that one rank failed, so a rank that fails must
// take the job down, or its peers wait until their timeouts. Every MPI main() therefore reads
//
//   int main(int argc, char** argv) {
//     thinwire::comm::MpiSession session(&argc, &argv);
//     try { ...; } catch (const std::exception& e) { thinwire::comm::abort_world(e); }
//   }
//
// clock_seconds() is MPI_Wtime() since the transport was created (measured, never simulated).
#pragma once

#include <mpi.h>

#include <exception>
#include <span>
#include <string_view>
#include <vector>

#include "thinwire/comm/transport.hpp"

namespace thinwire::comm {

// Initializes MPI (MPI_Init_thread, MPI_THREAD_FUNNELED) unless it already is, and finalizes it
// on destruction if it initialized it. Sets MPI_ERRORS_RETURN on MPI_COMM_WORLD. Before it
// initializes MPI it sets OpenMPI's btl_tcp_eager_limit and btl_tcp_max_send_size to 512 KiB
// unless the environment already names them (OMPI_MCA_*, also set by `mpirun --mca`).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  [[nodiscard]] int rank() const;
  [[nodiscard]] int size() const;

 private:
  bool owns_ = false;
};

class MpiTransport final : public Transport {
 public:
  // Collective over `comm`: works on a duplicate, so thinwire's messages never match the
  // application's own.
  explicit MpiTransport(MPI_Comm comm = MPI_COMM_WORLD);
  // Waits up to timeout() for buffered sends to complete, then cancels what is left.
  ~MpiTransport() override;
  MpiTransport(const MpiTransport&) = delete;
  MpiTransport& operator=(const MpiTransport&) = delete;

  [[nodiscard]] int rank() const noexcept override { return rank_; }
  [[nodiscard]] int size() const noexcept override { return size_; }

  void send(int peer, std::span<const std::byte> data, int tag = 0) override;
  [[nodiscard]] Bytes recv(int peer, int tag = 0) override;
  [[nodiscard]] Bytes exchange(int to, std::span<const std::byte> data, int from,
                               int tag = 0) override;
  void barrier() override;

  [[nodiscard]] double clock_seconds() const override;

  // Waits until every buffered send has completed (Timeout after timeout()).
  void flush() override;

  [[nodiscard]] MPI_Comm communicator() const noexcept { return comm_; }

 private:
  struct PendingSend {
    Bytes data;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  void check_peer(int peer, int tag, std::string_view op) const;
  void reap_sends();
  // Polls MPI_Test on `request` until it completes or the deadline passes (Timeout).
  void wait_for(MPI_Request& request, double deadline, std::string_view op);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int tag_ub_ = 32767;  // the MPI standard's guaranteed minimum of MPI_TAG_UB
  double start_ = 0;
  std::vector<PendingSend> pending_;
  std::vector<Bytes> abandoned_;  // buffers of receives that timed out: MPI may still write them
};

// Prints "error: rank R: <what>" to stderr and calls MPI_Abort on MPI_COMM_WORLD, which ends
// every rank of the job. Without MPI initialized it exits with status 1.
[[noreturn]] void abort_world(const std::exception& error);
[[noreturn]] void abort_world(std::string_view message);

}  // namespace thinwire::comm
