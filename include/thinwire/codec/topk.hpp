// topk: keep the k largest |v_i| (ties broken by the lower index; see select.hpp), send their
// indices and values; everything else decodes to zero. Deterministic and biased (||top_k(v)||^2
// <= ||v||^2), meant to be used with error feedback (Stich et al., "Sparsified SGD with memory",
// 2018).
//
// Spec: topk:k=K[,index=elias|fixed][,values=fp32|qsgd][,s=..,bucket=..,norm=..,coding=..]
//   K >= 1 is a count, 0 < K < 1 a fraction of d: k = max(1, round(K·d)), capped at d.
//   index=elias (default): ascending indices as Elias-delta gaps, about log2(d/k) + 2 bits each;
//   index=fixed: ceil(log2 d) bits each (better when k is a large fraction of d).
//   values=fp32 (default): the kept values exactly; values=qsgd: the k kept values quantized as
//   one vector by QSGD with the given parameters (qsgd.hpp), which makes the values stochastic.
//
// Params: f64 K, u8 index (0 elias, 1 fixed), u8 values (0 fp32, 1 qsgd), then the QSGD params
// when values=qsgd. Payload: the k indices, then the values (k fp32, or a QSGD payload of k
// elements), zero-padded to a byte. k is not sent: it follows from K and the element count.
#pragma once

#include <cstdint>
#include <optional>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

// How the ascending indices of a sparse message are written.
enum class IndexCoding : std::uint8_t {
  kElias = 0,  // Elias-delta gaps
  kFixed = 1,  // ceil(log2 d) bits each
};

class TopKCodec final : public Codec {
 public:
  // k as in the spec (count >= 1 or fraction in (0, 1)); values are QSGD-quantized when `qsgd`
  // is set. Throws InvalidArgument for an unacceptable k.
  explicit TopKCodec(double k, IndexCoding index = IndexCoding::kElias,
                     std::optional<QsgdParams> qsgd = std::nullopt);

  // The number of elements kept out of d.
  [[nodiscard]] std::size_t kept(std::size_t d) const noexcept;
  [[nodiscard]] double k() const noexcept { return k_; }
  [[nodiscard]] IndexCoding index_coding() const noexcept { return index_; }
  [[nodiscard]] const std::optional<QsgdParams>& qsgd() const noexcept { return qsgd_; }

  // k, and s of QSGD values (0 for fp32 values); at_level keeps the index coding and the other
  // QSGD parameters.
  [[nodiscard]] std::optional<Level> level() const noexcept override {
    return Level{.value = k_, .second = qsgd_ ? qsgd_->levels : 0};
  }
  [[nodiscard]] std::unique_ptr<Codec> at_level(const Level& level) const override;

  // Bytes of the params section: k (f64), index coding, value coding; QSGD's follow for
  // values=qsgd (the encoder writes it, message_size.hpp predicts with it).
  static constexpr std::size_t kParamsBytes = 8 + 1 + 1;

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<TopKCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kTopK; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = false, .deterministic = !qsgd_.has_value()};
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
  [[nodiscard]] std::size_t params_bytes() const noexcept;

  double k_;
  IndexCoding index_;
  std::optional<QsgdParams> qsgd_;
};

}  // namespace thinwire::codec
