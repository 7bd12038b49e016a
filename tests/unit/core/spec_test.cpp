#include "thinwire/core/spec.hpp"

#include <gtest/gtest.h>

#include "thinwire/core/error.hpp"

namespace thinwire {
namespace {

TEST(SpecTest, ParsesNameAndParams) {
  Spec spec = Spec::parse("qsgd:s=16, bucket=512,norm=max");
  EXPECT_EQ(spec.name(), "qsgd");
  EXPECT_EQ(spec.get_int("s", 0), 16);
  EXPECT_EQ(spec.get_uint("bucket", 0), 512u);
  EXPECT_EQ(spec.get_choice("norm", "l2", {"l2", "max"}), "max");
  EXPECT_NO_THROW(spec.finish());
}

TEST(SpecTest, NameOnly) {
  Spec spec = Spec::parse("identity");
  EXPECT_EQ(spec.name(), "identity");
  EXPECT_TRUE(spec.params().empty());
}

TEST(SpecTest, UnknownKeyIsAnError) {
  Spec spec = Spec::parse("qsgd:bucekt=512");
  try {
    spec.finish();
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bucekt"), std::string::npos);
  }
}

TEST(SpecTest, BadValuesNameTheKey) {
  Spec spec = Spec::parse("topk:k=abc");
  try {
    (void)spec.get_double("k", 1);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("topk: k"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Spec::parse("qsgd:s"), InvalidArgument);
  EXPECT_THROW(Spec::parse("qsgd:s=1,s=2"), InvalidArgument);
  EXPECT_THROW(Spec::parse(":s=1"), InvalidArgument);
  Spec choice = Spec::parse("x:norm=l3");
  EXPECT_THROW((void)choice.get_choice("norm", "l2", {"l2", "max"}), InvalidArgument);
}

TEST(SpecTest, Units) {
  Spec spec = Spec::parse_params("bandwidth=100Mbit,latency=50us,payload=1460B,x=1Gbit/s", "link");
  EXPECT_DOUBLE_EQ(spec.get_bandwidth_bits_per_s("bandwidth", 0), 100e6);
  EXPECT_DOUBLE_EQ(spec.get_seconds("latency", 0), 50e-6);
  EXPECT_DOUBLE_EQ(spec.get_bytes("payload", 0), 1460);
  EXPECT_DOUBLE_EQ(spec.get_bandwidth_bits_per_s("x", 0), 1e9);
  Spec bad = Spec::parse_params("latency=5parsecs", "link");
  EXPECT_THROW((void)bad.get_seconds("latency", 0), InvalidArgument);
}

}  // namespace
}  // namespace thinwire
