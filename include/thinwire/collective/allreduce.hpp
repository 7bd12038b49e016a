// Compressed all-reduce (SPEC §4): every rank contributes x_m ∈ R^d and every rank ends with the
// same estimate of S = Σ_m x_m (or of S/M), bit for bit on every rank and every backend.
//
// Notation for the error bounds below. Q is the codec's round trip decode(encode(v)). A codec has
//   - deterministic factor a when ‖Q(v) − v‖ ≤ a·‖v‖ for every v: lossless a = 0; top-k
//     a = √(1 − k/d); QSGD with s levels and buckets of B elements a = √B/s (every element moves by
//     less than its bucket's scale/s, and the scale is at most the bucket's 2-norm);
//   - variance factor ω when it is unbiased and E‖Q(v) − v‖² ≤ ω·‖v‖²: QSGD
//     ω = min(B/s², √B/s); random-k ω = d/k − 1.
// Float rounding of the sums adds a relative error of about M·2^-24 per element on top.
//
// allreduce_allgather — seed 001's Algorithm 1. Every rank encodes its vector once (with
//   EncodeContext{seed, rank, iteration} exactly, so codec.encode() reproduces the message),
//   messages travel around the ring (rank r sends to r+1, receives from r−1, forwarding the same
//   bytes: M−1 messages of one full encoding per rank), and every rank decodes all M messages in
//   rank order 0..M−1 into zero, then divides by M for kAverage. Result R = (1/M)·Σ_m Q_m(x_m).
//     lossless:  R equals the exact mean up to the float rounding of the rank-order sum.
//     unbiased:  E R = S/M,  E‖R − S/M‖² = (1/M²)·Σ_m E‖Q(x_m) − x_m‖² ≤ (ω/M²)·Σ_m ‖x_m‖²
//                (the ranks' random numbers are independent: the key includes the rank).
//     factor a:  ‖R − S/M‖ ≤ (a/M)·Σ_m ‖x_m‖.
//   For kSum multiply the errors by M (the sum's bounds are M times the mean's).
//
// allreduce_ring — reduce-scatter then all-gather over M chunks (balanced_chunk). In the
//   reduce-scatter each hop decodes the incoming partial sum, adds its own chunk and re-encodes
//   (every hop draws from its own key: the seed is derived from (seed, step) and the rank enters
//   as usual); the rank that completes chunk c (its owner, rank c−1 mod M) divides it by M for
//   kAverage, encodes it once more (through its error feedback, if given) and that message is
//   forwarded unchanged around the ring, so all ranks decode the same bytes. Per rank: 2(M−1)
//   messages of about d/M elements each. Per chunk, with S_h the sum of the first h contributions
//   in ring order (h = 1..M, the chunk's owner last), the result R is M nested encodings and
//     factor a:  ‖R − S_M‖ ≤ Σ_{h=1..M} a·(1+a)^{M−h}·‖S_h‖
//                (the error after hop h obeys e_h ≤ a‖S_h‖ + (1+a)·e_{h−1}, since hop h encodes
//                S_h + error so far);
//     unbiased:  E R = S_M,  E‖R − S_M‖² ≤ Σ_{h=1..M} ω·(1+ω)^{M−h}·‖S_h‖²
//                (cross terms vanish because each encoding is unbiased given its input);
//     kAverage:  the same bounds divided by M (respectively M²) for ‖R − S_M/M‖.
//   Unlike the all-gather, the error grows with M: for similar x_m, ‖S_h‖ ≈ h‖x‖ and the relative
//   error of the ring is about a·M/2 where the all-gather's stays at most a. With a lossless codec
//   the ring is exact up to float rounding in ring order (the last bit can differ from the
//   all-gather's rank-order sum, but never between ranks).
//
// allreduce_shared_randk — for a randk codec with shared_seed (codec/randk.hpp): every rank keeps
//   the same k indices, drawn from RngKey::make(shared_seed, 0, iteration, kSharedIndex) by
//   RandKCodec::indices, so the k kept values can be summed directly: they go through
//   allreduce_ring with the identity codec and kSum (exact up to float rounding, 2(M−1) messages
//   of about k/M values per rank, no index is ever sent), then every rank writes
//   R_i = (d/k)·Σ_m x_m,i (/M for kAverage) at the kept indices and 0 elsewhere. Each index is
//   kept with probability k/d, so (one projection of the mean, ω = d/k − 1, exactly)
//     E R = S/M,  E‖R − S/M‖² = (d/k − 1)·‖S/M‖²,
//   deterministic given (shared_seed, iteration), identical on all ranks. No error feedback: the
//   scaled projection is unbiased by itself (options.error_feedback must be null).
//
// M = 1: every algorithm still compresses once (R = Q(x)), so a one-rank run measures the same
// compression error as any other world size.
//
// Error feedback (AllreduceResidual below, one per rank, kept across iterations by the caller):
// the collective encodes through it with the collective's codec (ErrorFeedback::encode_into(codec,
// ...)). All-gather encodes e + x and keeps the rest in e (the bounds above then hold for e + x);
// its dimension is d. Ring uses it on the owner's final chunk only, so its dimension is that
// chunk's length, balanced_chunk(d, M, ring_owned_chunk(rank, M)).size; the hops in between have
// no memory. The residual is built for (algorithm, d, rank, M) and takes its length from them, so
// no caller computes it; a call with another algorithm, length or world is an InvalidArgument
// that names both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/result.hpp"
#include "thinwire/comm/transport.hpp"

namespace thinwire::collective {

enum class AllreduceAlgorithm : std::uint8_t { kAllgather, kRing, kSharedRandk };

// "allgather", "ring" or "shared_randk"; throws InvalidArgument listing them.
[[nodiscard]] AllreduceAlgorithm parse_allreduce_algorithm(std::string_view name);
[[nodiscard]] std::string_view allreduce_algorithm_name(AllreduceAlgorithm algorithm) noexcept;

class AllreduceResidual;

struct AllreduceOptions {
  AllreduceAlgorithm algorithm = AllreduceAlgorithm::kAllgather;  // read by allreduce() only
  Reduction reduction = Reduction::kAverage;
  std::uint64_t seed = 0;       // EncodeContext::seed
  std::uint64_t iteration = 0;  // EncodeContext::iteration
  // This rank's residual memory, or nullptr for none. Not owned; built for this call's algorithm,
  // length and world (AllreduceResidual).
  AllreduceResidual* error_feedback = nullptr;
  int tag = -1;  // transport tag; -1 = the algorithm's default (kTagAllgather, kTagRing, ...)
};

// In place: on return data holds R (above) on every rank. Collective: every rank calls it with
// the same d and codec. Throws InvalidArgument for non-finite input (from the codec), and
// whatever the transport throws.
Result allreduce(comm::Transport& transport, std::span<float> data, const codec::Codec& codec,
                 const AllreduceOptions& options = {});
Result allreduce_allgather(comm::Transport& transport, std::span<float> data,
                           const codec::Codec& codec, const AllreduceOptions& options = {});
Result allreduce_ring(comm::Transport& transport, std::span<float> data, const codec::Codec& codec,
                      const AllreduceOptions& options = {});
// `codec` must be a RandKCodec with a shared seed (InvalidArgument otherwise).
Result allreduce_shared_randk(comm::Transport& transport, std::span<float> data,
                              const codec::Codec& codec, const AllreduceOptions& options = {});

// Chunk `index` of a balanced split of d elements into `parts` (sizes differ by at most one, the
// first d mod parts chunks are the longer ones; chunks are empty when d < parts).
struct Chunk {
  std::size_t begin = 0;
  std::size_t size = 0;
};
[[nodiscard]] Chunk balanced_chunk(std::size_t d, int parts, int index);
// The chunk the ring's reduce-scatter completes on `rank`: (rank + 1) mod size.
[[nodiscard]] int ring_owned_chunk(int rank, int size) noexcept;

// The residual memory of error feedback for all-reduces of d-element vectors by `algorithm` on
// rank `rank` of `size`, around `codec` (shared: codecs are immutable). Its dimension() is what the
// algorithm keeps (see the overview: d, or the owned chunk's length for the ring), derived here, so
// it cannot be given the wrong length. kSharedRandk takes no error feedback (InvalidArgument), as
// do size < 1 and a rank outside [0, size). save()/load() are ErrorFeedback's.
class AllreduceResidual final : public codec::ErrorFeedback {
 public:
  AllreduceResidual(std::shared_ptr<const codec::Codec> codec, AllreduceAlgorithm algorithm,
                    std::size_t d, int rank, int size);

  [[nodiscard]] AllreduceAlgorithm algorithm() const noexcept { return algorithm_; }
  [[nodiscard]] std::size_t length() const noexcept { return length_; }  // d of the all-reduce
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  // Throws InvalidArgument, naming what it was built for and what it was given, unless the
  // all-reduce `algorithm` of `d` elements on rank `rank` of `size` is the one it was built for.
  void check(AllreduceAlgorithm algorithm, std::size_t d, int rank, int size) const;

 private:
  AllreduceAlgorithm algorithm_;
  std::size_t length_;
  int rank_;
  int size_;
};

// The EncodeContext seeds of allreduce_ring's encodings, derived from AllreduceOptions::seed:
// reduce-scatter hop `step` (step 0 encodes the rank's own chunk, step s > 0 its partial sum after
// s hops) and the owner's final encoding. Public so that another implementation of the same ring
// (the Python DDP hook over torch.distributed) draws the same random numbers and so gives the
// same result bit for bit.
[[nodiscard]] std::uint64_t ring_hop_seed(std::uint64_t seed, int step) noexcept;
[[nodiscard]] std::uint64_t ring_final_seed(std::uint64_t seed) noexcept;

}  // namespace thinwire::collective
