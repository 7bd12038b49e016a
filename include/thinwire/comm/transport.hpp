// Transport: point-to-point messaging between the ranks of a world. The layer below collectives.
//
// Every blocking call waits at most timeout() and then throws Timeout; a peer that failed or
// closed the world makes blocking calls throw TransportError. Messages between one ordered pair
// of ranks with the same tag arrive in the order they were sent.
//
// Backends: threads (in-process world, comm/threads.hpp), mpi (OpenMPI, comm/mpi.hpp), and the
// counting decorator (comm/counting.hpp) that measures messages and bytes on either.
//
// Clock: every transport reports clock_seconds(). The threads backend with a link model returns
// the rank's *simulated* time (compute time measured on this thread plus the modelled cost of its
// messages, waiting for the latest sender); other backends return measured wall time since the
// transport was created. Collectives report durations in this clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace thinwire::comm {

using Bytes = std::vector<std::byte>;
using Seconds = std::chrono::duration<double>;

inline constexpr Seconds kDefaultTimeout{60.0};

class Transport {
 public:
  virtual ~Transport() = default;

  [[nodiscard]] virtual int rank() const noexcept = 0;
  [[nodiscard]] virtual int size() const noexcept = 0;

  // Sends `data` to `peer` (buffered: may return before the peer receives it).
  virtual void send(int peer, std::span<const std::byte> data, int tag = 0) = 0;
  // Receives the next message from `peer` with `tag`, of whatever length was sent.
  [[nodiscard]] virtual Bytes recv(int peer, int tag = 0) = 0;
  // Sends to `to` while receiving from `from`; safe when all ranks call it in a cycle.
  [[nodiscard]] virtual Bytes exchange(int to, std::span<const std::byte> data, int from,
                                       int tag = 0) = 0;
  virtual void barrier() = 0;
  // Returns once every send of this rank has completed on the transport's side (MPI: its request
  // completed, which for a message above the eager limit needs the receiver to have taken it).
  // MPI's TCP transport moves data only inside MPI calls, so a rank that left a collective with a
  // large send pending would hold the rest of it back until its next call: every collective
  // calls flush() before it reads the clock. Transports that deliver on send need nothing.
  virtual void flush() {}

  // This rank's clock in seconds (simulated or measured, see above).
  [[nodiscard]] virtual double clock_seconds() const = 0;
  // Adds `seconds` of modelled work (e.g. compute on hardware we do not have) to a simulated
  // clock. Measured clocks ignore it: real work already shows in them.
  virtual void advance_clock(double /*seconds*/) {}

  void set_timeout(Seconds timeout) noexcept { timeout_ = timeout; }
  [[nodiscard]] Seconds timeout() const noexcept { return timeout_; }

 private:
  Seconds timeout_ = kDefaultTimeout;
};

}  // namespace thinwire::comm
