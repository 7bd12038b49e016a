// Parameter server (seed 000's master–worker; SPEC §4) as two building blocks for the training
// engine: rank 0 is the server.
//
// Uplink, ps_gather_average: every worker encodes its gradient once (EncodeContext{seed, rank,
//   iteration}) and sends it to rank 0 (one message per worker, linear: the workers talk only to
//   the server). The server decodes the workers' messages in rank order into zero and divides by
//   the number of workers N. When the server is also a worker (the default) its own gradient goes
//   through the same encode/decode without a message, so every worker's contribution is
//   compressed alike and the server's result equals allreduce_allgather's bit for bit for the
//   same seed. Error bounds: those of the all-gather (allreduce.hpp) with M replaced by N.
//
// Downlink, ps_broadcast_model: the server sends the model to every worker (linear again).
//   - The first call (state empty) sends the full model losslessly (identity), so all ranks start
//     from the same replica.
//   - A lossless downlink codec then sends the full model every round.
//   - A lossy downlink codec sends the model delta q = Q(model − replica) and every rank sets
//     replica ← replica + decode(q). The replica (the workers' copy of the model, identical on
//     every rank) is the server's error-feedback memory: its downlink residual is
//     e = model − replica, whatever a round did not deliver is in the next round's delta, so
//     errors do not accumulate (‖e_{t+1}‖ ≤ a·‖e_t + Δ_t‖ for a codec with deterministic factor a
//     and a model step Δ_t; with a = 0 the replica is the model). A separate residual vector would
//     count the same error twice, so there is none.
//   The server's model is never changed; every worker's model is set to the replica. A server
//   that also computes gradients should compute them at state.replica, as the workers do.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/collective/result.hpp"
#include "thinwire/comm/transport.hpp"

namespace thinwire::collective {

inline constexpr int kServerRank = 0;

struct PsOptions {
  bool server_is_worker = true;  // false: rank 0 only aggregates (needs M >= 2)
  std::uint64_t seed = 0;        // EncodeContext::seed of every encoding
  std::uint64_t iteration = 0;   // EncodeContext::iteration
  // Uplink: this worker's residual memory (ignored on a server that is not a worker), or nullptr.
  codec::ErrorFeedback* error_feedback = nullptr;
  int gather_tag = kTagPsGather;
  int model_tag = kTagPsModel;
};

// On rank 0 grad becomes the average of the workers' decoded gradients; on the other ranks grad is
// left as it was. Result: what this rank sent (workers: one message; server: nothing).
Result ps_gather_average(comm::Transport& transport, std::span<float> grad,
                         const codec::Codec& codec, const PsOptions& options = {});

// What the downlink keeps across rounds, one per rank (identical contents on every rank).
struct PsDownlinkState {
  std::vector<float> replica;  // the workers' copy of the model; empty before the first round
  std::uint64_t rounds = 0;    // calls completed
};

// On rank 0 model is the server's model (read only); on the other ranks it is overwritten with
// the new replica. Throws InvalidArgument if the model's length differs from the replica's.
Result ps_broadcast_model(comm::Transport& transport, std::span<float> model,
                          const codec::Codec& downlink, PsDownlinkState& state,
                          const PsOptions& options = {});

}  // namespace thinwire::collective
