#include "thinwire/tune/tuner.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "thinwire/codec/float_cast.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/codec/wangni.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"
#include "thinwire/tune/online_link.hpp"

namespace thinwire::tune {
namespace {

// The configured codec without "+ef" (error feedback is the caller's wrapper, not a level).
std::unique_ptr<codec::Codec> base_codec(std::string_view spec) {
  codec::CodecChoice choice = codec::parse_codec(spec);
  return std::move(choice.codec);
}

// The family of a codec for `dynamic` and `schedule` (topk with values=qsgd is kTopKQsgd);
// InvalidArgument naming `codec_spec`, as the user wrote it, for codecs without a tunable level.
Family family_of(const codec::Codec& c, std::string_view codec_spec) {
  switch (c.id()) {
    case codec::CodecId::kTopK:
      return static_cast<const codec::TopKCodec&>(c).qsgd() ? Family::kTopKQsgd : Family::kTopK;
    case codec::CodecId::kRandK:
      return Family::kRandK;
    case codec::CodecId::kWangni:
      return Family::kWangni;
    case codec::CodecId::kQsgd:
      return Family::kQsgd;
    case codec::CodecId::kTernGrad:
      return Family::kTernGrad;
    default:
      throw InvalidArgument("--codec: '" + std::string(codec_spec) +
                            "' has no level to tune (use topk, randk, wangni, qsgd or terngrad)");
  }
}

class FixedTuner final : public Tuner {
 public:
  explicit FixedTuner(std::shared_ptr<const codec::Codec> c) : codec_(std::move(c)) {}
  [[nodiscard]] std::string_view name() const noexcept override { return "fixed"; }
  Decision decide(std::uint64_t /*t*/, std::span<const float> /*v*/,
                  const TuneContext& /*context*/) override {
    Decision d;
    d.codec = codec_;
    d.codec_spec = codec_->spec();
    last_ = d;
    has_last_ = true;
    return d;
  }

 private:
  std::shared_ptr<const codec::Codec> codec_;
};

class ScheduleTuner final : public Tuner {
 public:
  ScheduleTuner(const codec::Codec& base, const std::map<std::uint64_t, double>& levels) {
    const codec::Level configured = base.level().value_or(codec::Level{});
    for (const auto& [t, level] : levels) {
      std::shared_ptr<const codec::Codec> c =
          base.at_level({.value = level, .second = configured.second});
      steps_.emplace(t, std::make_pair(level, std::move(c)));
    }
  }
  [[nodiscard]] std::string_view name() const noexcept override { return "schedule"; }
  Decision decide(std::uint64_t t, std::span<const float> /*v*/,
                  const TuneContext& /*context*/) override {
    const auto it = std::prev(steps_.upper_bound(t));  // steps_ starts at 0
    Decision d;
    d.level = it->second.first;
    d.codec = it->second.second;
    d.codec_spec = d.codec->spec();
    last_ = d;
    has_last_ = true;
    return d;
  }

 private:
  std::map<std::uint64_t, std::pair<double, std::shared_ptr<const codec::Codec>>> steps_;
};

class DynamicTuner final : public Tuner {
 public:
  DynamicTuner(std::shared_ptr<const codec::Codec> base, Family family, SelectorOptions options,
               std::shared_ptr<CostModel> cost, bool unbiased, bool lr_coupling)
      : base_(std::move(base)),
        family_(family),
        options_(options),
        cost_(std::move(cost)),
        unbiased_(unbiased),
        couple_(lr_coupling && unbiased) {}
  [[nodiscard]] std::string_view name() const noexcept override { return "dynamic"; }
  [[nodiscard]] const CostModel* cost_model() const noexcept override { return cost_.get(); }
  Decision decide(std::uint64_t /*t*/, std::span<const float> v,
                  const TuneContext& context) override {
    if (warming_up()) return hold();
    const Objective objective = objective_for(context);
    const Choice c = select_level(family_, v, *cost_, options_, objective);
    codec::Level level;
    switch (family_) {
      case Family::kTopK:
      case Family::kRandK:
        level = {.value = static_cast<double>(c.k)};
        break;
      case Family::kTopKQsgd:
        level = {.value = static_cast<double>(c.k), .second = c.levels};
        break;
      case Family::kWangni:
        level = {.value = c.density};
        break;
      case Family::kQsgd:
        level = {.value = static_cast<double>(c.levels), .second = c.bucket};
        break;
      case Family::kTernGrad:
        level = {.value = static_cast<double>(c.bucket)};
        break;
    }
    Decision d;
    if (dense_wins(v, objective, c.score, context.smoothness, d)) return d;
    d.codec = base_->at_level(level);
    d.codec_spec = d.codec->spec();
    d.level = level.value;
    d.levels = family_ == Family::kTopKQsgd ? c.levels : 0;
    d.rho = c.rho;
    d.bits = c.bits;
    d.err = c.err;
    d.price = c.cost;
    d.smoothness = objective.step_model ? context.smoothness : 0.0;
    d.lr_scale = couple_ ? c.rho : 1.0;
    last_ = d;
    has_last_ = true;
    return d;
  }

 private:
  // The objective of docs/tuning.md for this context (the classic rule without L̂ or with lr
  // coupling, whose step is the coupled one).
  [[nodiscard]] Objective objective_for(const TuneContext& context) const noexcept {
    Objective o{.copies = context.copies, .fixed = context.fixed};
    if (couple_ || !(context.smoothness > 0.0) || !(context.lr > 0.0)) return o;
    // A biased codec without error feedback loses what it leaves out: its one-step decrease is
    // proportional to ρ, the classic rule.
    if (!context.error_feedback && !unbiased_) return o;
    const double step = context.smoothness * context.lr / (1.0 - context.momentum);  // L̂·γ_e
    o.step_model = true;
    if (context.error_feedback) {
      o.signal = context.gradient_squared;
      o.penalty = step * step;
    } else {
      o.signal = context.average_squared * std::max(0.0, 1.0 - step / 2.0);
      o.penalty = step / (2.0 * std::max(context.workers, 1));
    }
    return o;
  }

  // Under `--cost auto`, whether the link window is not yet full: α̂ and β̂ are then the prior's,
  // not the link's, and the configured level is sent (docs/tuning.md, "Before the rule can
  // see"). Not with lr coupling, whose step is scaled by the chosen level's ρ.
  [[nodiscard]] bool warming_up() const noexcept {
    if (couple_) return false;
    const auto* online = dynamic_cast<const AutoCost*>(cost_.get());
    return online != nullptr && online->link().samples() < online->link().options().window;
  }

  // The configured codec, logged as not evaluated (ρ = 1, no bits, no price).
  Decision hold() {
    Decision d;
    d.codec = base_;
    d.codec_spec = base_->spec();
    const codec::Level level = base_->level().value_or(codec::Level{});
    d.level = level.value;
    d.levels = family_ == Family::kTopKQsgd ? level.second : 0;
    last_ = d;
    has_last_ = true;
    return d;
  }

  // Under a time cost (--cost auto) the rule also prices sending v dense: uncompressed (ρ = 1, no
  // error, 32 bits per element) and fp16 (16 bits; round to nearest, so E‖v − Q(v)‖² ≤
  // 2⁻²²·‖v‖² in the normal range plus 2⁻⁵⁰ per element below it, the bound the rule is given;
  // not offered where a value would saturate at ±65504). Where the link is fast enough that
  // compression does not pay (a full iteration costs about its compute), a dense codec wins:
  // fp16 where halving the bits is worth its rounding, identity where not even that pays. The
  // level is logged as 0.
  bool dense_wins(std::span<const float> v, const Objective& objective, double best,
                  double smoothness, Decision& d) {
    if (cost_->name() != "auto" || v.empty()) return false;
    double squared = 0.0;
    float peak = 0.0f;
    for (const float x : v) {
      squared += static_cast<double>(x) * static_cast<double>(x);
      peak = std::max(peak, std::fabs(x));
    }
    bool won = false;
    const auto offer = [&](const std::shared_ptr<const codec::Codec>& codec, double err) {
      const double bits = 8.0 * static_cast<double>(codec->max_encoded_bytes(v.size()));
      const double price = objective.price(*cost_, bits);
      const double rho = squared > 0.0 ? 1.0 - err / squared : 1.0;
      const double score = objective.score(rho, err, price);
      if (!(score > best)) return;
      best = score;
      won = true;
      d.codec = codec;
      d.codec_spec = codec->spec();
      d.rho = rho;
      d.bits = bits;
      d.err = err;
      d.price = price;
      d.smoothness = objective.step_model ? smoothness : 0.0;
    };
    offer(identity_, 0.0);
    if (peak <= 65504.0f) offer(fp16_, 0x1p-22 * squared + 0x1p-50 * static_cast<double>(v.size()));
    if (won) {
      last_ = d;
      has_last_ = true;
    }
    return won;
  }

  std::shared_ptr<const codec::Codec> base_;  // the configured codec (held, see warming_up)
  std::shared_ptr<const codec::Codec> identity_ = std::make_shared<codec::IdentityCodec>();
  std::shared_ptr<const codec::Codec> fp16_ =
      std::make_shared<codec::FloatCastCodec>(codec::CastFormat::kFp16);
  Family family_;
  SelectorOptions options_;
  std::shared_ptr<CostModel> cost_;
  bool unbiased_;
  bool couple_;
};

}  // namespace

std::string Tuner::save_state() const {
  if (!has_last_) return "";
  return nlohmann::json{
      {"tuner", std::string(name())},  {"codec", last_.codec_spec}, {"level", last_.level},
      {"levels", last_.levels},        {"rho", last_.rho},          {"bits", last_.bits},
      {"lr_scale", last_.lr_scale},    {"price", last_.price},      {"err", last_.err},
      {"smoothness", last_.smoothness}}
      .dump();
}

std::optional<Decision> parse_decision(std::string_view state) {
  if (state.empty()) return std::nullopt;
  try {
    const nlohmann::json j = nlohmann::json::parse(state);
    Decision d;
    d.codec_spec = j.at("codec").get<std::string>();
    d.codec = codec::make_codec(d.codec_spec);
    d.level = j.at("level").get<double>();
    d.levels = j.at("levels").get<std::uint32_t>();
    d.rho = j.at("rho").get<double>();
    d.bits = j.at("bits").get<double>();
    d.lr_scale = j.at("lr_scale").get<double>();
    d.price = j.value("price", 0.0);
    d.smoothness = j.value("smoothness", 0.0);
    d.err = j.value("err", 0.0);
    return d;
  } catch (const nlohmann::json::exception& e) {
    throw CorruptMessage(std::string("tuner state: ") + e.what());
  }
}

void Tuner::load_state(std::string_view state) {
  std::optional<Decision> d = parse_decision(state);
  has_last_ = d.has_value();
  if (!d) return;
  try {
    const std::string tuner = nlohmann::json::parse(state).at("tuner").get<std::string>();
    if (tuner != name()) {
      throw InvalidArgument("--tuner: the checkpoint was written by the '" + tuner +
                            "' tuner, not '" + std::string(name()) + "'");
    }
  } catch (const nlohmann::json::exception& e) {
    throw CorruptMessage(std::string("tuner state: ") + e.what());
  }
  last_ = std::move(*d);
}

TunerSettings tuner_settings(const TunerOptions& options) {
  Spec spec = Spec::parse(options.tuner);
  // Coupling needs ρ(θ_t) of the level chosen at t, which only the dynamic rule evaluates; a
  // silently ignored flag would change nothing while the user believes the step is coupled.
  if (options.lr_coupling && spec.name() != "dynamic") {
    throw InvalidArgument(
        "--lr-coupling: scales the step by ρ(θ_t) of the dynamic tuner's choice; "
        "it needs --tuner dynamic (got '" +
        options.tuner + "'); for a fixed level set --lr instead");
  }
  TunerSettings settings{.codec = base_codec(options.codec), .lr_coupling = options.lr_coupling};
  if (spec.name() == "fixed") {
    spec.finish();
    return settings;
  }
  const Family family = family_of(*settings.codec, options.codec);
  if (spec.name() == "schedule") {
    for (const auto& [key, value] : spec.params()) {
      const std::int64_t t = parse_int(key, "--tuner schedule: iteration");
      if (t < 0) throw InvalidArgument("--tuner schedule: iterations must be >= 0, got " + key);
      settings.schedule[static_cast<std::uint64_t>(t)] =
          parse_double(value, "--tuner schedule: level");
    }
    if (settings.schedule.empty() || settings.schedule.begin()->first != 0) {
      throw InvalidArgument("--tuner schedule: needs a level from iteration 0 (e.g. 0=0.1)");
    }
    if (family == Family::kTopKQsgd) {
      throw InvalidArgument("--tuner schedule: topk with values=qsgd has two levels; use dynamic");
    }
    settings.kind = TunerKind::kSchedule;
    return settings;
  }
  if (spec.name() == "dynamic") {
    spec.finish();
    settings.kind = TunerKind::kDynamic;
    settings.cost = options.cost_model != nullptr ? options.cost_model
                                                  : std::shared_ptr(make_cost_model(options.cost));
    return settings;
  }
  throw InvalidArgument("--tuner: unknown tuner '" + spec.name() +
                        "' (expected fixed, schedule:T=LEVEL,... or dynamic)");
}

std::unique_ptr<Tuner> make_tuner(const TunerSettings& settings,
                                  std::shared_ptr<CostModel> cost_model) {
  switch (settings.kind) {
    case TunerKind::kFixed:
      return std::make_unique<FixedTuner>(settings.codec);
    case TunerKind::kSchedule:
      return std::make_unique<ScheduleTuner>(*settings.codec, settings.schedule);
    case TunerKind::kDynamic:
      break;
  }
  const codec::Codec& base = *settings.codec;
  SelectorOptions selector;
  if (const auto* topk = dynamic_cast<const codec::TopKCodec*>(&base)) {
    selector.index = topk->index_coding();
    if (topk->qsgd()) selector.qsgd = *topk->qsgd();
  } else if (const auto* qsgd = dynamic_cast<const codec::QsgdCodec*>(&base)) {
    selector.qsgd = qsgd->params();
  }
  if (cost_model == nullptr) cost_model = settings.cost->clone();
  return std::make_unique<DynamicTuner>(settings.codec, family_of(base, base.spec()), selector,
                                        std::move(cost_model), base.traits().unbiased,
                                        settings.lr_coupling);
}

std::unique_ptr<Tuner> make_tuner(const TunerOptions& options) {
  return make_tuner(tuner_settings(options), options.cost_model);
}

}  // namespace thinwire::tune
