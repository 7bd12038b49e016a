#include "thinwire/tune/online_link.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::tune {
namespace {

constexpr double kMinSlope = 1e-13;  // 10 Tbit/s: keeps C(b) increasing in b

// The median of `values` (reordered); the mean of the two middle ones for an even count.
double median(std::vector<double>& values) {
  const std::size_t n = values.size();
  const auto mid = values.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(values.begin(), mid, values.end());
  const double upper = *mid;
  if (n % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), mid);
  return 0.5 * (lower + upper);
}

// The weighted median of (value, weight) pairs (reordered): the smallest value at which the
// weights of the values up to it reach half the total.
double weighted_median(std::vector<std::pair<double, double>>& pairs) {
  std::sort(pairs.begin(), pairs.end());
  double total = 0;
  for (const auto& p : pairs) total += p.second;
  double below = 0;
  for (const auto& p : pairs) {
    below += p.second;
    if (below >= 0.5 * total) return p.first;
  }
  return pairs.back().first;
}

bool usable(double x) { return std::isfinite(x) && x >= 0.0; }

// Appends to a ring of `capacity` entries, overwriting the oldest once full.
template <typename T>
void push_ring(std::vector<T>& ring, std::size_t& next, std::size_t capacity, const T& value) {
  if (ring.size() < capacity) {
    ring.push_back(value);
    return;
  }
  ring[next] = value;
  next = (next + 1) % capacity;
}

}  // namespace

LineFit theil_sen(std::span<const LinkSample> samples, double fallback_intercept,
                  double fallback_slope, double min_spread) {
  LineFit fit{.intercept = std::max(fallback_intercept, 0.0),
              .slope = std::max(fallback_slope, kMinSlope)};
  if (samples.empty()) return fit;
  // Slopes weighted by the size difference of their pair (weighted Theil–Sen): a pair of nearly
  // equal sizes divides the timing noise by a small difference and says little about s.
  std::vector<std::pair<double, double>> slopes;
  slopes.reserve(samples.size() * (samples.size() - 1) / 2);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    for (std::size_t j = i + 1; j < samples.size(); ++j) {
      const double db = samples[j].bits - samples[i].bits;
      const double larger = std::max(samples[i].bits, samples[j].bits);
      if (db == 0.0 || std::fabs(db) < min_spread * larger) continue;
      slopes.emplace_back((samples[j].seconds - samples[i].seconds) / db, std::fabs(db));
    }
  }
  const double slope = slopes.empty() ? 0.0 : weighted_median(slopes);
  if (slope > kMinSlope) {
    fit.slope = slope;
    fit.slope_fitted = true;
    std::vector<double> intercepts;
    intercepts.reserve(samples.size());
    for (const LinkSample& s : samples) intercepts.push_back(s.seconds - fit.slope * s.bits);
    fit.intercept = std::max(median(intercepts), 0.0);
    return fit;
  }
  // Sizes too alike (one level for every message) or noise that hides the slope: α stays at the
  // fallback and the time of what was sent goes to the bandwidth, s = median((t − α)/b). Messages
  // of the size sent are then priced right, and the others in proportion, so the rule moves away
  // from a size that turns out slow, and the new sizes identify the slope.
  std::vector<double> per_bit;
  for (const LinkSample& s : samples) {
    if (s.bits > 0) per_bit.push_back((s.seconds - fit.intercept) / s.bits);
  }
  if (!per_bit.empty()) fit.slope = std::max(median(per_bit), kMinSlope);
  return fit;
}

OnlineLink::OnlineLink(const OnlineLinkOptions& options) : options_(options) {
  if (options.window < 2) {
    throw InvalidArgument("cost auto: window must be at least 2 samples, got " +
                          std::to_string(options.window));
  }
  if (options.compute_window < 1) {
    throw InvalidArgument("cost auto: the compute window must hold at least 1 iteration");
  }
  if (!(std::isfinite(options.prior_latency_s) && options.prior_latency_s >= 0)) {
    throw InvalidArgument("cost auto: latency must be finite and >= 0, got " +
                          format_shortest(options.prior_latency_s));
  }
  if (!(std::isfinite(options.prior_bandwidth) && options.prior_bandwidth > 0)) {
    throw InvalidArgument("cost auto: bandwidth must be finite and > 0, got " +
                          format_shortest(options.prior_bandwidth));
  }
  if (!(options.min_spread >= 0 && options.min_spread < 1)) {
    throw InvalidArgument("cost auto: min_spread must be in [0, 1), got " +
                          format_shortest(options.min_spread));
  }
  fit_ = {.intercept = options.prior_latency_s,
          .slope = std::max(1.0 / options.prior_bandwidth, kMinSlope),
          .slope_fitted = false};
}

void OnlineLink::observe_message(double bits, double seconds) {
  if (!usable(bits) || !usable(seconds)) return;
  push_ring(messages_, next_message_, options_.window, LinkSample{bits, seconds});
}

void OnlineLink::observe_compute(double seconds) {
  if (!usable(seconds)) return;
  push_ring(compute_, next_compute_, options_.compute_window, seconds);
}

void OnlineLink::refit() {
  if (!messages_.empty()) {
    // The samples in insertion order (oldest first), so the fit is a function of what was
    // observed, not of where the ring's cursor stands.
    std::vector<LinkSample> ordered;
    ordered.reserve(messages_.size());
    for (std::size_t i = 0; i < messages_.size(); ++i) {
      ordered.push_back(messages_[(next_message_ + i) % messages_.size()]);
    }
    // Without distinct sizes the last α stands (the prior's before any fit).
    const LineFit fit = theil_sen(ordered, fit_.intercept, fit_.slope, options_.min_spread);
    fit_ = {.intercept = fit.intercept,
            .slope = fit.slope,
            .slope_fitted = fit.slope_fitted || fit_.slope_fitted};
  }
  if (!compute_.empty()) {
    std::vector<double> c = compute_;
    compute_s_ = median(c);
  }
}

std::string OnlineLink::save() const {
  nlohmann::json bits = nlohmann::json::array();
  nlohmann::json seconds = nlohmann::json::array();
  for (const LinkSample& s : messages_) {
    bits.push_back(format_shortest(s.bits));
    seconds.push_back(format_shortest(s.seconds));
  }
  nlohmann::json compute = nlohmann::json::array();
  for (const double c : compute_) compute.push_back(format_shortest(c));
  return nlohmann::json{{"bits", bits},
                        {"seconds", seconds},
                        {"next_message", next_message_},
                        {"compute", compute},
                        {"next_compute", next_compute_},
                        {"latency", format_shortest(fit_.intercept)},
                        {"slope", format_shortest(fit_.slope)},
                        {"slope_fitted", fit_.slope_fitted},
                        {"compute_s", format_shortest(compute_s_)}}
      .dump();
}

void OnlineLink::load(std::string_view state) {
  auto number = [](const nlohmann::json& j) {
    const std::string text = j.get<std::string>();
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
      throw CorruptMessage("cost auto state: not a number: '" + text + "'");
    }
    return value;
  };
  try {
    const nlohmann::json j = nlohmann::json::parse(state);
    const auto& bits = j.at("bits");
    const auto& seconds = j.at("seconds");
    const auto& compute = j.at("compute");
    if (bits.size() != seconds.size() || bits.size() > options_.window ||
        compute.size() > options_.compute_window) {
      throw CorruptMessage("cost auto state: windows do not match the configuration");
    }
    std::vector<LinkSample> messages;
    for (std::size_t i = 0; i < bits.size(); ++i) {
      messages.push_back({number(bits[i]), number(seconds[i])});
    }
    std::vector<double> times;
    for (const auto& c : compute) times.push_back(number(c));
    const auto next_message = j.at("next_message").get<std::size_t>();
    const auto next_compute = j.at("next_compute").get<std::size_t>();
    if (next_message >= std::max<std::size_t>(messages.size(), 1) ||
        next_compute >= std::max<std::size_t>(times.size(), 1)) {
      throw CorruptMessage("cost auto state: ring cursor out of range");
    }
    messages_ = std::move(messages);
    compute_ = std::move(times);
    next_message_ = next_message;
    next_compute_ = next_compute;
    fit_ = {.intercept = number(j.at("latency")),
            .slope = number(j.at("slope")),
            .slope_fitted = j.at("slope_fitted").get<bool>()};
    compute_s_ = number(j.at("compute_s"));
  } catch (const nlohmann::json::exception& e) {
    throw CorruptMessage(std::string("cost auto state: ") + e.what());
  }
}

std::string AutoCost::spec() const {
  const OnlineLinkOptions& o = link_.options();
  return "auto:latency=" + format_shortest(o.prior_latency_s) +
         "s,bandwidth=" + format_shortest(o.prior_bandwidth) +
         "bit/s,window=" + std::to_string(o.window);
}

}  // namespace thinwire::tune
