// Codec: turns a float vector into a self-describing message (see message.hpp) and back.
//
// Codecs are immutable and stateless: one object may encode from many threads at once.
// Randomness comes only from the EncodeContext (counter-based, see core/rng.hpp), so the same
// (seed, rank, iteration) always gives the same bytes. Error feedback is a separate per-worker
// wrapper (error_feedback.hpp).
//
// Decoding needs no codec object: thinwire::codec::decode() rebuilds the codec from the message
// header, so a receiver never disagrees silently with a sender that changed levels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "thinwire/codec/message.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {

enum class DecodeMode {
  kOverwrite,   // out = decoded
  kAccumulate,  // out += decoded
};

// Where the random numbers of one encode come from.
struct EncodeContext {
  std::uint64_t seed = 0;
  std::uint32_t rank = 0;
  std::uint64_t iteration = 0;

  [[nodiscard]] RngKey key(RngPurpose purpose) const noexcept {
    return RngKey::make(seed, rank, iteration, purpose);
  }
};

struct CodecTraits {
  bool lossless = false;       // decode(encode(v)) == v bit for bit
  bool unbiased = false;       // E decode(encode(v)) == v
  bool deterministic = false;  // output does not depend on the context's random numbers
};

class Codec {
 public:
  virtual ~Codec() = default;

  [[nodiscard]] virtual CodecId id() const noexcept = 0;
  // Canonical spec string with every parameter spelled out; make_codec(spec()) gives an equal
  // codec.
  [[nodiscard]] virtual std::string spec() const = 0;
  [[nodiscard]] virtual CodecTraits traits() const noexcept = 0;
  // Upper bound on the size of any message for a d-element vector, header included; known before
  // encoding so that buffers can be allocated once.
  [[nodiscard]] virtual std::size_t max_encoded_bytes(std::size_t d) const = 0;

  // Encodes v into out (at least max_encoded_bytes(v.size()) bytes); returns the message size.
  // Throws InvalidArgument for non-finite input.
  virtual std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                                  std::span<std::byte> out) const = 0;

  // Decodes a payload produced by this codec (as rebuilt from its header) into out, whose size is
  // the message's element count. Called by codec::decode(); throws CorruptMessage on bad input.
  virtual void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                              DecodeMode mode) const = 0;

  // Serializes the parameters into a message's params section (read back by the registry).
  virtual void write_params(ParamWriter& w) const = 0;

  // Convenience: encode into a new vector of exactly the message size.
  [[nodiscard]] std::vector<std::byte> encode(std::span<const float> v,
                                              const EncodeContext& ctx = {}) const;
};

// Reads the message header and params and returns the codec that produced it.
[[nodiscard]] std::unique_ptr<Codec> codec_of(std::span<const std::byte> message);

// Decodes any message into out (size must equal the message's element count, else
// InvalidArgument). Throws CorruptMessage for any byte string that is not a valid message; never
// reads or writes out of bounds.
void decode(std::span<const std::byte> message, std::span<float> out, DecodeMode mode);

// Same as decode() but skips the checksum; for fuzzing the payload decoders only.
void decode_unverified(std::span<const std::byte> message, std::span<float> out, DecodeMode mode);

// Summary of a message, as printed by `thinwire inspect`.
struct MessageInfo {
  std::string codec;  // codec name, e.g. "qsgd"
  std::string spec;   // canonical spec of the codec that produced it
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;  // whole message, header included
  std::uint64_t payload_bytes = 0;
  bool error_feedback = false;
  [[nodiscard]] double bits_per_element() const noexcept {
    return elements == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(elements);
  }
};

[[nodiscard]] MessageInfo inspect(std::span<const std::byte> message);

// Throws InvalidArgument naming the first non-finite element (codecs call this on input).
void require_finite(std::span<const float> v, std::string_view codec_name);

}  // namespace thinwire::codec
