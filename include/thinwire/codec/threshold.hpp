// threshold: keep every element with |v_i| >= tau, send the indices and the exact values;
// everything else decodes to zero. Deterministic; biased unless tau = 0 (then lossless). The
// number kept depends on the data (Strom, "Scalable distributed DNN training using commodity GPU
// cloud computing", Interspeech 2015, sends the same kind of thresholded update).
//
// Spec: threshold:tau=T with T >= 0 (finite).
// Params: f64 tau.
// Payload: count (Elias-delta of count + 1), the kept indices as Elias-delta gaps, then the kept
// values as fp32, zero-padded to a byte. The comparison is done in double on |v_i| and tau, and
// the decoder rejects a message whose kept values do not satisfy it.
#pragma once

#include <cmath>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

class ThresholdCodec final : public Codec {
 public:
  // Throws InvalidArgument unless tau is finite and >= 0.
  explicit ThresholdCodec(double tau);

  [[nodiscard]] double tau() const noexcept { return tau_; }

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<ThresholdCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kThreshold; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = tau_ == 0.0, .unbiased = tau_ == 0.0, .deterministic = true};
  }
  [[nodiscard]] std::size_t max_encoded_bytes(std::size_t d) const override;
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out) const override;
  void decode_payload(std::span<const std::byte> payload, std::span<float> out,
                      DecodeMode mode) const override;
  void write_params(ParamWriter& w) const override;

  static std::unique_ptr<Codec> from_spec(Spec& spec);
  static std::unique_ptr<Codec> from_params(ParamReader& params);

 private:
  [[nodiscard]] bool keeps(float x) const noexcept {
    return static_cast<double>(std::fabs(x)) >= tau_;
  }

  double tau_;
};

}  // namespace thinwire::codec
