#include "thinwire/codec/identity.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "qsgd_kernels.hpp"

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
  // One finiteness rule for encode and decode (as every other codec): a message holding an
  // infinity or NaN is refused before `out` is touched, in chunks read through memcpy because the
  // payload need not be aligned for floats.
  constexpr std::size_t kChunk = 1024;
  std::array<float, kChunk> chunk{};
  for (std::size_t first = 0; first < out.size(); first += kChunk) {
    const std::size_t n = std::min(kChunk, out.size() - first);
    std::memcpy(chunk.data(), payload.data() + 4 * first, 4 * n);
    if (kernels::all_finite(chunk.data(), n)) continue;
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(chunk[i])) {
        throw CorruptMessage("identity: payload element " + std::to_string(first + i) +
                             " is not finite (" + std::to_string(chunk[i]) + ")");
      }
    }
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
