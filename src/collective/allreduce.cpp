#include "thinwire/collective/allreduce.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "detail.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::collective {
namespace {

using comm::Bytes;

// Salts that derive the seed of each encoding in the ring from the caller's seed: hop s of the
// reduce-scatter uses kRingHopSalt + s, the owner's final encoding kRingFinalSalt. The rank still
// enters through EncodeContext::rank, so no two encodings of one call share random numbers.
constexpr std::uint64_t kRingHopSalt = 0x52494E47'00000000ULL;
constexpr std::uint64_t kRingFinalSalt = 0x52494E47'FFFFFFFFULL;

std::uint64_t derived_seed(std::uint64_t seed, std::uint64_t salt) noexcept {
  return RngKey{seed}.derive(salt).value;
}

int tag_or(int tag, int fallback) noexcept { return tag < 0 ? fallback : tag; }

std::span<float> chunk_of(std::span<float> data, int parts, int index) {
  const Chunk c = balanced_chunk(data.size(), parts, index);
  return data.subspan(c.begin, c.size);
}

}  // namespace

AllreduceAlgorithm parse_allreduce_algorithm(std::string_view name) {
  if (name == "allgather") return AllreduceAlgorithm::kAllgather;
  if (name == "ring") return AllreduceAlgorithm::kRing;
  if (name == "shared_randk") return AllreduceAlgorithm::kSharedRandk;
  throw InvalidArgument("allreduce: unknown algorithm '" + std::string(name) +
                        "' (known: allgather, ring, shared_randk)");
}

std::string_view allreduce_algorithm_name(AllreduceAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case AllreduceAlgorithm::kRing:
      return "ring";
    case AllreduceAlgorithm::kSharedRandk:
      return "shared_randk";
    case AllreduceAlgorithm::kAllgather:
      break;
  }
  return "allgather";
}

Chunk balanced_chunk(std::size_t d, int parts, int index) {
  if (parts < 1 || index < 0 || index >= parts) {
    throw InvalidArgument("balanced_chunk: chunk " + std::to_string(index) + " of " +
                          std::to_string(parts) + " does not exist");
  }
  const auto p = static_cast<std::size_t>(parts);
  const auto i = static_cast<std::size_t>(index);
  const std::size_t base = d / p;
  const std::size_t extra = d % p;
  return {.begin = i * base + std::min(i, extra), .size = base + (i < extra ? 1 : 0)};
}

int ring_owned_chunk(int rank, int size) noexcept { return detail::mod(rank + 1, size); }

namespace {

// The residual's dimension for `algorithm` (the overview); validates the world first.
std::size_t residual_dimension(AllreduceAlgorithm algorithm, std::size_t d, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size) {
    throw InvalidArgument("allreduce error feedback: rank " + std::to_string(rank) +
                          " is not in a world of " + std::to_string(size));
  }
  switch (algorithm) {
    case AllreduceAlgorithm::kAllgather:
      return d;
    case AllreduceAlgorithm::kRing:
      return balanced_chunk(d, size, ring_owned_chunk(rank, size)).size;
    case AllreduceAlgorithm::kSharedRandk:
      break;
  }
  throw InvalidArgument(
      "allreduce error feedback: shared_randk takes none (the scaled shared projection is "
      "unbiased by itself)");
}

std::string describe(AllreduceAlgorithm algorithm, std::size_t d, int rank, int size) {
  return std::string(allreduce_algorithm_name(algorithm)) + " of " + std::to_string(d) +
         " elements on rank " + std::to_string(rank) + " of " + std::to_string(size);
}

}  // namespace

AllreduceResidual::AllreduceResidual(std::shared_ptr<const codec::Codec> codec,
                                     AllreduceAlgorithm algorithm, std::size_t d, int rank,
                                     int size)
    : ErrorFeedback(std::move(codec), residual_dimension(algorithm, d, rank, size)),
      algorithm_(algorithm),
      length_(d),
      rank_(rank),
      size_(size) {}

void AllreduceResidual::check(AllreduceAlgorithm algorithm, std::size_t d, int rank,
                              int size) const {
  if (algorithm == algorithm_ && d == length_ && rank == rank_ && size == size_) return;
  throw InvalidArgument("allreduce: the error feedback was built for the " +
                        describe(algorithm_, length_, rank_, size_) + ", used for the " +
                        describe(algorithm, d, rank, size));
}

std::uint64_t ring_hop_seed(std::uint64_t seed, int step) noexcept {
  return derived_seed(seed, kRingHopSalt + static_cast<std::uint64_t>(step));
}

std::uint64_t ring_final_seed(std::uint64_t seed) noexcept {
  return derived_seed(seed, kRingFinalSalt);
}

Result allreduce(comm::Transport& transport, std::span<float> data, const codec::Codec& codec,
                 const AllreduceOptions& options) {
  switch (options.algorithm) {
    case AllreduceAlgorithm::kRing:
      return allreduce_ring(transport, data, codec, options);
    case AllreduceAlgorithm::kSharedRandk:
      return allreduce_shared_randk(transport, data, codec, options);
    case AllreduceAlgorithm::kAllgather:
      break;
  }
  return allreduce_allgather(transport, data, codec, options);
}

Result allreduce_allgather(comm::Transport& transport, std::span<float> data,
                           const codec::Codec& codec, const AllreduceOptions& options) {
  detail::Tally tally(transport);
  const int m = transport.size();
  const int r = transport.rank();
  const int tag = tag_or(options.tag, kTagAllgather);
  const int next = detail::mod(r + 1, m);
  const int prev = detail::mod(r - 1, m);

  if (options.error_feedback != nullptr) {
    options.error_feedback->check(AllreduceAlgorithm::kAllgather, data.size(), r, m);
  }
  std::vector<Bytes> messages(static_cast<std::size_t>(m));
  messages[static_cast<std::size_t>(r)] = detail::encode(
      codec, data, detail::context(options.seed, r, options.iteration), options.error_feedback);
  // Step s forwards the message that originated s−1 hops back and receives the one from s hops
  // back; after M−1 steps every rank holds all M messages. A cycle of exchanges cannot deadlock.
  for (int s = 1; s < m; ++s) {
    const auto send_origin = static_cast<std::size_t>(detail::mod(r - s + 1, m));
    const auto recv_origin = static_cast<std::size_t>(detail::mod(r - s, m));
    messages[recv_origin] = tally.exchange(next, messages[send_origin], prev, tag);
  }
  detail::decode_sum(messages, data);
  if (options.reduction == Reduction::kAverage) detail::divide(data, static_cast<float>(m));
  return tally.finish();
}

Result allreduce_ring(comm::Transport& transport, std::span<float> data, const codec::Codec& codec,
                      const AllreduceOptions& options) {
  detail::Tally tally(transport);
  const int m = transport.size();
  const int r = transport.rank();
  const int tag = tag_or(options.tag, kTagRing);
  const int next = detail::mod(r + 1, m);
  const int prev = detail::mod(r - 1, m);
  if (options.error_feedback != nullptr) {
    options.error_feedback->check(AllreduceAlgorithm::kRing, data.size(), r, m);
  }

  // Reduce-scatter. At step s rank r sends its partial sum of chunk r−s and receives chunk r−s−1,
  // to which it adds its own values; after M−1 steps it holds the full sum of chunk r+1.
  Bytes outgoing = detail::encode(
      codec, chunk_of(data, m, r),
      detail::context(ring_hop_seed(options.seed, 0), r, options.iteration), nullptr);
  const int owned = ring_owned_chunk(r, m);
  // With M = 1 there are no hops: the owned chunk is the whole vector, as given.
  const std::span<const float> owned_local = chunk_of(data, m, owned);
  std::vector<float> partial(owned_local.begin(), owned_local.end());
  for (int s = 0; s + 1 < m; ++s) {
    const Bytes incoming = tally.exchange(next, outgoing, prev, tag);
    const std::span<const float> local = chunk_of(data, m, detail::mod(r - s - 1, m));
    partial.assign(local.begin(), local.end());
    codec::decode(incoming, partial, codec::DecodeMode::kAccumulate);
    if (s + 2 < m) {
      outgoing = detail::encode(
          codec, partial, detail::context(ring_hop_seed(options.seed, s + 1), r, options.iteration),
          nullptr);
    }
  }
  if (options.reduction == Reduction::kAverage) detail::divide(partial, static_cast<float>(m));

  // All-gather. The owner's final message is decoded by every rank, itself included, and
  // forwarded unchanged, so all ranks end with identical floats.
  Bytes message = detail::encode(
      codec, partial, detail::context(ring_final_seed(options.seed), r, options.iteration),
      options.error_feedback);
  codec::decode(message, chunk_of(data, m, owned), codec::DecodeMode::kOverwrite);
  for (int s = 0; s + 1 < m; ++s) {
    message = tally.exchange(next, message, prev, tag);
    codec::decode(message, chunk_of(data, m, detail::mod(r - s, m)), codec::DecodeMode::kOverwrite);
  }
  return tally.finish();
}

}  // namespace thinwire::collective
