#include "thinwire/codec/float_cast.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "kernels/cast.hpp"
#include "thinwire/core/checksum.hpp"

namespace thinwire::codec {
namespace {

constexpr std::uint32_t kFloatAbsMask = 0x7FFFFFFF;
constexpr std::uint32_t kFloatInf = 0x7F800000;

// fp16 boundaries, as fp32 bit patterns of |x|:
// 65520 = 65504 + half an ulp: from here on round-to-nearest-even would give infinity.
constexpr std::uint32_t kHalfOverflow = 0x477FF000;
// 2^-14, the smallest normal half.
constexpr std::uint32_t kHalfMinNormal = 0x38800000;
// 2^-25, half the smallest subnormal half: it and everything below round to zero (the tie goes
// to the even value 0).
constexpr std::uint32_t kHalfUnderflow = 0x33000000;
// bf16: 0x1.fep127 + half an ulp rounds to infinity.
constexpr std::uint32_t kBfloat16Overflow = 0x7F7F8000;

// Shifts m right by `shift` bits (1..31), rounding to nearest with ties to even.
constexpr std::uint32_t shift_round_even(std::uint32_t m, unsigned shift) noexcept {
  const std::uint32_t q = m >> shift;
  const std::uint32_t rem = m & ((std::uint32_t{1} << shift) - 1);
  const std::uint32_t half = std::uint32_t{1} << (shift - 1);
  return q + ((rem > half || (rem == half && (q & 1) != 0)) ? 1 : 0);
}

}  // namespace

std::uint16_t float_to_half(float x) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000);
  const std::uint32_t a = bits & kFloatAbsMask;
  if (a > kFloatInf) return static_cast<std::uint16_t>(sign | 0x7E00);  // NaN
  if (a == kFloatInf) return static_cast<std::uint16_t>(sign | 0x7C00);
  if (a >= kHalfOverflow) return static_cast<std::uint16_t>(sign | kHalfMaxFinite);
  if (a >= kHalfMinNormal) {
    // Rebias the exponent (127 -> 15) and drop 13 mantissa bits; a carry out of the mantissa
    // correctly bumps the exponent (and cannot reach infinity below kHalfOverflow).
    return static_cast<std::uint16_t>(sign | shift_round_even(a - (112u << 23), 13));
  }
  if (a <= kHalfUnderflow) return sign;
  // Subnormal half: the result is |x| / 2^-24 rounded; with |x| = m·2^(e−150) (m including the
  // implicit bit) that is m·2^(e−126), a right shift by 126 − e in [14, 24] here.
  const std::uint32_t e = a >> 23;
  const std::uint32_t m = (a & 0x7FFFFF) | 0x800000;
  return static_cast<std::uint16_t>(sign | shift_round_even(m, 126 - e));
}

float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t e = (h >> 10) & 0x1F;
  const std::uint32_t m = h & 0x3FF;
  if (e == 0) {
    // Zero or subnormal: m·2^-24, exact in fp32.
    const float mag = static_cast<float>(m) * 0x1.0p-24f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(mag) | sign);
  }
  if (e == 0x1F) return std::bit_cast<float>(sign | kFloatInf | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));
}

std::uint16_t float_to_bfloat16(float x) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t a = bits & kFloatAbsMask;
  if (a > kFloatInf) return static_cast<std::uint16_t>((bits >> 16) | 0x0040);  // quiet NaN
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000);
  if (a == kFloatInf) return static_cast<std::uint16_t>(sign | 0x7F80);
  if (a >= kBfloat16Overflow) return static_cast<std::uint16_t>(sign | kBfloat16MaxFinite);
  // bf16 is the top half of fp32, so rounding the low 16 bits covers subnormals too.
  return static_cast<std::uint16_t>(sign | shift_round_even(a, 16));
}

float bfloat16_to_float(std::uint16_t h) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

void cast_to_16(CastFormat format, std::span<const float> in, std::span<std::uint16_t> out) {
  static_cast<void>(
      kernels::cast_to_16(format, in.data(), in.size(), reinterpret_cast<std::byte*>(out.data())));
}

bool cast_from_16(CastFormat format, std::span<const std::uint16_t> in, std::span<float> out,
                  DecodeMode mode) {
  return kernels::cast_from_16(format, reinterpret_cast<const std::byte*>(in.data()), in.size(),
                               out.data(), mode == DecodeMode::kOverwrite);
}

std::string FloatCastCodec::spec() const { return format_ == CastFormat::kFp16 ? "fp16" : "bf16"; }

std::size_t FloatCastCodec::max_encoded_bytes(std::size_t d) const { return kHeaderBytes + 2 * d; }

std::size_t FloatCastCodec::encode_into(std::span<const float> v, const EncodeContext& /*ctx*/,
                                        std::span<std::byte> out) const {
  MessageWriter w(out, id(), v.size());
  write_params(w.params());
  const std::span<std::byte> payload = w.payload_area();
  // The checksum is taken chunk by chunk right after the chunk is written, while it is in L1,
  // instead of in a second pass over the message.
  Checksum64 sum = w.begin_payload(2 * v.size());
  constexpr std::size_t kChunk = 1 << 13;
  for (std::size_t first = 0; first < v.size(); first += kChunk) {
    const std::size_t n = std::min(kChunk, v.size() - first);
    std::byte* dst = payload.data() + 2 * first;
    // The kernel reports a non-finite input, which require_finite then names.
    if (!kernels::cast_to_16(format_, v.data() + first, n, dst)) require_finite(v, spec());
    sum.update(dst, 2 * n);
  }
  return w.finish(sum);
}

void FloatCastCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                                    DecodeMode mode) const {
  if (payload.size() / 2 != out.size() || payload.size() % 2 != 0) {
    throw CorruptMessage(spec() + ": payload of " + std::to_string(payload.size()) + " bytes for " +
                         std::to_string(out.size()) + " elements");
  }
  // Chunks, so that a corrupt message is named near its first bad value.
  constexpr std::size_t kChunk = 1 << 14;
  for (std::size_t first = 0; first < out.size(); first += kChunk) {
    const std::size_t n = std::min(kChunk, out.size() - first);
    if (!kernels::cast_from_16(format_, payload.data() + 2 * first, n, out.data() + first,
                               mode == DecodeMode::kOverwrite)) {
      throw CorruptMessage(spec() + ": payload holds an infinity or NaN near element " +
                           std::to_string(first));
    }
  }
}

void FloatCastCodec::write_params(ParamWriter& /*w*/) const {}

std::unique_ptr<Codec> FloatCastCodec::fp16_from_spec(Spec& /*spec*/) {
  return std::make_unique<FloatCastCodec>(CastFormat::kFp16);
}

std::unique_ptr<Codec> FloatCastCodec::fp16_from_params(ParamReader& /*params*/) {
  return std::make_unique<FloatCastCodec>(CastFormat::kFp16);
}

std::unique_ptr<Codec> FloatCastCodec::bf16_from_spec(Spec& /*spec*/) {
  return std::make_unique<FloatCastCodec>(CastFormat::kBf16);
}

std::unique_ptr<Codec> FloatCastCodec::bf16_from_params(ParamReader& /*params*/) {
  return std::make_unique<FloatCastCodec>(CastFormat::kBf16);
}

}  // namespace thinwire::codec
