// The vocabulary shared by every collective (SPEC §4; STYLE: free function + options struct):
// what one call sent and how long it took, how contributions are reduced, and the message tags.
//
// Every collective is a free function f(transport, data, codec, options) -> Result. All ranks of
// the world must call the same collectives in the same order with equal options (lengths, codec
// parameters, seeds); messages are self-describing, so a mismatch in length or codec surfaces as
// InvalidArgument or CorruptMessage instead of a silently wrong sum.
#pragma once

#include <cstdint>

namespace thinwire::collective {

// What one rank did during one collective call.
struct Result {
  std::uint64_t bytes_sent = 0;     // bytes this rank handed to the transport, headers included
  std::uint64_t messages_sent = 0;  // messages this rank sent
  double seconds = 0.0;  // transport clock after minus before (simulated or wall, transport.hpp)

  Result& operator+=(const Result& other) noexcept {
    bytes_sent += other.bytes_sent;
    messages_sent += other.messages_sent;
    seconds += other.seconds;
    return *this;
  }
};

// How the M contributions are combined.
enum class Reduction : std::uint8_t {
  kSum,      // Σ_m x_m
  kAverage,  // (1/M)·Σ_m x_m
};

// Transport tags, one per collective, so that a message of one collective can never be taken by
// another that runs next with the same peers. Options structs default to these.
inline constexpr int kTagAllgather = 0x7401;
inline constexpr int kTagRing = 0x7402;
inline constexpr int kTagSharedRandk = 0x7403;
inline constexpr int kTagBroadcast = 0x7404;
inline constexpr int kTagPsGather = 0x7405;
inline constexpr int kTagPsModel = 0x7406;
inline constexpr int kTagGossip = 0x7407;
inline constexpr int kTagChoco = 0x7408;

}  // namespace thinwire::collective
