// terngrad: ternary stochastic quantization (Wen et al., "TernGrad", NeurIPS 2017; SPEC §2).
//
// Per bucket u of B elements (bucket = 0: one bucket of all d): s_t = max_i |u_i|, and
// Q_i = s_t·sgn(u_i)·b_i with b_i ~ Bernoulli(|u_i|/s_t), drawn from the counter-based RNG with
// counter = element index; E Q(u) = u and E‖Q(u) − u‖² = Σ_i (s_t·|u_i| − u_i²).
//
// Optional clipping (clip = c > 0, the paper uses c = 2.5): each u_i is first clipped to
// [−c·σ, c·σ], σ = sqrt(mean_i u_i²) the bucket's standard deviation about zero (equal to the
// paper's σ for the zero-mean gradients it assumes, and it never collapses on a constant bucket).
// Clipping lowers s_t and the variance but makes the codec biased; clip = 0 turns it off.
//
// Payload: per bucket the fp32 scale s_t (a zero bucket sends only its scale), then 2 bits per
// element: 0 = zero, 1 = +s_t, 2 = −s_t (3 is invalid); zero-padded to a whole byte.
// Params: u32 bucket, f64 clip.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

struct TernGradParams {
  std::uint32_t bucket = 512;  // 0 = the whole vector is one bucket
  double clip = 0.0;           // c; 0 = no clipping

  friend bool operator==(const TernGradParams&, const TernGradParams&) = default;
};

// Kernels over spans (one bucket each).
// The bucket's scale after optional clipping: max_i min(|u_i|, c·σ).
[[nodiscard]] float terngrad_scale(std::span<const float> u, double clip);
// Appends 2 bits per element of u (first = index of u[0] in the vector, the RNG counter of
// RoundingKey(key).bits24). The scalar reference; the codec runs the vectorized kernels, which give
// the same bits.
void terngrad_encode_bucket(std::span<const float> u, std::size_t first, float scale, RngKey key,
                            BitWriter& w);
// The whole payload (per bucket: fp32 scale, then the 2-bit codes), and its decoder (throws
// CorruptMessage on a bad scale or code; trailing padding is the caller's to check).
// `threads` > 1: large vectors on up to that many threads, cut at bucket boundaries (same bits).
void terngrad_encode_payload(std::span<const float> v, const TernGradParams& p, RngKey key,
                             BitWriter& w, unsigned threads = 1);
void terngrad_decode_payload(BitReader& r, std::uint32_t bucket, std::span<float> out,
                             DecodeMode mode);
// Exact E‖Q(v) − v‖² (with clipping: the variance around the clipped vector).
[[nodiscard]] double terngrad_variance(std::span<const float> v, const TernGradParams& p);

class TernGradCodec final : public Codec {
 public:
  // Throws InvalidArgument unless clip is finite and >= 0. threads: a local execution setting,
  // not sent on the wire (as for QsgdCodec; spec key "threads").
  explicit TernGradCodec(const TernGradParams& params, unsigned threads = 1);

  [[nodiscard]] const TernGradParams& params() const noexcept { return params_; }
  // Bytes of the params section: the bucket (u32) and the clip factor (f64).
  static constexpr std::size_t kParamsBytes = 4 + 8;
  // The bucket; at_level keeps the clipping and the threads.
  [[nodiscard]] std::optional<Level> level() const noexcept override {
    return Level{.value = static_cast<double>(params_.bucket)};
  }
  [[nodiscard]] std::unique_ptr<Codec> at_level(const Level& level) const override;

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<TernGradCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kTernGrad; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = params_.clip == 0.0, .deterministic = false};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  // Bucket ranges on up to `threads` threads (codec::decode).
  void decode_payload_parallel(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode, unsigned threads) const override;
  [[nodiscard]] unsigned max_decode_threads(std::size_t d, unsigned threads) const override;
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> from_spec(Spec& spec);
  static std::unique_ptr<Codec> from_params(ParamReader& params);

 private:
  TernGradParams params_;
  unsigned threads_;
};

}  // namespace thinwire::codec
