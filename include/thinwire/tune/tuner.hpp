// Tuners: which codec level a worker uses at iteration t (SPEC §3, `--tuner`).
//
//   fixed                      the configured codec at every iteration
//   schedule:T0=L0,T1=L1,...   the codec's level parameter is L_j from iteration T_j on (T0 must
//                              be 0); the level is k for topk/randk, density for wangni, s for
//                              qsgd, bucket for terngrad; e.g. `schedule:0=0.1,500=0.01`
//   dynamic                    θ_t = argmax ρ(θ)/C(bits(θ)) on the vector about to be sent
//                              (e + g under error feedback), selector.hpp, for the family of the
//                              configured codec: topk (topk with values=qsgd: k and s jointly),
//                              randk, wangni, qsgd (s and bucket; norm and coding as configured),
//                              terngrad (bucket)
// With lr coupling the step is γ_t = γ₀·ρ(θ_t) for unbiased codecs (the descent guarantee of the
// derivation); biased ones (top-k) keep γ₀.
//
// Every decision is a pure function of (configuration, t, v): tuners keep no state that changes a
// trajectory, so a resumed run or another backend repeats the same levels. save_state() records
// the last decision for the checkpoint's "tuner" slot (and the resume check); load_state() takes
// it back.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "thinwire/codec/codec.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/selector.hpp"

namespace thinwire::tune {

struct Decision {
  std::shared_ptr<const codec::Codec> codec;  // encodes this iteration's message
  std::string codec_spec;                     // its canonical spec (logged)
  double level = 0.0;                         // θ: k, density, s or bucket
  std::uint32_t levels = 0;  // s of top-k + QSGD values (its second parameter), else 0
  double rho = 1.0;          // ρ(θ) as the rule evaluated it (1 when not evaluated)
  double bits = 0.0;         // predicted message bits (0 when not evaluated)
  double lr_scale = 1.0;     // γ_t/γ₀
};

class Tuner {
 public:
  virtual ~Tuner() = default;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // The level for iteration t, given v, the vector this worker is about to encode.
  virtual Decision decide(std::uint64_t t, std::span<const float> v) = 0;
  // The last decision (null before the first).
  [[nodiscard]] const Decision* last() const noexcept { return has_last_ ? &last_ : nullptr; }
  // The last decision as text (empty before the first), and its inverse.
  [[nodiscard]] virtual std::string save_state() const;
  virtual void load_state(std::string_view state);

 protected:
  Decision last_;
  bool has_last_ = false;
};

struct TunerOptions {
  std::string tuner = "fixed";  // fixed | schedule:... | dynamic
  std::string codec;            // the configured codec spec (family, and fixed parameters)
  std::string cost = "bits";    // cost model spec (cost_model.hpp)
  bool lr_coupling = false;
};

// Builds a tuner; InvalidArgument names the flag (--tuner, --codec, --cost) that is wrong.
[[nodiscard]] std::unique_ptr<Tuner> make_tuner(const TunerOptions& options);

// The family a codec spec belongs to for `dynamic` and `schedule` (topk with values=qsgd is
// kTopKQsgd); InvalidArgument for codecs without a tunable level.
[[nodiscard]] Family family_of_codec(std::string_view codec_spec);

}  // namespace thinwire::tune
