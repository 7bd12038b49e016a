// The wire format shared by every codec (documented byte by byte in docs/wire_format.md).
//
//   offset  size  field
//        0     2  magic "TW"
//        2     1  format version (kFormatVersion)
//        3     1  codec id (CodecId)
//        4     1  flags (bit 0: sender used error feedback; other bits must be zero)
//        5     1  reserved, zero
//        6     2  params length P (little-endian)
//        8     8  element count d
//       16     8  payload length L
//       24     8  XXH3-64 checksum of bytes [0, 24), the params and the payload
//       32     P  codec parameters (codec-specific, little-endian)
//     32+P     L  payload (codec-specific)
//
// A message is exactly 32 + P + L bytes: truncated or extended messages are rejected before any
// codec looks at them, and the checksum rejects bit flips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "thinwire/core/checksum.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::codec {

// Stable codec identifiers; never renumber (they are on the wire).
enum class CodecId : std::uint8_t {
  kIdentity = 1,
  kFp16 = 2,
  kBf16 = 3,
  kQsgd = 4,
  kTernGrad = 5,
  kSign = 6,
  kTopK = 7,
  kRandK = 8,
  kWangni = 9,
  kThreshold = 10,
};

inline constexpr std::uint8_t kFormatVersion = 1;
inline constexpr std::size_t kHeaderBytes = 32;
inline constexpr std::uint8_t kFlagErrorFeedback = 0x01;

struct MessageHeader {
  std::uint8_t version = kFormatVersion;
  CodecId codec = CodecId::kIdentity;
  std::uint8_t flags = 0;
  std::uint16_t params_bytes = 0;
  std::uint64_t elements = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t checksum = 0;
};

// A validated message split into its parts (views into the caller's buffer).
struct MessageView {
  MessageHeader header;
  std::span<const std::byte> params;
  std::span<const std::byte> payload;
};

// Validates magic, version, reserved bits, lengths and (unless told not to) the checksum.
// Throws CorruptMessage naming the first problem found.
[[nodiscard]] MessageView parse_message(std::span<const std::byte> message,
                                        bool verify_checksum = true);

// Little-endian writer for the params section.
class ParamWriter {
 public:
  explicit ParamWriter(std::span<std::byte> out) noexcept : out_(out) {}
  void put_u8(std::uint8_t v) { put_le(v, 1); }
  void put_u16(std::uint16_t v) { put_le(v, 2); }
  void put_u32(std::uint32_t v) { put_le(v, 4); }
  void put_u64(std::uint64_t v) { put_le(v, 8); }
  void put_f32(float v);
  void put_f64(double v);
  [[nodiscard]] std::size_t size() const noexcept { return pos_; }

 private:
  void put_le(std::uint64_t v, std::size_t n);
  std::span<std::byte> out_;
  std::size_t pos_ = 0;
};

// Little-endian reader for the params section; throws CorruptMessage when it runs out, and
// finish() throws if bytes are left over.
class ParamReader {
 public:
  explicit ParamReader(std::span<const std::byte> in) noexcept : in_(in) {}
  std::uint8_t get_u8() { return static_cast<std::uint8_t>(get_le(1)); }
  std::uint16_t get_u16() { return static_cast<std::uint16_t>(get_le(2)); }
  std::uint32_t get_u32() { return static_cast<std::uint32_t>(get_le(4)); }
  std::uint64_t get_u64() { return get_le(8); }
  float get_f32();
  double get_f64();
  void finish() const;

 private:
  std::uint64_t get_le(std::size_t n);
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

// Builds a message in caller-provided storage: write params, take the payload area, fill it,
// then finish() with the payload length to stamp lengths and checksum.
class MessageWriter {
 public:
  // `out` must hold at least kHeaderBytes + params + payload bytes.
  MessageWriter(std::span<std::byte> out, CodecId codec, std::uint64_t elements);

  [[nodiscard]] ParamWriter& params() noexcept { return params_; }
  void set_flags(std::uint8_t flags) noexcept { flags_ = flags; }
  // The storage after the params; params must not be written after this call.
  [[nodiscard]] std::span<std::byte> payload_area();
  // Stamps the header; returns the total message size in bytes.
  std::size_t finish(std::size_t payload_bytes);

  // For a codec that knows its payload length up front and writes the payload in pieces: stamps
  // the header for `payload_bytes` and returns the checksum state over the header and the params.
  // The caller feeds it every payload byte in order (while the piece is still in cache, rather
  // than in a second pass over the message), then calls finish(sum). Flags and params must not
  // change after this call.
  [[nodiscard]] Checksum64 begin_payload(std::size_t payload_bytes);
  // Stamps the checksum `sum` (from begin_payload, fed the whole payload); returns the total
  // message size in bytes.
  std::size_t finish(const Checksum64& sum);

 private:
  std::span<std::byte> out_;
  CodecId codec_;
  std::uint64_t elements_;
  std::uint8_t flags_ = 0;
  ParamWriter params_;
  std::size_t payload_bytes_ = 0;  // as given to begin_payload

  void stamp_header(std::size_t payload_bytes);
};

// Replaces the flags of a finished, valid message and re-stamps its checksum. Lets a wrapper
// that codecs know nothing about (error feedback) mark the messages it sends. Throws
// CorruptMessage if `message` is not a valid message or InvalidArgument for unknown flag bits.
void set_message_flags(std::span<std::byte> message, std::uint8_t flags);

// Reads the element count without validating the rest (for sizing an output buffer); throws
// CorruptMessage if the message is shorter than a header.
[[nodiscard]] std::uint64_t message_elements(std::span<const std::byte> message);

}  // namespace thinwire::codec
