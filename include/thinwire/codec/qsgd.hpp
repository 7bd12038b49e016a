// qsgd: stochastic quantization with s levels (Alistarh et al., "QSGD", NeurIPS 2017; SPEC §2).
//
// v is split into buckets of B elements (bucket = 0 means one bucket of all d elements). For a
// bucket u with scale ‖u‖ (2-norm, or max-norm as in the paper's experiments), r_i = |u_i|/‖u‖,
// ℓ_i = ⌊s·r_i⌋, and the level is ℓ_i + 1 with probability s·r_i − ℓ_i, else ℓ_i, drawn from the
// counter-based RNG with counter = element index (so any slice is reproducible on its own; the
// rounding stream of core/rounding.hpp, two AES rounds per four elements).
// Decoding gives ‖u‖·sgn(u_i)·level_i/s with sgn(0) = +1; E Q(u) = u.
//
// Payload: per bucket a 32-bit fp32 scale (a zero bucket sends only its scale), then
//   packed: every element as one field of 1 + ⌈log2(s+1)⌉ bits, level in the low bits and the
//           sign (1 = negative) on top; the sign of a zero level is 0.
//   elias:  for each non-zero level in index order: the gap to the previous non-zero index (the
//           first gap counts from one before the bucket start), the sign bit, the level in Elias
//           gamma; then a terminating gap that lands exactly on the bucket end. Gaps use Elias
//           gamma, or Elias delta in buckets so sparse that gaps are expected to be long
//           (b >= 256·s²: with the 2-norm E #non-zeros <= s·‖r‖₁ <= s·√b, so the mean gap is
//           above 16, where delta's codes become the shorter ones).
// The payload is the bit stream padded with zero bits to a whole byte.
//
// The free functions below are the reusable kernels (top-k composes them to quantize its kept
// values); QsgdCodec is the codec registered as "qsgd".
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

inline constexpr std::uint32_t kQsgdMaxLevels = std::uint32_t{1} << 20;

struct QsgdParams {
  std::uint32_t levels = 16;   // s, in [1, 2^20]
  std::uint32_t bucket = 512;  // B; 0 = the whole vector is one bucket
  enum class Norm : std::uint8_t { kL2, kMax } norm = Norm::kL2;
  enum class Coding : std::uint8_t { kPacked, kElias } coding = Coding::kPacked;

  friend bool operator==(const QsgdParams&, const QsgdParams&) = default;
};

// Reads s, bucket, norm and coding from a spec (defaults as in QsgdParams); throws
// InvalidArgument with the parameter named. Does not call spec.finish().
[[nodiscard]] QsgdParams parse_qsgd_params(Spec& spec);
// Canonical parameter list, e.g. "s=16,bucket=512,norm=l2,coding=packed".
[[nodiscard]] std::string qsgd_params_spec(const QsgdParams& p);
// Wire form: u32 levels, u32 bucket, u8 norm, u8 coding (10 bytes).
inline constexpr std::size_t kQsgdParamsBytes = 10;
void write_qsgd_params(ParamWriter& w, const QsgdParams& p);
// Throws CorruptMessage on out-of-range values.
[[nodiscard]] QsgdParams read_qsgd_params(ParamReader& r);

// Upper bound on the bits qsgd_encode_payload writes for d elements (no padding), and the same
// rounded up to bytes. True for every finite input; see qsgd.cpp for the derivation.
[[nodiscard]] std::uint64_t qsgd_payload_max_bits(std::size_t d, const QsgdParams& p);
[[nodiscard]] std::size_t qsgd_payload_max_bytes(std::size_t d, const QsgdParams& p);

// Appends the payload bits for v to w (does not finish w). Random numbers:
// RoundingKey(key).bits24(i) for element i of v; s·r_i in fp32 unless s/scale overflows it (see
// qsgd.cpp). v must be finite (with norm=max the fast path checks it per bucket); throws
// InvalidArgument if a bucket's 2-norm exceeds the fp32 range (its scale could not be sent). The
// SIMD kernels give the bits of the scalar reference on every target. `threads` > 1
// encodes large vectors (at least 2^15 elements per thread, at least one bucket each) on up to that
// many threads, cut at bucket boundaries; the bits are the same for any thread count.
void qsgd_encode_payload(std::span<const float> v, const QsgdParams& p, RngKey key, BitWriter& w,
                         unsigned threads = 1);

// Reads exactly the bits of an out.size()-element payload from r and writes (or adds) the
// decoded values. Throws CorruptMessage for any inconsistent content (bad scale, level > s,
// gaps past a bucket end, a running-out stream); never touches memory outside out. Trailing
// padding is the caller's to check.
void qsgd_decode_payload(BitReader& r, const QsgdParams& p, std::span<float> out, DecodeMode mode);

// Exact E‖Q(v) − v‖² = Σ_buckets scale² · Σ_i (r_i − ℓ_i/s)((ℓ_i+1)/s − r_i) (SPEC §2), computed
// with the same fp32 scales as the encoder (r_i in double, summed in a fixed order). Used by the
// tuner.
[[nodiscard]] double qsgd_variance(std::span<const float> v, const QsgdParams& p);

// Wire-format facts the encoder and the size model (message_size.hpp) share: the bits of a level
// (packed fields are a sign bit and this many bits), and whether an Elias bucket of b elements
// codes its gaps in Elias delta (b >= 256·s², where non-zeros are sparse) rather than gamma.
[[nodiscard]] constexpr unsigned qsgd_level_bits(std::uint32_t s) noexcept {
  return static_cast<unsigned>(std::bit_width(s));
}
[[nodiscard]] constexpr bool qsgd_delta_gaps(std::uint64_t b, std::uint32_t s) noexcept {
  return b >= 256 * std::uint64_t{s} * s;
}
// out[i] = qsgd_variance(v, p at s = levels[i]) for every i (the same doubles), the scales
// computed once: one pass over v for several levels of one bucket setting.
void qsgd_variances(std::span<const float> v, const QsgdParams& p,
                    std::span<const std::uint32_t> levels, std::span<double> out);

// Spec: qsgd[:s=S,bucket=B,norm=l2|max,coding=packed|elias,threads=T]. threads (default 1, at
// most 64) is a local execution setting, not a parameter of the message: it is not sent on the
// wire (a codec rebuilt from a message has threads = 1) and spec() names it only when it is not 1.
class QsgdCodec final : public Codec {
 public:
  explicit QsgdCodec(const QsgdParams& params, unsigned threads = 1) noexcept
      : params_(params), threads_(threads) {}

  [[nodiscard]] const QsgdParams& params() const noexcept { return params_; }
  // s and the bucket; at_level keeps the norm, the coding and the threads.
  [[nodiscard]] std::optional<Level> level() const noexcept override {
    return Level{.value = static_cast<double>(params_.levels), .second = params_.bucket};
  }
  [[nodiscard]] std::unique_ptr<Codec> at_level(const Level& level) const override;
  [[nodiscard]] unsigned threads() const noexcept { return threads_; }

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<QsgdCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kQsgd; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = true, .deterministic = false};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  // coding=packed: bucket ranges on up to `threads` threads (codec::decode); elias: one thread.
  void decode_payload_parallel(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode, unsigned threads) const override;
  [[nodiscard]] unsigned max_decode_threads(std::size_t d, unsigned threads) const override;
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> from_spec(Spec& spec);
  static std::unique_ptr<Codec> from_params(ParamReader& params);

 private:
  QsgdParams params_;
  unsigned threads_;
};

// Reads the optional `threads` key of a spec (a local execution setting, see QsgdCodec): 1 if
// absent; throws InvalidArgument naming the codec unless it is in [1, 64].
[[nodiscard]] unsigned parse_threads_param(Spec& spec);
// ",threads=T" for T != 1, else "" (the suffix that spec() strings carry).
[[nodiscard]] std::string threads_spec_suffix(unsigned threads);

}  // namespace thinwire::codec
