#include "thinwire/tune/tuner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/tune/rho.hpp"

namespace thinwire::tune {
namespace {

std::vector<float> heavy_tailed(std::size_t d, std::uint64_t seed) {
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kSparsify);
  std::vector<float> v(d);
  for (std::size_t i = 0; i < d; ++i) {
    const double u = key.uniform_double(2 * i);
    v[i] = static_cast<float>((u - 0.5) * std::exp2(10.0 * key.uniform_double(2 * i + 1)));
  }
  return v;
}

TEST(TunerTest, FixedUsesTheConfiguredCodec) {
  auto tuner = make_tuner({.tuner = "fixed", .codec = "topk:k=0.1+ef"});
  const std::vector<float> v = heavy_tailed(100, 1);
  const Decision d = tuner->decide(0, v);
  EXPECT_EQ(d.codec_spec, codec::make_codec("topk:k=0.1")->spec());
  EXPECT_EQ(d.lr_scale, 1.0);
}

TEST(TunerTest, ScheduleSwitchesLevels) {
  auto tuner = make_tuner({.tuner = "schedule:0=0.1,10=0.01,20=5", .codec = "topk:k=0.5"});
  const std::vector<float> v = heavy_tailed(1000, 2);
  EXPECT_EQ(tuner->decide(0, v).level, 0.1);
  EXPECT_EQ(tuner->decide(9, v).level, 0.1);
  EXPECT_EQ(tuner->decide(10, v).level, 0.01);
  const Decision late = tuner->decide(1000, v);
  EXPECT_EQ(late.level, 5.0);
  EXPECT_EQ(dynamic_cast<const codec::TopKCodec&>(*late.codec).kept(1000), 5u);
  auto qsgd = make_tuner({.tuner = "schedule:0=2,5=64", .codec = "qsgd:s=16,bucket=128"});
  EXPECT_NE(qsgd->decide(7, v).codec_spec.find("s=64"), std::string::npos);
  EXPECT_NE(qsgd->decide(7, v).codec_spec.find("bucket=128"), std::string::npos);
}

TEST(TunerTest, DynamicFollowsTheSelector) {
  const std::vector<float> v = heavy_tailed(2000, 3);
  for (const char* codec : {"topk:k=0.1", "randk:k=0.1", "wangni:density=0.1", "qsgd:s=4",
                            "terngrad", "topk:k=0.1,values=qsgd,s=4"}) {
    auto tuner = make_tuner({.tuner = "dynamic", .codec = codec, .cost = "packet:payload=1460B"});
    const Decision d = tuner->decide(0, v);
    EXPECT_GT(d.rho, 0.0) << codec;
    EXPECT_LE(d.rho, 1.0) << codec;
    EXPECT_GT(d.bits, 0.0) << codec;
    EXPECT_EQ(d.lr_scale, 1.0) << codec;  // no coupling asked for
  }
  // For top-k the decision is exactly the selector's.
  auto tuner = make_tuner({.tuner = "dynamic", .codec = "topk:k=0.1", .cost = "linear"});
  const Decision d = tuner->decide(0, v);
  const Choice c = select_topk(v, *make_cost_model("linear"));
  EXPECT_EQ(d.level, static_cast<double>(c.k));
  EXPECT_EQ(d.rho, c.rho);
  EXPECT_EQ(d.bits, c.bits);
  EXPECT_EQ(d.codec_spec, codec::make_codec(c.codec_spec({}))->spec());
}

TEST(TunerTest, LrCouplingOnlyForUnbiasedCodecs) {
  const std::vector<float> v = heavy_tailed(500, 4);
  auto q = make_tuner({.tuner = "dynamic", .codec = "qsgd:s=4", .lr_coupling = true});
  const Decision dq = q->decide(0, v);
  EXPECT_DOUBLE_EQ(dq.lr_scale, dq.rho);
  EXPECT_LT(dq.lr_scale, 1.0);
  auto t = make_tuner({.tuner = "dynamic", .codec = "topk:k=3", .lr_coupling = true});
  EXPECT_EQ(t->decide(0, v).lr_scale, 1.0);
  // Fixed and scheduled levels have no ρ(θ_t) to couple to: the flag is an error, not ignored.
  EXPECT_THROW((void)make_tuner({.tuner = "fixed", .codec = "qsgd:s=4", .lr_coupling = true}),
               InvalidArgument);
  EXPECT_THROW(
      (void)make_tuner({.tuner = "schedule:0=2", .codec = "qsgd:s=4", .lr_coupling = true}),
      InvalidArgument);
}

TEST(TunerTest, StateRoundTrips) {
  const std::vector<float> v = heavy_tailed(500, 5);
  auto a = make_tuner({.tuner = "dynamic", .codec = "topk:k=3"});
  EXPECT_EQ(a->save_state(), "");
  (void)a->decide(0, v);
  const std::string state = a->save_state();
  auto b = make_tuner({.tuner = "dynamic", .codec = "topk:k=3"});
  b->load_state(state);
  EXPECT_EQ(b->save_state(), state);
  auto f = make_tuner({.tuner = "fixed", .codec = "topk:k=3"});
  EXPECT_THROW(f->load_state(state), InvalidArgument);
  EXPECT_THROW(b->load_state("{"), CorruptMessage);
}

TEST(TunerTest, RejectsBadOptions) {
  EXPECT_THROW((void)make_tuner({.tuner = "greedy", .codec = "topk:k=3"}), InvalidArgument);
  EXPECT_THROW((void)make_tuner({.tuner = "dynamic", .codec = "sign"}), InvalidArgument);
  EXPECT_THROW((void)make_tuner({.tuner = "dynamic", .codec = "topk:k=3", .cost = "watts"}),
               InvalidArgument);
  EXPECT_THROW((void)make_tuner({.tuner = "schedule:5=0.1", .codec = "topk:k=3"}), InvalidArgument);
  EXPECT_THROW((void)make_tuner({.tuner = "schedule:0=x", .codec = "topk:k=3"}), InvalidArgument);
  EXPECT_THROW((void)make_tuner({.tuner = "dynamic:x=1", .codec = "topk:k=3"}), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::tune
