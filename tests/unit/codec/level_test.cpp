// Codec::level and Codec::at_level: a tunable codec names its level and rebuilds itself at
// another one with every other parameter kept; the others have no level.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "thinwire/codec/registry.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::codec {
namespace {

struct Case {
  const char* spec;
  Level other;           // another level
  const char* expected;  // the canonical spec at `other`
};

TEST(CodecLevelTest, AtLevelChangesTheLevelAndKeepsEveryOtherParameter) {
  const Case cases[] = {
      {"topk:k=10,index=fixed", {.value = 3}, "topk:k=3,index=fixed,values=fp32"},
      {"topk:k=0.1,values=qsgd,s=4,bucket=64,norm=max,coding=elias",
       {.value = 7, .second = 16},
       "topk:k=7,index=elias,values=qsgd,s=16,bucket=64,norm=max,coding=elias"},
      {"randk:k=5,shared_seed=9", {.value = 0.25}, "randk:k=0.25,shared_seed=9"},
      {"wangni:density=0.1", {.value = 0.5}, "wangni:density=0.5"},
      {"qsgd:s=4,bucket=64,norm=max,coding=elias",
       {.value = 32, .second = 0},
       "qsgd:s=32,bucket=0,norm=max,coding=elias"},
      {"terngrad:bucket=64,clip=2.5", {.value = 256}, "terngrad:bucket=256,clip=2.5"},
  };
  for (const Case& c : cases) {
    const auto base = make_codec(c.spec);
    ASSERT_TRUE(base->level().has_value()) << c.spec;
    // The codec at its own level is the codec.
    EXPECT_EQ(base->at_level(*base->level())->spec(), base->spec()) << c.spec;
    const auto moved = base->at_level(c.other);
    EXPECT_EQ(moved->spec(), make_codec(c.expected)->spec()) << c.spec;
    EXPECT_EQ(moved->level(), c.other) << c.spec;
  }
}

TEST(CodecLevelTest, CodecsWithoutALevelOrBadLevelsAreRefused) {
  for (const char* spec : {"identity", "fp16", "sign", "threshold:tau=0.1"}) {
    const auto c = make_codec(spec);
    EXPECT_FALSE(c->level().has_value()) << spec;
    EXPECT_THROW((void)c->at_level({.value = 1}), InvalidArgument) << spec;
  }
  EXPECT_THROW((void)make_codec("qsgd")->at_level({.value = 0}), InvalidArgument);
  EXPECT_THROW((void)make_codec("qsgd")->at_level({.value = 2.5}), InvalidArgument);
  EXPECT_THROW((void)make_codec("topk:k=1")->at_level({.value = 0}), InvalidArgument);
  EXPECT_THROW((void)make_codec("wangni:density=0.1")->at_level({.value = 2}), InvalidArgument);
  EXPECT_THROW((void)make_codec("terngrad")->at_level({.value = -1}), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::codec
