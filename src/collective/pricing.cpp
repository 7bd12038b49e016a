#include "thinwire/collective/pricing.hpp"

#include "thinwire/codec/identity.hpp"
#include "thinwire/collective/parameter_server.hpp"

namespace thinwire::collective {

IterationShape allreduce_shape(AllreduceAlgorithm algorithm, int size) noexcept {
  // Shared-seed random-k sums the k sampled values with a ring all-reduce (shared_randk.cpp).
  const bool ring =
      algorithm == AllreduceAlgorithm::kRing || algorithm == AllreduceAlgorithm::kSharedRandk;
  return {.pattern = ring ? Pattern::kRing : Pattern::kAllgather, .size = size};
}

RankPrice rank_price(const IterationShape& shape, int rank, const tune::CostModel& cost) {
  const int m = shape.size;
  if (m <= 1) return {.copies = 0.0, .fixed = 0.0};  // nothing is sent
  switch (shape.pattern) {
    case Pattern::kAllgather:
      return {.copies = static_cast<double>(m - 1), .fixed = 0.0};
    case Pattern::kRing:
      return {.copies = 2.0 * static_cast<double>(m - 1), .fixed = 0.0};
    case Pattern::kParameterServer: {
      const double downlink = static_cast<double>(m - 1) * cost.cost(8 * shape.downlink_bytes);
      return {.copies = rank == kServerRank ? 0.0 : 1.0, .fixed = downlink / m};
    }
    case Pattern::kGossip:
      return {.copies = static_cast<double>(shape.degree), .fixed = 0.0};
  }
  return {};
}

RankPrice rank_seconds(const IterationShape& shape, int rank, const tune::CostModel& cost) {
  if (shape.pattern != Pattern::kParameterServer || shape.size <= 1) {
    return rank_price(shape, rank, cost);
  }
  // Uplinks arrive in parallel (one per worker link); the server then sends M − 1 model messages
  // over its own link, one after the other.
  const double downlink = static_cast<double>(shape.size - 1) * cost.cost(8 * shape.downlink_bytes);
  return {.copies = rank == kServerRank ? 0.0 : 1.0, .fixed = downlink};
}

double iteration_cost(const IterationShape& shape, std::span<const std::uint64_t> message_bytes,
                      const tune::CostModel& cost) {
  double total = 0.0;
  for (std::size_t r = 0; r < message_bytes.size(); ++r) {
    const RankPrice p = rank_price(shape, static_cast<int>(r), cost);
    total += p.copies * cost.cost(8 * message_bytes[r]) + p.fixed;
  }
  return total;
}

std::uint64_t uncompressed_message_bytes(std::size_t n) {
  return codec::IdentityCodec{}.max_encoded_bytes(n);
}

Traffic uncompressed_allreduce(AllreduceAlgorithm algorithm, std::size_t d, int rank, int size,
                               const comm::LinkModel& link) {
  Traffic c;
  if (size <= 1) return c;
  const auto hops = static_cast<double>(size - 1);
  if (algorithm == AllreduceAlgorithm::kRing) {
    // Reduce-scatter sends every chunk but the owned one (rank+1), the all-gather every chunk but
    // rank+2's (allreduce.cpp); 2(M−1) hops of the largest chunk on the critical path.
    const int owned = ring_owned_chunk(rank, size);
    const int last = (rank + 2) % size;
    for (int chunk = 0; chunk < size; ++chunk) {
      const std::uint64_t bytes = uncompressed_message_bytes(balanced_chunk(d, size, chunk).size);
      if (chunk != owned) c.bytes += bytes;
      if (chunk != last) c.bytes += bytes;
    }
    const std::size_t largest = balanced_chunk(d, size, 0).size;
    c.seconds = 2 * hops * link.message_seconds(uncompressed_message_bytes(largest));
    return c;
  }
  // All-gather around the ring: M−1 forwarded full messages per rank, M−1 hops.
  const std::uint64_t bytes = uncompressed_message_bytes(d);
  c.bytes = static_cast<std::uint64_t>(size - 1) * bytes;
  c.seconds = hops * link.message_seconds(bytes);
  return c;
}

Traffic uncompressed_parameter_server(std::size_t d, int rank, int size,
                                      const comm::LinkModel& link) {
  Traffic c;
  if (size <= 1) return c;
  // One uplink message per worker, then M−1 model messages from the server.
  const std::uint64_t bytes = uncompressed_message_bytes(d);
  c.bytes = rank == kServerRank ? static_cast<std::uint64_t>(size - 1) * bytes : bytes;
  c.seconds = static_cast<double>(size) * link.message_seconds(bytes);
  return c;
}

Traffic uncompressed_gossip(std::size_t d, int degree, double rounds, const comm::LinkModel& link) {
  const std::uint64_t bytes = uncompressed_message_bytes(d);
  return {.bytes = static_cast<std::uint64_t>(degree) * bytes,
          .seconds = rounds * link.message_seconds(bytes)};
}

}  // namespace thinwire::collective
