#include "thinwire/codec/error_feedback.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <istream>
#include <ostream>
#include <string>

#include "thinwire/core/checksum.hpp"

namespace thinwire::codec {
namespace {

// Saved residual, little-endian:
//   offset  size  field
//        0     4  magic "TWEF"
//        4     1  format version (kStateVersion)
//        5     3  reserved, zero
//        8     8  dimension d
//       16     4  spec length S (<= kMaxSpecBytes)
//       20     S  canonical spec of the codec
//     20+S    4d  residual, fp32
//   20+S+4d    8  XXH3-64 of all the bytes before it
constexpr std::array<char, 4> kStateMagic = {'T', 'W', 'E', 'F'};
constexpr std::uint8_t kStateVersion = 1;
constexpr std::size_t kStateHeaderBytes = 20;
constexpr std::uint32_t kMaxSpecBytes = 4096;

static_assert(std::endian::native == std::endian::little, "saved state is little-endian");

void store_le(char* p, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::uint64_t load_le(const char* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

void read_exactly(std::istream& is, char* p, std::size_t n, const char* what) {
  is.read(p, static_cast<std::streamsize>(n));
  if (static_cast<std::size_t>(is.gcount()) != n) {
    throw CorruptMessage(std::string("error feedback state: truncated ") + what);
  }
}

}  // namespace

ErrorFeedback::ErrorFeedback(std::shared_ptr<const Codec> codec, std::size_t dimension)
    : codec_(std::move(codec)), residual_(dimension, 0.0f), scratch_(dimension, 0.0f) {
  if (codec_ == nullptr) throw InvalidArgument("error feedback: no codec given");
}

std::size_t ErrorFeedback::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                       std::span<std::byte> out) {
  return encode_into(*codec_, v, ctx, out);
}

std::size_t ErrorFeedback::encode_into(const Codec& codec, std::span<const float> v,
                                       const EncodeContext& ctx, std::span<std::byte> out) {
  if (v.size() != residual_.size()) {
    throw InvalidArgument("error feedback: vector of " + std::to_string(v.size()) +
                          " elements for a residual of " + std::to_string(residual_.size()));
  }
  const std::size_t d = residual_.size();
  for (std::size_t i = 0; i < d; ++i) scratch_[i] = residual_[i] + v[i];
  const std::size_t bytes = codec.encode_into(scratch_, ctx, out);  // may throw: e unchanged
  const std::span<std::byte> message = out.first(bytes);
  set_message_flags(message, kFlagErrorFeedback);
  // e <- s - decode(c), computed as -((-s) + decode(c)): identical in IEEE arithmetic (rounding
  // to nearest is symmetric) and it lets the decoder accumulate into the one scratch buffer.
  for (float& x : scratch_) x = -x;
  decode_unverified(message, scratch_, DecodeMode::kAccumulate);
  for (std::size_t i = 0; i < d; ++i) residual_[i] = -scratch_[i];
  return bytes;
}

std::vector<std::byte> ErrorFeedback::encode(std::span<const float> v, const EncodeContext& ctx) {
  std::vector<std::byte> out(max_encoded_bytes());
  out.resize(encode_into(v, ctx, out));
  return out;
}

void ErrorFeedback::reset() noexcept { std::fill(residual_.begin(), residual_.end(), 0.0f); }

void ErrorFeedback::save(std::ostream& os) const {
  const std::string spec = codec_->spec();
  if (spec.size() > kMaxSpecBytes) {
    throw InvalidArgument("error feedback: codec spec longer than " +
                          std::to_string(kMaxSpecBytes) + " bytes");
  }
  std::array<char, kStateHeaderBytes> header{};
  std::memcpy(header.data(), kStateMagic.data(), kStateMagic.size());
  header[4] = static_cast<char>(kStateVersion);
  store_le(header.data() + 8, residual_.size(), 8);
  store_le(header.data() + 16, spec.size(), 4);
  const auto* data = reinterpret_cast<const char*>(residual_.data());
  const std::size_t data_bytes = residual_.size() * sizeof(float);

  Checksum64 sum;
  sum.update(header.data(), header.size());
  sum.update(spec.data(), spec.size());
  sum.update(data, data_bytes);
  std::array<char, 8> digest{};
  store_le(digest.data(), sum.digest(), 8);

  os.write(header.data(), header.size());
  os.write(spec.data(), static_cast<std::streamsize>(spec.size()));
  os.write(data, static_cast<std::streamsize>(data_bytes));
  os.write(digest.data(), digest.size());
  if (!os) throw IoError("error feedback: writing the residual failed");
}

void ErrorFeedback::load(std::istream& is) {
  std::array<char, kStateHeaderBytes> header{};
  read_exactly(is, header.data(), header.size(), "header");
  if (std::memcmp(header.data(), kStateMagic.data(), kStateMagic.size()) != 0) {
    throw CorruptMessage("error feedback state: bad magic (not a saved residual)");
  }
  if (static_cast<std::uint8_t>(header[4]) != kStateVersion) {
    throw CorruptMessage("error feedback state: unsupported version " +
                         std::to_string(static_cast<unsigned char>(header[4])));
  }
  if (header[5] != 0 || header[6] != 0 || header[7] != 0) {
    throw CorruptMessage("error feedback state: reserved header bytes are not zero");
  }
  const std::uint64_t d = load_le(header.data() + 8, 8);
  const std::uint64_t spec_bytes = load_le(header.data() + 16, 4);
  if (spec_bytes > kMaxSpecBytes) {
    throw CorruptMessage("error feedback state: codec spec of " + std::to_string(spec_bytes) +
                         " bytes");
  }
  if (d != residual_.size()) {
    throw InvalidArgument("error feedback state: saved for dimension " + std::to_string(d) +
                          ", this residual has " + std::to_string(residual_.size()));
  }
  std::string spec(spec_bytes, '\0');
  read_exactly(is, spec.data(), spec.size(), "codec spec");
  std::vector<float> residual(residual_.size());
  auto* data = reinterpret_cast<char*>(residual.data());
  const std::size_t data_bytes = residual.size() * sizeof(float);
  read_exactly(is, data, data_bytes, "residual");
  std::array<char, 8> digest{};
  read_exactly(is, digest.data(), digest.size(), "checksum");

  Checksum64 sum;
  sum.update(header.data(), header.size());
  sum.update(spec.data(), spec.size());
  sum.update(data, data_bytes);
  if (sum.digest() != load_le(digest.data(), 8)) {
    throw CorruptMessage("error feedback state: checksum mismatch");
  }
  if (spec != codec_->spec()) {
    throw InvalidArgument("error feedback state: saved for codec '" + spec +
                          "', this residual belongs to '" + codec_->spec() + "'");
  }
  residual_ = std::move(residual);
}

std::unique_ptr<ErrorFeedback> make_error_feedback(const CodecChoice& choice, std::size_t d) {
  if (choice.codec == nullptr) throw InvalidArgument("error feedback: the codec choice is empty");
  return std::make_unique<ErrorFeedback>(choice.codec->clone(), d);
}

}  // namespace thinwire::codec
