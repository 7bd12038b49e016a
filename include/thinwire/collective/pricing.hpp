// What one iteration of a collective costs (SPEC §3, "what the rule must price"). The collective
// that sends an iteration's messages is the one place that knows how many there are and how
// often each is forwarded, so it is the one that prices them; the tuner only compares.
//
//   iteration_cost   Σ C(bits) over every message one iteration sends, given the message each
//                    rank's codec produces (rank m's message has message_bytes[m] bytes):
//                      allgather  each message is forwarded around the ring to the M − 1 others;
//                      ring       each rank sends 2(M − 1) messages, reduce-scatter and
//                                 all-gather, of its chunk (message_bytes[m] is rank m's chunk
//                                 message; the hops re-encode partial sums of other chunks, so
//                                 this is exact only when every chunk encodes to that size);
//                                 shared-seed random-k is this ring over the k sampled values
//                                 (identity messages of the chunks of k);
//                      ps         ranks 1..M−1 send theirs to the server (rank 0 folds its own in
//                                 locally), then the server sends the model message
//                                 (downlink_bytes) to each of them;
//                      gossip     each rank sends its message to each of its `degree`
//                                 neighbours.
//   rank_price       the share of that cost one rank's choice of level controls: its message is
//                    sent `copies` times, and `fixed` is its 1/M share of what no rank's level
//                    changes (the parameter server's model broadcast). The tuner's rule divides
//                    the predicted improvement of a level by copies·C(bits(θ)) + fixed.
//   rank_seconds     the same split when C is a time (`--cost auto`): the iteration's critical path
//                    as a function of this rank's message when every rank sends one of its size.
//                    It equals rank_price except for the parameter server, whose M − 1 model
//                    messages leave the server one after the other: fixed = (M − 1)·C(downlink)
//                    in full (a share of a time is no time anyone waits). The caller adds the
//                    compute time of the iteration to `fixed`.
//   uncompressed_*   what the same iteration would send with the identity codec: the bytes this
//                    rank sends and the seconds on the critical path under the link model (the
//                    run summary's "uncompressed" estimate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "thinwire/collective/allreduce.hpp"
#include "thinwire/comm/link_model.hpp"
#include "thinwire/tune/cost_model.hpp"

namespace thinwire::collective {

enum class Pattern : std::uint8_t { kAllgather, kRing, kParameterServer, kGossip };

struct IterationShape {
  Pattern pattern = Pattern::kAllgather;
  int size = 1;                      // M
  int degree = 0;                    // gossip: the rank's neighbours
  std::uint64_t downlink_bytes = 0;  // parameter server: the model message, per copy
};

// The shape of an all-reduce by `algorithm` over `size` ranks.
[[nodiscard]] IterationShape allreduce_shape(AllreduceAlgorithm algorithm, int size) noexcept;

struct RankPrice {
  double copies = 1.0;  // times this rank's message is sent in one iteration
  double fixed = 0.0;   // this rank's share of the cost that no level changes
};

// The price of rank `rank`'s message in one iteration of `shape`.
[[nodiscard]] RankPrice rank_price(const IterationShape& shape, int rank,
                                   const tune::CostModel& cost);

// The critical-path price of rank `rank`'s message in one iteration of `shape`, C in seconds.
[[nodiscard]] RankPrice rank_seconds(const IterationShape& shape, int rank,
                                     const tune::CostModel& cost);

// Σ C over one iteration's messages (see the overview); message_bytes has one entry per rank.
[[nodiscard]] double iteration_cost(const IterationShape& shape,
                                    std::span<const std::uint64_t> message_bytes,
                                    const tune::CostModel& cost);

// Bytes of an identity-codec message of n elements.
[[nodiscard]] std::uint64_t uncompressed_message_bytes(std::size_t n);

struct Traffic {
  std::uint64_t bytes = 0;  // sent by this rank
  double seconds = 0;       // the collective's critical path
};
[[nodiscard]] Traffic uncompressed_allreduce(AllreduceAlgorithm algorithm, std::size_t d, int rank,
                                             int size, const comm::LinkModel& link);
[[nodiscard]] Traffic uncompressed_parameter_server(std::size_t d, int rank, int size,
                                                    const comm::LinkModel& link);
// One gossip round with `degree` neighbours scheduled in `rounds` matching rounds.
[[nodiscard]] Traffic uncompressed_gossip(std::size_t d, int degree, double rounds,
                                          const comm::LinkModel& link);

}  // namespace thinwire::collective
