// randk: keep k indices drawn uniformly without replacement and scale by d/k, so that
// E decode(encode(v)) = v (each index is kept with probability k/d). Variance:
// E||Q(v) - v||^2 = (d/k - 1)·||v||^2.
//
// Spec: randk:k=K[,shared_seed=N]
//   K >= 1 is a count, 0 < K < 1 a fraction of d (as for topk: k = max(1, round(K·d)) <= d).
//   Without shared_seed the indices come from the encode context's kSparsify stream (differ per
//   rank and iteration) and are sent as Elias-delta gaps.
//   With shared_seed=N every rank draws the same indices from RngKey::make(N, 0, iteration,
//   kSharedIndex); the message carries NO indices, only the k values, and the decoder
//   regenerates the indices from the seed and the iteration stored in the params. Messages of
//   one iteration from all ranks therefore address the same elements and their payloads can be
//   summed element-wise (a plain all-reduce of k floats).
//
// Values travel unscaled (raw v_i, fp32) and the decoder multiplies by d/k: in shared-seed mode
// the payload is exactly k little-endian float32, so summing payloads sums the raw values. The
// encoder throws InvalidArgument if a kept value times d/k exceeds the fp32 range (its unbiased
// estimate could not be represented); the decoder rejects such a payload.
//
// Params: f64 K, u8 shared (0/1), and when shared: u64 seed, u64 iteration.
// Payload: [indices as Elias-delta gaps, unless shared] then k fp32 values, zero-padded to a byte.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

// Replaces out with k distinct indices drawn uniformly from [0, d), ascending; a pure function
// of (key, d, k). When k <= d/8, Floyd's algorithm (k draws) on a bitmap of d bits whose set
// bits are then listed in order, or, when d/k is very large, on an open-addressing set followed
// by a sort (the same draws and decisions, so the same indices); else one O(d) pass of selection
// sampling (Knuth's Algorithm S). k is capped at d; throws InvalidArgument if d >= 2^32.
void sample_without_replacement(RngKey key, std::size_t d, std::size_t k,
                                std::vector<std::uint32_t>& out);

class RandKCodec final : public Codec {
 public:
  // k as in the spec. `iteration` only matters for a codec rebuilt from a shared-seed message
  // (it names the message's index set); encoders use the context's iteration. Throws
  // InvalidArgument for an unacceptable k.
  explicit RandKCodec(double k, std::optional<std::uint64_t> shared_seed = std::nullopt,
                      std::uint64_t iteration = 0);

  // Bytes of the params section: k (f64) and the shared-seed flag; with a shared seed the seed
  // and the iteration (u64 each) follow.
  static constexpr std::size_t kParamsBytes = 8 + 1;
  static constexpr std::size_t kSharedSeedParamsBytes = 8 + 8;

  [[nodiscard]] std::size_t kept(std::size_t d) const noexcept;
  // k; at_level keeps the shared seed.
  [[nodiscard]] std::optional<Level> level() const noexcept override { return Level{.value = k_}; }
  [[nodiscard]] std::unique_ptr<Codec> at_level(const Level& level) const override {
    return std::make_unique<RandKCodec>(level.value, shared_seed_, iteration_);
  }
  [[nodiscard]] double k() const noexcept { return k_; }
  [[nodiscard]] const std::optional<std::uint64_t>& shared_seed() const noexcept {
    return shared_seed_;
  }
  // The factor d/k that the decoder applies to the raw values (1 for d = 0).
  [[nodiscard]] double scale(std::size_t d) const noexcept;
  // The indices an encode of a d-element vector under ctx keeps (ascending).
  void indices(std::size_t d, const EncodeContext& ctx, std::vector<std::uint32_t>& out) const;

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<RandKCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kRandK; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = true, .deterministic = false};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  // Writes the stored iteration (encode_into writes the context's instead).
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> from_spec(Spec& spec);
  static std::unique_ptr<Codec> from_params(ParamReader& params);

 private:
  void write_params_for(ParamWriter& w, std::uint64_t iteration) const;
  [[nodiscard]] RngKey shared_key(std::uint64_t iteration) const noexcept;
  // The key an encode under ctx draws its indices from.
  [[nodiscard]] RngKey index_key(const EncodeContext& ctx) const noexcept;

  double k_;
  std::optional<std::uint64_t> shared_seed_;
  std::uint64_t iteration_;
};

}  // namespace thinwire::codec
