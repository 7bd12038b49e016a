// `--cost auto`'s estimator (tune/online_link.hpp): the Theil–Sen fit recovers α and β exactly
// from noiseless samples and within a stated tolerance when a fifth of them are delayed; a window
// follows a link that changes; the state survives a checkpoint exactly; the spec parses and
// round-trips.
#include "thinwire/tune/online_link.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "thinwire/core/error.hpp"
#include "thinwire/tune/tuner.hpp"

namespace thinwire::tune {
namespace {

constexpr double kAlpha = 120e-6;  // s
constexpr double kBeta = 95e6;     // bit/s

std::vector<LinkSample> line(std::size_t n, double alpha, double beta) {
  std::vector<LinkSample> s;
  for (std::size_t i = 0; i < n; ++i) {
    const double bits = 1000.0 + 37000.0 * static_cast<double>((i * 7) % n);
    s.push_back({bits, alpha + bits / beta});
  }
  return s;
}

TEST(TheilSen, RecoversAlphaAndBetaFromNoiselessSamples) {
  const LineFit fit = theil_sen(line(30, kAlpha, kBeta), 0.0, 1e-9, 0.2);
  EXPECT_TRUE(fit.slope_fitted);
  EXPECT_NEAR(fit.intercept, kAlpha, 1e-12);
  EXPECT_NEAR(1.0 / fit.slope, kBeta, kBeta * 1e-9);
}

// 20 % of the samples delayed by up to 5 ms (a peer still computing, a descheduled rank), 80 % with
// ±2 % multiplicative noise: α within 25 % (the noise of an 18 ms message is three α), β
// within 5 %. A least-squares fit of the same samples
// is off by far more (checked below), which is what the median buys.
TEST(TheilSen, ToleratesAFifthOfDelayedSamples) {
  std::vector<LinkSample> s = line(48, kAlpha, kBeta);
  std::uint64_t state = 12345;
  auto uniform = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i % 5 == 0) {
      s[i].seconds += 1e-3 + 4e-3 * uniform();
    } else {
      s[i].seconds *= 1.0 + 0.04 * (uniform() - 0.5);
    }
  }
  const LineFit fit = theil_sen(s, 0.0, 1e-9, 0.2);
  EXPECT_NEAR(fit.intercept, kAlpha, 0.25 * kAlpha);
  EXPECT_NEAR(1.0 / fit.slope, kBeta, 0.05 * kBeta);

  // Ordinary least squares on the same samples, for contrast.
  double mx = 0, my = 0;
  for (const LinkSample& x : s) {
    mx += x.bits;
    my += x.seconds;
  }
  mx /= static_cast<double>(s.size());
  my /= static_cast<double>(s.size());
  double sxy = 0, sxx = 0;
  for (const LinkSample& x : s) {
    sxy += (x.bits - mx) * (x.seconds - my);
    sxx += (x.bits - mx) * (x.bits - mx);
  }
  const double ols_alpha = my - sxy / sxx * mx;
  EXPECT_GT(std::abs(ols_alpha - kAlpha), 0.5 * kAlpha);
}

TEST(TheilSen, EqualSizesChargeTheTimeToTheBandwidth) {
  std::vector<LinkSample> s(10, LinkSample{8000.0, 1e-3});
  s[3].seconds = 9e-3;  // one outlier moves no median
  const LineFit fit = theil_sen(s, 2e-4, 1e-7, 0.2);
  EXPECT_FALSE(fit.slope_fitted);
  EXPECT_DOUBLE_EQ(fit.intercept, 2e-4);  // the fallback α stands
  EXPECT_NEAR(fit.slope, (1e-3 - 2e-4) / 8000.0, 1e-18);
  EXPECT_NEAR(fit.intercept + fit.slope * 8000.0, 1e-3, 1e-15);  // what was sent is priced right
  // Sizes within min_spread of each other count as equal.
  s[5].bits = 8500.0;
  EXPECT_FALSE(theil_sen(s, 2e-4, 1e-7, 0.2).slope_fitted);
  s[5].seconds = 1.1e-3;
  EXPECT_TRUE(theil_sen(s, 2e-4, 1e-7, 0.01).slope_fitted);
  // No bits at all: the fallbacks.
  const std::vector<LinkSample> empty_messages(3, LinkSample{0.0, 5e-5});
  EXPECT_DOUBLE_EQ(theil_sen(empty_messages, 2e-4, 1e-7, 0.2).slope, 1e-7);
}

TEST(TheilSen, ClampsToAPositiveNondecreasingCost) {
  // Larger messages faster than small ones (noise): no slope from the pairs; the cost stays
  // positive and non-decreasing.
  const std::vector<LinkSample> s{{1000, 5e-3}, {100000, 1e-3}, {50000, 2e-3}};
  const LineFit fit = theil_sen(s, 1e-3, 1e-9, 0.2);
  EXPECT_FALSE(fit.slope_fitted);
  EXPECT_GT(fit.slope, 0.0);
  EXPECT_GE(fit.intercept, 0.0);
  EXPECT_EQ(theil_sen({}, 0.0, 1e-9, 0.2).intercept, 0.0);
  EXPECT_EQ(theil_sen({}, 3e-4, 1e-9, 0.2).intercept, 3e-4);
}

TEST(OnlineLink, StartsAtThePriorAndFollowsALinkThatChanges) {
  OnlineLink link({.window = 20, .prior_latency_s = 1e-3, .prior_bandwidth = 1e9});
  link.refit();
  EXPECT_DOUBLE_EQ(link.latency_s(), 1e-3);
  EXPECT_DOUBLE_EQ(link.bandwidth_bits_per_s(), 1e9);
  EXPECT_FALSE(link.bandwidth_fitted());
  for (const LinkSample& s : line(20, kAlpha, kBeta)) link.observe_message(s.bits, s.seconds);
  link.refit();
  EXPECT_TRUE(link.bandwidth_fitted());
  EXPECT_NEAR(link.bandwidth_bits_per_s(), kBeta, kBeta * 1e-9);
  // The link slows to a tenth: once the newer samples are most of the window, the fit follows.
  const std::vector<LinkSample> slow = line(20, kAlpha, kBeta / 10);
  for (std::size_t i = 0; i < 14; ++i) link.observe_message(slow[i].bits, slow[i].seconds);
  link.refit();
  EXPECT_NEAR(link.bandwidth_bits_per_s(), kBeta / 10, kBeta / 10 * 0.05);
  EXPECT_EQ(link.samples(), 20u);
  // Non-finite or negative samples are ignored.
  link.observe_message(-1, 1);
  link.observe_message(1, std::numeric_limits<double>::infinity());
  EXPECT_EQ(link.samples(), 20u);
}

TEST(OnlineLink, ComputeTimeIsTheWindowMedian) {
  OnlineLink link({.window = 4, .compute_window = 3});
  link.refit();
  EXPECT_EQ(link.compute_s(), 0.0);
  for (double c : {1.0, 9.0, 2.0, 3.0}) link.observe_compute(c);  // 1.0 leaves the window
  link.refit();
  EXPECT_DOUBLE_EQ(link.compute_s(), 3.0);
}

TEST(OnlineLink, SaveAndLoadContinueExactly) {
  OnlineLink a({.window = 8, .compute_window = 3});
  const std::vector<LinkSample> s = line(13, kAlpha, kBeta);
  for (std::size_t i = 0; i < 11; ++i) a.observe_message(s[i].bits, s[i].seconds * 1.000001);
  a.observe_compute(0.1);
  a.observe_compute(0.3);
  a.refit();
  OnlineLink b({.window = 8, .compute_window = 3});
  b.load(a.save());
  EXPECT_EQ(b.save(), a.save());
  for (OnlineLink* link : {&a, &b}) {
    link->observe_message(s[11].bits, s[11].seconds);
    link->observe_message(s[12].bits, 7e-3);
    link->observe_compute(0.2);
    link->refit();
  }
  EXPECT_EQ(a.latency_s(), b.latency_s());
  EXPECT_EQ(a.seconds_per_bit(), b.seconds_per_bit());
  EXPECT_EQ(a.compute_s(), b.compute_s());
  EXPECT_THROW(b.load("{"), CorruptMessage);
  OnlineLink small({.window = 2});
  EXPECT_THROW(small.load(a.save()), CorruptMessage);  // 8 samples do not fit a window of 2
}

TEST(AutoCost, ParsesAndRoundTrips) {
  const auto model = make_cost_model("auto:latency=2ms,bandwidth=10Mbit,window=16");
  EXPECT_EQ(model->name(), "auto");
  // Before any sample: the prior, C = α + b/β.
  EXPECT_DOUBLE_EQ(model->cost(0), 2e-3);
  EXPECT_DOUBLE_EQ(model->cost(10'000'000), 2e-3 + 1.0);
  EXPECT_FALSE(model->link_model().has_value());
  const auto again = make_cost_model(model->spec());
  EXPECT_EQ(again->spec(), model->spec());
  const auto& a = dynamic_cast<const AutoCost&>(*again);
  EXPECT_EQ(a.link().options().window, 16u);
  EXPECT_EQ(make_cost_model("auto")->spec(), "auto:latency=5e-05s,bandwidth=1e+09bit/s,window=48");
  EXPECT_THROW((void)make_cost_model("auto:window=1"), InvalidArgument);
  EXPECT_THROW((void)make_cost_model("auto:bandwidth=0"), InvalidArgument);
  EXPECT_THROW((void)make_cost_model("auto:windw=4"), InvalidArgument);
}

TEST(AutoCost, PricesWithTheCurrentEstimate) {
  AutoCost cost;
  for (const LinkSample& s : line(10, kAlpha, kBeta))
    cost.link().observe_message(s.bits, s.seconds);
  cost.link().observe_compute(0.25);
  cost.link().refit();
  EXPECT_NEAR(cost.cost(95'000'000), kAlpha + 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(cost.compute_seconds(), 0.25);
}

}  // namespace
}  // namespace thinwire::tune

namespace thinwire::tune {
namespace {

// Under --cost auto the rule also prices dense messages: on a link fast enough that the
// iteration costs about its fixed part, fp16 or, faster still, the identity codec (ρ = 1) wins;
// on a slow one QSGD.
TEST(AutoCost, DenseWinsWhereCompressionDoesNotPay) {
  std::vector<float> v(4096);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * static_cast<float>(i));
  auto decide = [&](double bandwidth, double fixed) {
    auto cost = std::make_shared<AutoCost>(
        OnlineLinkOptions{.window = 4, .prior_latency_s = 1e-4, .prior_bandwidth = bandwidth});
    // A full window of messages on that link: before it, the configured level is held.
    for (const double bits : {1e4, 2e4, 4e4, 8e4})
      cost->link().observe_message(bits, 1e-4 + bits / bandwidth);
    cost->link().refit();
    auto tuner = make_tuner({.tuner = "dynamic",
                             .codec = "qsgd:s=7,bucket=512,norm=max,coding=packed",
                             .cost = "auto",
                             .lr_coupling = false,
                             .cost_model = cost});
    return tuner->decide(0, v, {.copies = 3.0, .fixed = fixed});
  };
  // Where not even halving the bits pays for fp16's rounding, uncompressed.
  const Decision fastest = decide(1e13, 5.0);
  EXPECT_EQ(fastest.codec_spec, "identity");
  EXPECT_EQ(fastest.rho, 1.0);
  EXPECT_EQ(fastest.err, 0.0);
  EXPECT_EQ(fastest.bits, 8.0 * static_cast<double>(fastest.codec->max_encoded_bytes(v.size())));
  // A fast link: fp16, whose rounding the rule prices at its bound 2⁻²²·‖v‖² (+ 2⁻⁵⁰ per element).
  const Decision fast = decide(5e11, 0.5);
  EXPECT_EQ(fast.codec_spec, "fp16");
  double squared = 0.0;
  for (const float x : v) squared += static_cast<double>(x) * static_cast<double>(x);
  EXPECT_DOUBLE_EQ(fast.err, 0x1p-22 * squared + 0x1p-50 * static_cast<double>(v.size()));
  EXPECT_EQ(fast.bits, 8.0 * static_cast<double>(fast.codec->max_encoded_bytes(v.size())));
  EXPECT_LT(fast.bits, 0.6 * fastest.bits);
  // fp16 is not offered where a value would saturate.
  const float kept = v[5];
  v[5] = 1e5f;
  EXPECT_NE(decide(5e11, 0.5).codec_spec, "fp16");
  v[5] = kept;
  const Decision slow = decide(1e6, 0.05);
  EXPECT_TRUE(slow.codec_spec.starts_with("qsgd:")) << slow.codec_spec;
  EXPECT_LT(slow.rho, 1.0);
  // Under any other cost model the family's levels are all there is.
  auto bits = make_tuner({.tuner = "dynamic",
                          .codec = "qsgd:s=7,bucket=512,norm=max,coding=packed",
                          .cost = "linear:latency=100us,bandwidth=100Gbit"});
  EXPECT_TRUE(bits->decide(0, v, {.copies = 3.0, .fixed = 0.05}).codec_spec.starts_with("qsgd:"));
}

// Under `--cost auto` the rule sends the configured level until the link window is full (the
// prior is not the link). The oracle is the configured codec itself.
TEST(AutoCost, HoldsTheConfiguredLevelUntilTheWindowIsFull) {
  std::vector<float> v(4096);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * static_cast<float>(i));
  const std::string configured = "qsgd:s=7,bucket=512,norm=max,coding=packed";
  auto cost = std::make_shared<AutoCost>(
      OnlineLinkOptions{.window = 3, .prior_latency_s = 1e-4, .prior_bandwidth = 1e6});
  auto tuner =
      make_tuner({.tuner = "dynamic", .codec = configured, .cost = "auto", .cost_model = cost});
  const TuneContext context{.copies = 3.0, .fixed = 0.05};
  for (const double bits : {1e4, 2e4}) {
    const Decision held = tuner->decide(0, v, context);
    EXPECT_EQ(held.codec_spec, configured);
    EXPECT_EQ(held.level, 7.0);
    EXPECT_EQ(held.price, 0.0);  // not evaluated
    cost->link().observe_message(bits, 1e-4 + bits / 1e6);
  }
  cost->link().observe_message(4e4, 1e-4 + 4e4 / 1e6);
  cost->link().refit();
  const Decision chosen = tuner->decide(0, v, context);
  EXPECT_GT(chosen.price, 0.0);
  EXPECT_NE(chosen.codec_spec, configured) << "the 1 Mbit/s link makes a coarser level pay";

  // Under any other cost model the rule decides from the first call.
  auto bits = make_tuner({.tuner = "dynamic", .codec = configured, .cost = "bits"});
  EXPECT_GT(bits->decide(0, v, {}).price, 0.0);
}

}  // namespace
}  // namespace thinwire::tune
