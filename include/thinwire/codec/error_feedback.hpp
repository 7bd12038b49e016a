// Error feedback (memory): a per-worker wrapper that makes any codec C accumulate what it drops
// (Seide et al. 2014 for 1-bit SGD; Stich, Cordonnier, Jaggi, "Sparsified SGD with Memory",
// NeurIPS 2018; Karimireddy et al., "Error Feedback Fixes SignSGD", ICML 2019):
//
//   e <- e + v;   c = C(e);   e <- e - decode(c)
//
// so the decoded messages telescope: Σ_{t<T} decode(c_t) = Σ_{t<T} v_t - e_T (exactly in real
// arithmetic; here up to fp32 rounding of the two updates). Biased codecs (top-k, sign) converge
// with it at the rate of uncompressed SGD up to higher-order terms.
//
// Messages sent through an ErrorFeedback carry the kFlagErrorFeedback header bit. The residual e
// is state to checkpoint with the model: save()/load() write it with its dimension, the codec's
// spec and an XXH3-64 checksum.
//
// Not thread-safe: one object per worker. The codec is shared and const (codecs are stateless).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <span>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {

class ErrorFeedback {
 public:
  // A zero residual of dimension d for `codec` (must not be null: InvalidArgument).
  ErrorFeedback(std::shared_ptr<const Codec> codec, std::size_t dimension);

  [[nodiscard]] const Codec& codec() const noexcept { return *codec_; }
  [[nodiscard]] const std::shared_ptr<const Codec>& codec_ptr() const noexcept { return codec_; }
  [[nodiscard]] std::size_t dimension() const noexcept { return residual_.size(); }
  [[nodiscard]] std::span<const float> residual() const noexcept { return residual_; }
  [[nodiscard]] std::size_t max_encoded_bytes() const {
    return codec_->max_encoded_bytes(dimension());
  }

  // Encodes residual + v with the codec into out (at least max_encoded_bytes()), marks the
  // message with kFlagErrorFeedback and keeps what the message does not carry; returns the
  // message size. v.size() must equal dimension() (InvalidArgument). If the codec throws (e.g.
  // non-finite input) the residual is unchanged.
  std::size_t encode_into(std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out);
  // The same with another codec for this one message (a tuner that picks the level per
  // iteration from residual + v); the residual carries over between codecs.
  std::size_t encode_into(const Codec& codec, std::span<const float> v, const EncodeContext& ctx,
                          std::span<std::byte> out);
  // Convenience: encode into a new vector of exactly the message size.
  [[nodiscard]] std::vector<std::byte> encode(std::span<const float> v,
                                              const EncodeContext& ctx = {});

  // e <- 0.
  void reset() noexcept;

  // Writes the residual (format in error_feedback.cpp). Throws IoError if the stream fails.
  void save(std::ostream& os) const;
  // Replaces the residual with one written by save(). Throws CorruptMessage if the data is
  // truncated, malformed or fails its checksum, and InvalidArgument if it was saved for another
  // dimension or codec spec; on any error the residual is unchanged. Reads exactly the bytes
  // save() wrote, so the state can sit inside a larger checkpoint stream.
  void load(std::istream& is);

 private:
  std::shared_ptr<const Codec> codec_;
  std::vector<float> residual_;
  std::vector<float> scratch_;
};

// An ErrorFeedback of dimension d around a copy of choice.codec (Codec::clone, so the choice
// stays usable), e.g. for parse_codec("qsgd:s=4+ef"). Builds one whether or
// not choice.error_feedback is set; throws InvalidArgument if choice.codec is null.
[[nodiscard]] std::unique_ptr<ErrorFeedback> make_error_feedback(const CodecChoice& choice,
                                                                 std::size_t d);

}  // namespace thinwire::codec
