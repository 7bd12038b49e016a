// fp16 / bf16: casts to IEEE 754 binary16 ("half") and to bfloat16, the 16-bit baselines that
// PyTorch users know. Payload: d little-endian 16-bit values; no params.
//
// Rounding is to nearest, ties to even, including into and out of the subnormal range.
// Finite inputs beyond the target's largest finite value saturate to it (±65504 for fp16,
// ±0x1.fep127 for bf16) instead of becoming infinite: a codec accepts every finite vector and
// never hands a receiver an infinity it did not send (like the "satfinite" conversions of GPU
// fp8/fp16 training). Decoders reject the infinity and NaN encodings as corrupt.
//
// Accuracy: for |x| in the normal range, relative error <= 2^-11 (fp16) and <= 2^-8 (bf16);
// below it the absolute error is <= 2^-25 (fp16) and <= 2^-134 (bf16).
#pragma once

#include <cstdint>
#include <span>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

inline constexpr std::uint16_t kHalfMaxFinite = 0x7BFF;      // 65504
inline constexpr std::uint16_t kBfloat16MaxFinite = 0x7F7F;  // 0x1.fep127

// Scalar conversions. For the float -> 16-bit direction, ±inf map to ±inf and NaN to a quiet
// NaN (the codecs never pass them); finite values round to nearest even and saturate.
[[nodiscard]] std::uint16_t float_to_half(float x) noexcept;
[[nodiscard]] float half_to_float(std::uint16_t h) noexcept;
[[nodiscard]] std::uint16_t float_to_bfloat16(float x) noexcept;
[[nodiscard]] float bfloat16_to_float(std::uint16_t h) noexcept;

enum class CastFormat : std::uint8_t { kFp16, kBf16 };

// Span kernels (out.size() == in.size()); plain loops for later SIMD versions.
void cast_to_16(CastFormat format, std::span<const float> in, std::span<std::uint16_t> out);
// Returns false if any value is an infinity or NaN encoding (outputs are then unspecified).
[[nodiscard]] bool cast_from_16(CastFormat format, std::span<const std::uint16_t> in,
                                std::span<float> out, DecodeMode mode);

class FloatCastCodec final : public Codec {
 public:
  explicit FloatCastCodec(CastFormat format) noexcept : format_(format) {}

  [[nodiscard]] CastFormat format() const noexcept { return format_; }
  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<FloatCastCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override {
    return format_ == CastFormat::kFp16 ? CodecId::kFp16 : CodecId::kBf16;
  }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = false, .deterministic = true};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  [[nodiscard]] std::uint64_t min_payload_bytes(std::uint64_t d) const override {
    return d > UINT64_MAX / 2 ? UINT64_MAX : 2 * d;  // saturating: d comes from a header
  }
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> fp16_from_spec(Spec& spec);
  static std::unique_ptr<Codec> fp16_from_params(ParamReader& params);
  static std::unique_ptr<Codec> bf16_from_spec(Spec& spec);
  static std::unique_ptr<Codec> bf16_from_params(ParamReader& params);

 private:
  CastFormat format_;
};

}  // namespace thinwire::codec
