#include "thinwire/codec/identity.hpp"

#include <bit>
#include <cstring>

namespace thinwire::codec {

std::size_t IdentityCodec::max_encoded_bytes(std::size_t d) const { return kHeaderBytes + 4 * d; }

std::size_t IdentityCodec::encode_into(std::span<const float> v, const EncodeContext& /*ctx*/,
                                       std::span<std::byte> out) const {
  require_finite(v, "identity");
  MessageWriter w(out, id(), v.size());
  write_params(w.params());
  std::span<std::byte> payload = w.payload_area();
  static_assert(std::endian::native == std::endian::little, "wire format is little-endian");
  // memcpy with a null pointer is undefined even for zero bytes (an empty vector has one).
  if (!v.empty()) std::memcpy(payload.data(), v.data(), v.size_bytes());
  return w.finish(v.size_bytes());
}

void IdentityCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                                   DecodeMode mode) const {
  if (payload.size() != out.size_bytes()) {
    throw CorruptMessage("identity: payload of " + std::to_string(payload.size()) + " bytes for " +
                         std::to_string(out.size()) + " elements");
  }
  if (mode == DecodeMode::kOverwrite) {
    if (!out.empty()) std::memcpy(out.data(), payload.data(), payload.size());
    return;
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    float x;
    std::memcpy(&x, payload.data() + 4 * i, 4);
    out[i] += x;
  }
}

void IdentityCodec::write_params(ParamWriter& /*w*/) const {}

std::unique_ptr<Codec> IdentityCodec::from_spec(Spec& /*spec*/) {
  return std::make_unique<IdentityCodec>();
}

std::unique_ptr<Codec> IdentityCodec::from_params(ParamReader& /*params*/) {
  return std::make_unique<IdentityCodec>();
}

}  // namespace thinwire::codec
