#include "thinwire/codec/message.hpp"

#include <bit>
#include <cstring>
#include <string>

#include "thinwire/core/checksum.hpp"

namespace thinwire::codec {
namespace {

constexpr std::byte kMagic0{'T'};
constexpr std::byte kMagic1{'W'};
constexpr std::size_t kChecksumOffset = 24;

std::uint64_t load_le(std::span<const std::byte> bytes, std::size_t offset, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(bytes[offset + i]) << (8 * i);
  }
  return v;
}

void store_le(std::span<std::byte> bytes, std::size_t offset, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    bytes[offset + i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
  }
}

std::uint64_t checksum(std::span<const std::byte> header_prefix, std::span<const std::byte> body) {
  Checksum64 sum;
  sum.update(header_prefix);
  sum.update(body);
  return sum.digest();
}

}  // namespace

MessageView parse_message(std::span<const std::byte> message, bool verify_checksum) {
  if (message.size() < kHeaderBytes) {
    throw CorruptMessage("message of " + std::to_string(message.size()) +
                         " bytes is shorter than the " + std::to_string(kHeaderBytes) +
                         "-byte header");
  }
  if (message[0] != kMagic0 || message[1] != kMagic1) {
    throw CorruptMessage("not a thinwire message (bad magic)");
  }
  MessageHeader h;
  h.version = static_cast<std::uint8_t>(message[2]);
  if (h.version != kFormatVersion) {
    throw CorruptMessage("unsupported message format version " + std::to_string(h.version) +
                         " (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  h.codec = static_cast<CodecId>(message[3]);
  h.flags = static_cast<std::uint8_t>(message[4]);
  if ((h.flags & ~kFlagErrorFeedback) != 0 || message[5] != std::byte{0}) {
    throw CorruptMessage("message header has unknown flag bits set");
  }
  h.params_bytes = static_cast<std::uint16_t>(load_le(message, 6, 2));
  h.elements = load_le(message, 8, 8);
  h.payload_bytes = load_le(message, 16, 8);
  h.checksum = load_le(message, 24, 8);
  const std::uint64_t body = message.size() - kHeaderBytes;
  if (h.params_bytes > body || h.payload_bytes != body - h.params_bytes) {
    throw CorruptMessage("message length " + std::to_string(message.size()) +
                         " does not match its header (params " + std::to_string(h.params_bytes) +
                         " + payload " + std::to_string(h.payload_bytes) + " bytes)");
  }
  if (verify_checksum &&
      checksum(message.first(kChecksumOffset), message.subspan(kHeaderBytes)) != h.checksum) {
    throw CorruptMessage("message checksum mismatch (corrupted in transit?)");
  }
  MessageView view;
  view.header = h;
  view.params = message.subspan(kHeaderBytes, h.params_bytes);
  view.payload = message.subspan(kHeaderBytes + h.params_bytes);
  return view;
}

void set_message_flags(std::span<std::byte> message, std::uint8_t flags) {
  if ((flags & ~kFlagErrorFeedback) != 0) {
    throw InvalidArgument("message flags " + std::to_string(flags) + " have unknown bits set");
  }
  (void)parse_message(message);
  message[4] = static_cast<std::byte>(flags);
  store_le(message, kChecksumOffset,
           checksum(message.first(kChecksumOffset), message.subspan(kHeaderBytes)), 8);
}

std::uint64_t message_elements(std::span<const std::byte> message) {
  if (message.size() < kHeaderBytes) {
    throw CorruptMessage("message of " + std::to_string(message.size()) +
                         " bytes is shorter than a header");
  }
  return load_le(message, 8, 8);
}

void ParamWriter::put_le(std::uint64_t v, std::size_t n) {
  if (pos_ + n > out_.size()) throw Error("internal: params exceed the message buffer");
  store_le(out_, pos_, v, n);
  pos_ += n;
}

void ParamWriter::put_f32(float v) { put_u32(std::bit_cast<std::uint32_t>(v)); }
void ParamWriter::put_f64(double v) { put_u64(std::bit_cast<std::uint64_t>(v)); }

std::uint64_t ParamReader::get_le(std::size_t n) {
  if (pos_ + n > in_.size()) throw CorruptMessage("message params are too short for its codec");
  const std::uint64_t v = load_le(in_, pos_, n);
  pos_ += n;
  return v;
}

float ParamReader::get_f32() { return std::bit_cast<float>(get_u32()); }
double ParamReader::get_f64() { return std::bit_cast<double>(get_u64()); }

void ParamReader::finish() const {
  if (pos_ != in_.size()) throw CorruptMessage("message params are longer than its codec's");
}

MessageWriter::MessageWriter(std::span<std::byte> out, CodecId codec, std::uint64_t elements)
    : out_(out),
      codec_(codec),
      elements_(elements),
      params_(out.size() >= kHeaderBytes ? out.subspan(kHeaderBytes) : std::span<std::byte>{}) {
  if (out.size() < kHeaderBytes) throw Error("internal: message buffer smaller than a header");
}

std::span<std::byte> MessageWriter::payload_area() {
  return out_.subspan(kHeaderBytes + params_.size());
}

void MessageWriter::stamp_header(std::size_t payload_bytes) {
  const std::size_t params = params_.size();
  if (params > 0xFFFF || kHeaderBytes + params + payload_bytes > out_.size()) {
    throw Error("internal: message exceeds its buffer");
  }
  out_[0] = kMagic0;
  out_[1] = kMagic1;
  out_[2] = static_cast<std::byte>(kFormatVersion);
  out_[3] = static_cast<std::byte>(codec_);
  out_[4] = static_cast<std::byte>(flags_);
  out_[5] = std::byte{0};
  store_le(out_, 6, params, 2);
  store_le(out_, 8, elements_, 8);
  store_le(out_, 16, payload_bytes, 8);
}

std::size_t MessageWriter::finish(std::size_t payload_bytes) {
  stamp_header(payload_bytes);
  const std::size_t total = kHeaderBytes + params_.size() + payload_bytes;
  const std::span<const std::byte> whole(out_.data(), total);
  store_le(out_, 24, checksum(whole.first(kChecksumOffset), whole.subspan(kHeaderBytes)), 8);
  return total;
}

Checksum64 MessageWriter::begin_payload(std::size_t payload_bytes) {
  stamp_header(payload_bytes);
  payload_bytes_ = payload_bytes;
  Checksum64 sum;
  sum.update(out_.first(kChecksumOffset));
  sum.update(out_.subspan(kHeaderBytes, params_.size()));
  return sum;
}

std::size_t MessageWriter::finish(const Checksum64& sum) {
  store_le(out_, 24, sum.digest(), 8);
  return kHeaderBytes + params_.size() + payload_bytes_;
}

}  // namespace thinwire::codec
