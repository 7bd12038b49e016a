// sign: scaled sign, 1 bit per element (SPEC §2; Bernstein et al., "signSGD", with the ℓ1 scale
// of Karimireddy et al., "Error feedback fixes SignSGD", 2019).
//
// Per bucket u of B elements (bucket = 0, the default: one bucket of all d elements),
// Q(u) = (‖u‖₁/|u|)·sgn(u) with sgn(0) = +1. Deterministic and biased; meant to be used with
// error feedback (the scale makes ‖Q(u)‖₁ = ‖u‖₁).
//
// Payload: per bucket the fp32 scale ‖u‖₁/|u| (a zero bucket sends only its scale), then one bit
// per element, 1 = negative; zero-padded to a whole byte. Params: u32 bucket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

// Kernels over one bucket each. ‖u‖₁/|u| (0 for an empty span), with ‖u‖₁ summed in double over
// 8 interleaved partial sums in a fixed order (kernels::sum_abs: vectorizes, same value anywhere).
[[nodiscard]] float sign_scale(std::span<const float> u);
// ‖u‖₁ in that order (the sum of the fused one-pass encode kernel where the target has it: the
// same double as kernels::sum_abs).
[[nodiscard]] double sign_abs_sum(std::span<const float> u);
// One bit per element.
void sign_encode_bucket(std::span<const float> u, BitWriter& w);
// Decodes one bucket's bits after its (non-zero) scale.
void sign_decode_bucket(BitReader& r, float scale, std::span<float> out, DecodeMode mode);

// Whole payloads (bucket = 0: one bucket of all d elements). The largest payload of d elements in
// bytes, zero-padded to a whole byte.
[[nodiscard]] std::size_t sign_payload_max_bytes(std::size_t d, std::uint32_t bucket) noexcept;
// Writes v's payload into out and returns its size in bytes: with AVX-512, one pass per bucket
// (the sign bits written straight into out while |u| is summed, the scale put in front
// afterwards) when out holds sign_payload_max_bytes; otherwise two passes through a BitWriter.
// Throws InvalidArgument for a non-finite element. `threads` as SignCodec's; the bytes are the
// same for every target and thread count.
std::size_t sign_encode_payload(std::span<const float> v, std::uint32_t bucket,
                                std::span<std::byte> out, unsigned threads = 1);
// Writes (or adds) the decoded values; throws CorruptMessage for a bad scale, a payload that ends
// early or anything but up to 7 zero padding bits after the last bucket (the same error, with the
// same text, on every path).
void sign_decode_payload(std::span<const std::byte> payload, std::uint32_t bucket,
                         std::span<float> out, DecodeMode mode);

class SignCodec final : public Codec {
 public:
  // threads: a local execution setting, not sent on the wire (as for QsgdCodec; spec key
  // "threads"); buckets are encoded on up to that many threads for large vectors.
  explicit SignCodec(std::uint32_t bucket = 0, unsigned threads = 1) noexcept
      : bucket_(bucket), threads_(threads) {}

  [[nodiscard]] std::uint32_t bucket() const noexcept { return bucket_; }

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<SignCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kSign; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = false, .deterministic = true};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  // Bucket ranges on up to `threads` threads (codec::decode); a single bucket (bucket=0 or
  // bucket >= d) is cut into runs of its bits.
  void decode_payload_parallel(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode, unsigned threads) const override;
  [[nodiscard]] unsigned max_decode_threads(std::size_t d, unsigned threads) const override;
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> from_spec(Spec& spec);
  static std::unique_ptr<Codec> from_params(ParamReader& params);

 private:
  std::uint32_t bucket_;
  unsigned threads_;
};

}  // namespace thinwire::codec
