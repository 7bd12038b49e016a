#include "detail.hpp"

#include <algorithm>

#include <string>

#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective::detail {

comm::Bytes encode(const codec::Codec& codec, std::span<const float> v,
                   const codec::EncodeContext& ctx, codec::ErrorFeedback* error_feedback) {
  if (error_feedback == nullptr) return codec.encode(v, ctx);
  if (error_feedback->dimension() != v.size()) {
    throw InvalidArgument("collective: error feedback of dimension " +
                          std::to_string(error_feedback->dimension()) + " for a vector of " +
                          std::to_string(v.size()) + " elements (rank " + std::to_string(ctx.rank) +
                          ")");
  }
  comm::Bytes message(codec.max_encoded_bytes(v.size()));
  message.resize(error_feedback->encode_into(codec, v, ctx, message));
  return message;
}

void decode_sum(std::span<const comm::Bytes> messages, std::span<float> out) {
  std::fill(out.begin(), out.end(), 0.0f);
  for (const comm::Bytes& message : messages) {
    codec::decode(message, out, codec::DecodeMode::kAccumulate);
  }
}

void divide(std::span<float> out, float divisor) noexcept {
  for (float& x : out) x /= divisor;
}

}  // namespace thinwire::collective::detail
