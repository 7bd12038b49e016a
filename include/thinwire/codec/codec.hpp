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
#include <optional>
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

// A codec's compression level: what the dynamic tuner chooses (SPEC §3). `value` is k for top-k
// and random-k (a count, or a fraction of d below 1), the density for Wangni, s for QSGD and the
// bucket for TernGrad; `second` is QSGD's bucket (0 = one bucket) or the s of top-k's QSGD
// values (0 for fp32 values).
struct Level {
  double value = 0.0;
  std::uint32_t second = 0;
  friend bool operator==(const Level&, const Level&) = default;
};

class Codec {
 public:
  virtual ~Codec() = default;

  // The level of a codec that has one (topk, randk, wangni, qsgd, terngrad); nullopt otherwise.
  [[nodiscard]] virtual std::optional<Level> level() const noexcept { return std::nullopt; }
  // The same codec at another level, every other parameter kept (an object, not an edited spec
  // string). InvalidArgument for a codec without a level or a level it does not accept.
  [[nodiscard]] virtual std::unique_ptr<Codec> at_level(const Level& level) const;

  // An equal codec of its own. Codecs are immutable, so one shared_ptr<const Codec> can serve
  // every user; a copy is for an owner that must hold a unique one (no spec-string round trip).
  [[nodiscard]] virtual std::unique_ptr<Codec> clone() const = 0;
  [[nodiscard]] virtual CodecId id() const noexcept = 0;
  // Canonical spec string with every parameter spelled out; make_codec(spec()) gives an equal
  // codec.
  [[nodiscard]] virtual std::string spec() const = 0;
  [[nodiscard]] virtual CodecTraits traits() const noexcept = 0;
  // Upper bound on the size of any message for a d-element vector, header included; known before
  // encoding so that buffers can be allocated once.
  [[nodiscard]] virtual std::size_t max_encoded_bytes(std::size_t d) const = 0;
  // Lower bound on the payload of any valid message of d elements (0 when a codec cannot bound
  // it, e.g. a sparse one): checked before a decoder allocates d floats for a claimed count.
  [[nodiscard]] virtual std::uint64_t min_payload_bytes(std::uint64_t /*d*/) const { return 0; }

  // Encodes v into out (at least max_encoded_bytes(v.size()) bytes); returns the message size.
  // Throws InvalidArgument for non-finite input.
  virtual std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                                  std::span<std::byte> out) const = 0;

  // Decodes a payload produced by this codec (as rebuilt from its header) into out, whose size is
  // the message's element count. Called by codec::decode(); throws CorruptMessage on bad input.
  virtual void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                              DecodeMode mode) const = 0;

  // The same values, bit for bit, and the same errors, decoded on up to `threads` (>= 1) threads
  // where the payload can be cut into independent parts (see decode() below for which codecs
  // can); this default decodes on the calling thread. A separate name rather than an overload of
  // decode_payload, so that codecs overriding one do not hide the other.
  virtual void decode_payload_parallel(std::span<const std::byte> payload, std::span<float> out,
                                       DecodeMode mode, unsigned /*threads*/) const {
    decode_payload(payload, out, mode);
  }
  // The most threads decode_payload_parallel(…, threads) uses for a d-element message: 1 unless
  // this codec splits its payloads (reported by `thinwire bench`).
  [[nodiscard]] virtual unsigned max_decode_threads(std::size_t /*d*/, unsigned /*threads*/) const {
    return 1;
  }

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

// The same on up to `threads` threads (in [1, 64], else InvalidArgument; 1 is the decode above),
// for large vectors: the output is the same bit for bit and a bad message throws the same
// CorruptMessage (the structure of the payload is checked before any part is decoded, a damaged
// field is reported as the one-thread decoder reports it). threads is a local setting like the
// codec spec's `threads` key: it is never on the wire. Threads come from the process-wide pool
// that multi-threaded encode uses; a caller that finds it busy decodes on its own thread.
// Codecs that split a payload, at bucket boundaries, into parts of at least 2^15 elements:
//   qsgd with coding=packed (not elias: its buckets have no fixed size), terngrad, sign.
// A single bucket (bucket=0, or bucket >= d) is not split, except by sign, whose one-bit fields
// after one shared scale are cut anywhere. The other codecs (identity, fp16/bf16, the sparse
// codecs) decode on the calling thread.
void decode(std::span<const std::byte> message, std::span<float> out, DecodeMode mode,
            unsigned threads);

// Same as decode() but skips the checksum; for fuzzing the payload decoders only.
void decode_unverified(std::span<const std::byte> message, std::span<float> out, DecodeMode mode);
void decode_unverified(std::span<const std::byte> message, std::span<float> out, DecodeMode mode,
                       unsigned threads);

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
