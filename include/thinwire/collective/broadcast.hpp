// Compressed broadcast: the root encodes its vector once and every rank, the root included, ends
// with the decoded message, so all ranks hold the same floats bit for bit.
//
// Pattern: binomial tree over ranks relative to the root (v = rank − root mod M). Rank v ≠ 0
// receives from v − lowbit(v) and forwards the same bytes to v + 2^j for 2^j < lowbit(v) (the
// root to every v = 2^j < M), largest subtree first: ⌈log2 M⌉ message times on the critical path
// and M − 1 messages in all, each rank sending at most ⌈log2 M⌉.
//
// Error: one encoding, R = Q(x_root): exact for a lossless codec; ‖R − x‖ ≤ a·‖x‖ for a codec with
// deterministic factor a; E R = x and E‖R − x‖² ≤ ω·‖x‖² for an unbiased one (allreduce.hpp
// defines a and ω).
#pragma once

#include <cstdint>
#include <span>

#include "thinwire/codec/codec.hpp"
#include "thinwire/collective/result.hpp"
#include "thinwire/comm/transport.hpp"

namespace thinwire::collective {

struct BroadcastOptions {
  int root = 0;
  std::uint64_t seed = 0;  // EncodeContext{seed, root, iteration} for the root's encoding
  std::uint64_t iteration = 0;
  int tag = kTagBroadcast;
};

// In place: data (the same length on every rank) becomes decode(encode(root's data)). Throws
// InvalidArgument for a root outside the world.
Result broadcast(comm::Transport& transport, std::span<float> data, const codec::Codec& codec,
                 const BroadcastOptions& options = {});

}  // namespace thinwire::collective
