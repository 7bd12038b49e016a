#include "thinwire/codec/codec.hpp"

#include <cmath>
#include <string>

#include "parallel.hpp"
#include "qsgd_kernels.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {
namespace {

std::unique_ptr<Codec> codec_from_view(const MessageView& view) {
  const CodecEntry* entry = find_codec(view.header.codec);
  if (entry == nullptr) {
    throw CorruptMessage("message names unknown codec id " +
                         std::to_string(static_cast<int>(view.header.codec)));
  }
  ParamReader params(view.params);
  std::unique_ptr<Codec> codec = entry->from_params(params);
  params.finish();
  return codec;
}

void decode_view(const MessageView& view, std::span<float> out, DecodeMode mode, unsigned threads) {
  if (out.size() != view.header.elements) {
    throw InvalidArgument("decode: message holds " + std::to_string(view.header.elements) +
                          " elements but the output has " + std::to_string(out.size()));
  }
  const std::unique_ptr<Codec> codec = codec_from_view(view);
  if (threads == 1) {
    codec->decode_payload(view.payload, out, mode);
  } else {
    codec->decode_payload_parallel(view.payload, out, mode, threads);
  }
}

}  // namespace

std::unique_ptr<Codec> Codec::at_level(const Level& /*level*/) const {
  throw InvalidArgument("'" + spec() +
                        "' has no level to tune (use topk, randk, wangni, qsgd or terngrad)");
}

std::vector<std::byte> Codec::encode(std::span<const float> v, const EncodeContext& ctx) const {
  std::vector<std::byte> out(max_encoded_bytes(v.size()));
  out.resize(encode_into(v, ctx, out));
  return out;
}

std::unique_ptr<Codec> codec_of(std::span<const std::byte> message) {
  return codec_from_view(parse_message(message));
}

void decode(std::span<const std::byte> message, std::span<float> out, DecodeMode mode) {
  decode_view(parse_message(message), out, mode, 1);
}

void decode(std::span<const std::byte> message, std::span<float> out, DecodeMode mode,
            unsigned threads) {
  parallel::require_thread_count("decode", threads);
  decode_view(parse_message(message), out, mode, threads);
}

void decode_unverified(std::span<const std::byte> message, std::span<float> out, DecodeMode mode) {
  decode_view(parse_message(message, /*verify_checksum=*/false), out, mode, 1);
}

void decode_unverified(std::span<const std::byte> message, std::span<float> out, DecodeMode mode,
                       unsigned threads) {
  parallel::require_thread_count("decode", threads);
  decode_view(parse_message(message, /*verify_checksum=*/false), out, mode, threads);
}

MessageInfo inspect(std::span<const std::byte> message) {
  const MessageView view = parse_message(message);
  const std::unique_ptr<Codec> codec = codec_from_view(view);
  MessageInfo info;
  info.codec = std::string(find_codec(view.header.codec)->name);
  info.spec = codec->spec();
  info.elements = view.header.elements;
  info.bytes = message.size();
  info.payload_bytes = view.header.payload_bytes;
  info.error_feedback = (view.header.flags & kFlagErrorFeedback) != 0;
  return info;
}

void require_finite(std::span<const float> v, std::string_view codec_name) {
  // Vectorized scan first; the per-element loop below only runs to name the bad element.
  if (kernels::all_finite(v.data(), v.size())) return;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw InvalidArgument(std::string(codec_name) + ": input element " + std::to_string(i) +
                            " is not finite (" + std::to_string(v[i]) + ")");
    }
  }
}

}  // namespace thinwire::codec
