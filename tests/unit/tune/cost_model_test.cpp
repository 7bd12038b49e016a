#include "thinwire/tune/cost_model.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire::tune {
namespace {

TEST(CostModelTest, BitsIsTheSize) {
  const auto model = make_cost_model("bits");
  EXPECT_EQ(model->name(), "bits");
  EXPECT_DOUBLE_EQ(model->cost(0), 0.0);
  EXPECT_DOUBLE_EQ(model->cost(12345), 12345.0);
  EXPECT_EQ(model->fill_bits(12345), 12345u);
  EXPECT_FALSE(model->link_model().has_value());
}

TEST(CostModelTest, LinearIsAlphaPlusBitsOverBeta) {
  const auto model = make_cost_model("linear:latency=2ms,bandwidth=100Mbit");
  EXPECT_EQ(model->name(), "linear");
  // C = α + b/β
  EXPECT_DOUBLE_EQ(model->cost(0), 2e-3);
  EXPECT_DOUBLE_EQ(model->cost(8'000'000), 2e-3 + 8e6 / 1e8);
  EXPECT_EQ(model->fill_bits(77), 77u);
  const auto link = model->link_model();
  ASSERT_TRUE(link.has_value());
  // The same time as the threads backend's clock for a whole-byte message.
  EXPECT_DOUBLE_EQ(link->message_seconds(1'000'000), model->cost(8'000'000));
}

TEST(CostModelTest, LinearDefaultsAreTheDefaultLink) {
  const auto model = make_cost_model("linear");
  const auto* linear = dynamic_cast<const LinearCost*>(model.get());
  ASSERT_NE(linear, nullptr);
  EXPECT_DOUBLE_EQ(linear->latency_s(), 50e-6);
  EXPECT_DOUBLE_EQ(linear->bandwidth_bits_per_s(), 1e9);
}

TEST(CostModelTest, PacketChargesWholePackets) {
  const auto model = make_cost_model("packet:payload=1460B,header=40B,per_packet=3,per_message=5");
  EXPECT_EQ(model->name(), "packet");
  const std::uint64_t p = 1460 * 8;
  // C = c_0 + c_p·⌈b/P⌉
  EXPECT_DOUBLE_EQ(model->cost(0), 5.0);
  EXPECT_DOUBLE_EQ(model->cost(1), 8.0);
  EXPECT_DOUBLE_EQ(model->cost(p), 8.0);
  EXPECT_DOUBLE_EQ(model->cost(p + 1), 11.0);
  EXPECT_DOUBLE_EQ(model->cost(10 * p - 1), 35.0);
  // Filling the last packet is free.
  EXPECT_EQ(model->fill_bits(1), p);
  EXPECT_EQ(model->fill_bits(p), p);
  EXPECT_EQ(model->fill_bits(p + 1), 2 * p);
  EXPECT_DOUBLE_EQ(model->cost(model->fill_bits(p + 1)), model->cost(p + 1));
  EXPECT_DOUBLE_EQ(model->cost(model->fill_bits(p + 1) + 1), model->cost(p + 1) + 3.0);
}

TEST(CostModelTest, EnergyPaysHeadersPerPacket) {
  const auto model =
      make_cost_model("energy:payload=100B,header=20B,per_message=1,per_packet=0.5,per_bit=0.01");
  EXPECT_EQ(model->name(), "energy");
  // C = E_0 + ⌈b/P⌉·(E_p + (P+H)·e_bit), P + H = 960 bits
  const double packet = 0.5 + 960 * 0.01;
  EXPECT_DOUBLE_EQ(model->cost(0), 1.0);
  EXPECT_DOUBLE_EQ(model->cost(800), 1.0 + packet);
  EXPECT_DOUBLE_EQ(model->cost(801), 1.0 + 2 * packet);
  EXPECT_EQ(model->fill_bits(801), 1600u);
}

TEST(CostModelTest, SpecRoundTrips) {
  for (const char* text :
       {"bits", "linear:latency=3us,bandwidth=10Gbit", "packet:payload=512B,per_packet=2",
        "energy:payload=102B,header=25B,per_bit=2.4e-7,per_message=1e-3"}) {
    const auto model = make_cost_model(text);
    const auto again = make_cost_model(model->spec());
    EXPECT_EQ(again->spec(), model->spec()) << text;
    for (std::uint64_t b : {0ULL, 1ULL, 1000ULL, 123457ULL}) {
      EXPECT_DOUBLE_EQ(again->cost(b), model->cost(b)) << text << " b=" << b;
    }
  }
}

TEST(CostModelTest, CostIsNonDecreasing) {
  for (const char* text : {"bits", "linear", "packet", "energy"}) {
    const auto model = make_cost_model(text);
    double last = model->cost(0);
    for (std::uint64_t b = 1; b < 40000; b += 7) {
      const double c = model->cost(b);
      EXPECT_GE(c, last) << text << " b=" << b;
      EXPECT_GT(c, 0.0) << text;
      last = c;
    }
  }
}

TEST(CostModelTest, RejectsBadSpecs) {
  for (const char* text :
       {"", "watts", "bits:x=1", "linear:bandwidth=0", "linear:latency=-1s", "linear:lat=1us",
        "packet:payload=0B", "packet:per_packet=0", "packet:per_message=-1", "packet:payload=x",
        "energy:per_bit=-1", "energy:per_packet=0,per_bit=0", "energy:payload=0.01B"}) {
    EXPECT_THROW((void)make_cost_model(text), InvalidArgument) << text;
  }
}

TEST(CostModelTest, ErrorsNameTheKey) {
  try {
    (void)make_cost_model("packet:per_packet=-2");
    FAIL() << "no exception";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("per_packet"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thinwire::tune
