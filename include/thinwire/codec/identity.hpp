// identity: lossless float32, the uncompressed baseline. Payload: d little-endian float32.
#pragma once

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

class IdentityCodec final : public Codec {
 public:
  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<IdentityCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kIdentity; }
  [[nodiscard]] std::string spec() const override { return "identity"; }
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = true, .unbiased = true, .deterministic = true};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  [[nodiscard]] std::uint64_t min_payload_bytes(std::uint64_t d) const override {
    return d > UINT64_MAX / 4 ? UINT64_MAX : 4 * d;  // saturating: d comes from a header
  }
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> from_spec(Spec& spec);
  static std::unique_ptr<Codec> from_params(ParamReader& params);
};

}  // namespace thinwire::codec
