// Helpers shared by the collectives' implementations (not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "thinwire/codec/codec.hpp"
#include "thinwire/collective/result.hpp"
#include "thinwire/comm/transport.hpp"

namespace thinwire::codec {
class ErrorFeedback;
}

namespace thinwire::collective::detail {

// Counts what a collective sends and measures its duration on the transport's clock. Every send
// of a collective goes through it, so Result is exact by construction; finish() returns only once
// the transport has completed those sends, so the duration covers them on every transport.
class Tally {
 public:
  explicit Tally(comm::Transport& transport)
      : transport_(transport), start_(transport.clock_seconds()) {}

  void send(int peer, std::span<const std::byte> data, int tag) {
    transport_.send(peer, data, tag);
    count(data.size());
  }
  [[nodiscard]] comm::Bytes exchange(int to, std::span<const std::byte> data, int from, int tag) {
    comm::Bytes received = transport_.exchange(to, data, from, tag);
    count(data.size());
    return received;
  }
  // Waits for this rank's sends to be taken (Transport::flush), then reads the clock.
  [[nodiscard]] Result finish() {
    transport_.flush();
    Result r = result_;
    r.seconds = transport_.clock_seconds() - start_;
    return r;
  }

 private:
  void count(std::size_t bytes) noexcept {
    result_.bytes_sent += bytes;
    ++result_.messages_sent;
  }

  comm::Transport& transport_;
  double start_;
  Result result_;
};

// a mod m in [0, m) for m > 0 and any a.
[[nodiscard]] constexpr int mod(int a, int m) noexcept { return ((a % m) + m) % m; }

[[nodiscard]] inline codec::EncodeContext context(std::uint64_t seed, int rank,
                                                  std::uint64_t iteration) noexcept {
  return {.seed = seed, .rank = static_cast<std::uint32_t>(rank), .iteration = iteration};
}

// Encodes v, through the error feedback when one is given.
[[nodiscard]] comm::Bytes encode(const codec::Codec& codec, std::span<const float> v,
                                 const codec::EncodeContext& ctx,
                                 codec::ErrorFeedback* error_feedback);

// Sets out to 0 and adds the decoded messages in the given order, so that every rank that holds
// the same messages ends with the same floats.
void decode_sum(std::span<const comm::Bytes> messages, std::span<float> out);

// out[i] /= divisor (a division, not a multiplication by 1/divisor, so that exact integer sums
// give the correctly rounded mean).
void divide(std::span<float> out, float divisor) noexcept;

}  // namespace thinwire::collective::detail
