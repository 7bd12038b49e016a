// wangni: unbiased sparsification with magnitude-proportional keep probabilities (Wangni, Wang,
// Liu, Zhang: "Gradient Sparsification for Communication-Efficient Distributed Optimization",
// 2017 / NeurIPS; seed 000 ref. [10]).
//
// Element i is kept with probability p_i = min(1, |v_i|/M) and decodes to v_i/p_i, so
// E decode(encode(v)) = v. The cap M (= 1/lambda in the paper) is chosen so that the expected
// number kept is Σ p_i = R·d for the target density R; among all p with that budget this
// minimizes the variance Σ v_i²/p_i − ||v||² (the paper's Lagrangian solution).
//
// Solving for M. Let a_i = |v_i| > 0 (zeros are never kept) and B = R·d. F(M) = Σ min(1, a_i/M)
// decreases in M, so with capped set C = {a_i >= M} the solution is M = S/(B − |C|) where
// S = Σ_{a_i < M} a_i. At a candidate cap a the budget h(a) = #{a_i >= a} + Σ_{a_i < a} a_i / a
// is F(a); h decreases in a, and the answer's capped set is {a_i >= a*} for the smallest value
// a* with h(a*) <= B. We find a* by randomized quickselect over the values (the same idea as
// Duchi et al.'s O(d) simplex projection): pick a random pivot among the undecided values,
// three-way partition them, evaluate h(pivot) with the running count of values known to be
// capped and the running sum of values known to be below the cap; if h(pivot) <= B the pivot
// and everything above it is capped and the search continues below, else the pivot and
// everything below it is uncapped and the search continues above. Each round is linear in the
// undecided values and keeps a random fraction of them: O(d) expected in total.
// If at most B values are non-zero, every non-zero is kept exactly (M = 0 on the wire).
// (Wangni et al.'s own procedure re-solves lambda until no new element is capped, O(d) per pass
// and up to O(d) passes.)
//
// Wire form. Since v_i/p_i = sgn(v_i)·M for every uncapped element, the payload sends M once
// and, per kept element, one flag bit: 1 = capped, the exact fp32 value follows (|v_i| >= M);
// 0 = a sign bit follows and the element decodes to ±M. The encoder draws with the fp32 M it
// sends, so unbiasedness is exact with respect to the transmitted scale.
//   Params: f64 density R.
//   Payload: M (fp32, >= 0), count (Elias-delta of count + 1), the kept indices as Elias-delta
//   gaps, then the per-element flag and value or sign, zero-padded to a byte.
// Random numbers: element i is kept iff key.uniform_double(i)·M < |v_i| with key = the context's
// kSparsify stream.
#pragma once

#include <span>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

// The cap M for v and target density R in (0, 1] (see above): p_i = min(1, |v_i|/M), and
// Σ p_i = R·d up to rounding M to fp32. Returns 0 when at most R·d elements are non-zero (all of
// them are kept exactly), and at most the largest finite float. v must be finite.
[[nodiscard]] float wangni_cap(std::span<const float> v, double density);

class WangniCodec final : public Codec {
 public:
  // Throws InvalidArgument unless density is in (0, 1].
  explicit WangniCodec(double density);

  [[nodiscard]] double density() const noexcept { return density_; }
  // Bytes of the params section: the density (f64).
  static constexpr std::size_t kParamsBytes = 8;
  [[nodiscard]] std::optional<Level> level() const noexcept override {
    return Level{.value = density_};
  }
  [[nodiscard]] std::unique_ptr<Codec> at_level(const Level& level) const override {
    return std::make_unique<WangniCodec>(level.value);
  }

  [[nodiscard]] std::unique_ptr<Codec> clone() const override {
    return std::make_unique<WangniCodec>(*this);
  }
  [[nodiscard]] CodecId id() const noexcept override { return CodecId::kWangni; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] CodecTraits traits() const noexcept override {
    return {.lossless = false, .unbiased = true, .deterministic = false};
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
  double density_;
};

}  // namespace thinwire::codec
