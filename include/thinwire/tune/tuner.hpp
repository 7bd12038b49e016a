// Tuners: which codec level a worker uses at iteration t (SPEC §3, `--tuner`).
//
//   fixed                      the configured codec at every iteration
//   schedule:T0=L0,T1=L1,...   the codec's level parameter is L_j from iteration T_j on (T0 must
//                              be 0); the level is k for topk/randk, density for wangni, s for
//                              qsgd, bucket for terngrad; e.g. `schedule:0=0.1,500=0.01`
//   dynamic                    θ_t = argmax Δ(θ)/P(θ) on the vector about to be sent (e + g under
//                              error feedback), selector.hpp, for the family of the configured
//                              codec: topk (topk with values=qsgd: k and s jointly), randk,
//                              wangni, qsgd (s and bucket; norm and coding as configured),
//                              terngrad (bucket)
// The caller describes the iteration in a TuneContext: the price of this rank's message
// (collective::rank_price: how often it is sent, its share of the iteration's fixed cost) and, once
// known, the step it is part of (the step size and momentum really used, a local smoothness
// estimate L̂, error feedback). With L̂ the rule predicts the decrease of that step
// (docs/tuning.md):
//   error feedback   Δ(θ) = ‖g‖² − (L̂·γ/(1−μ))²·E‖v − Q_θ(v)‖²   (v = e + g; what the level
//                    leaves in the residual perturbs the steps that follow)
//   unbiased, no EF  Δ(θ) = ‖ḡ‖²·(1 − L̂γ_e/2)₊ − (L̂·γ_e/(2M))·E‖Q_θ(v) − v‖²   (γ_e = γ/(1−μ);
//                    ḡ the averaged gradient, estimated from the last move of the model)
// and otherwise (error feedback before its first secant, a biased codec without error feedback,
// whose one-step decrease is proportional to ρ, or a caller that does not say) the classic
// Δ(θ) = ρ(θ). (The training loop gives an unbiased codec's first step L̂ = 1/γ and no signal, so
// that step sends the family's least noisy level.) With lr coupling the rule is the classic one
// and the step is γ_t = γ₀·ρ(θ_t) for unbiased codecs (the descent guarantee with the global L);
// biased ones (top-k) keep γ₀. Under `--cost auto` the rule sends the configured codec until the
// link estimate has a full window (online_link.hpp), and also prices dense messages (identity,
// fp16).
//
// Every decision is a pure function of (configuration, t, v, context): tuners keep no state that
// changes a trajectory (the caller owns the smoothness estimate, tune/curvature.hpp, and
// checkpoints it), so a resumed run or another backend repeats the same levels. save_state()
// records the last decision for the checkpoint's "tuner" slot (and the resume check);
// load_state() takes it back.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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
  double err = 0.0;          // E‖v − Q(v)‖² of the level as the rule evaluated it
  double lr_scale = 1.0;     // γ_t/γ₀
  double price = 0.0;        // P(θ): the rank's share of the iteration's cost (0: not evaluated)
  double smoothness = 0.0;   // L̂ the step model used (0: the classic rule)
};

// What the rule knows about the iteration the message belongs to (see the overview).
struct TuneContext {
  // Price of the message: copies·C(bits) + fixed (collective::rank_price).
  double copies = 1.0;
  double fixed = 0.0;
  // The step: L̂ (0 = unknown: the classic rule), γ_t, μ, the number of ranks averaged.
  double smoothness = 0.0;
  double lr = 0.0;
  double momentum = 0.0;
  int workers = 1;
  bool error_feedback = false;    // v = e + g and the residual carries what Q leaves out
  double gradient_squared = 0.0;  // ‖g‖² of this rank's gradient (error feedback's signal)
  double average_squared = 0.0;   // ‖ḡ‖² estimate (an unbiased codec's signal)
};

class Tuner {
 public:
  virtual ~Tuner() = default;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // The level for iteration t, given v, the vector this worker is about to encode, and what the
  // caller knows of the iteration.
  virtual Decision decide(std::uint64_t t, std::span<const float> v,
                          const TuneContext& context) = 0;
  // The same for one message with nothing else known (the classic rule).
  Decision decide(std::uint64_t t, std::span<const float> v) { return decide(t, v, {}); }
  // The cost model the rule prices messages with (null for tuners without a rule).
  [[nodiscard]] virtual const CostModel* cost_model() const noexcept { return nullptr; }
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
  // The cost model to price with instead of a new one from `cost`: shared with its owner, who
  // may update it between decisions (`--cost auto`, online_link.hpp). Null: built from `cost`.
  std::shared_ptr<CostModel> cost_model = nullptr;
};

// A decision from Tuner::save_state() text (nullopt for empty text); CorruptMessage if malformed.
[[nodiscard]] std::optional<Decision> parse_decision(std::string_view state);

enum class TunerKind : std::uint8_t { kFixed, kSchedule, kDynamic };

// TunerOptions with its strings parsed and checked: what a tuner is built from. One settings
// object serves any number of tuners (one per rank), which share its immutable codec.
struct TunerSettings {
  TunerKind kind = TunerKind::kFixed;
  std::shared_ptr<const codec::Codec> codec;  // the configured codec (without "+ef")
  std::map<std::uint64_t, double> schedule;   // kSchedule: the level from each iteration on
  // kDynamic: the rule's prices; each tuner prices with a copy of its own (Tuner state must not
  // be shared between ranks) unless make_tuner is given a model to share.
  std::shared_ptr<const CostModel> cost;
  bool lr_coupling = false;
};

// Parses and checks `options` (not its cost_model); InvalidArgument names the flag (--tuner,
// --codec, --cost) that is wrong.
[[nodiscard]] TunerSettings tuner_settings(const TunerOptions& options);

// Builds a tuner from parsed settings; `cost_model`, when given, is the model a dynamic tuner
// prices with instead of a copy of settings.cost (TunerOptions::cost_model).
[[nodiscard]] std::unique_ptr<Tuner> make_tuner(const TunerSettings& settings,
                                                std::shared_ptr<CostModel> cost_model = nullptr);
// tuner_settings then make_tuner.
[[nodiscard]] std::unique_ptr<Tuner> make_tuner(const TunerOptions& options);

}  // namespace thinwire::tune
