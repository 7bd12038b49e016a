#include "thinwire/comm/link_model.hpp"

#include <gtest/gtest.h>

#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire::comm {
namespace {

TEST(LinkModelTest, Defaults) {
  const LinkModel model = LinkModel::parse("");
  EXPECT_EQ(model.kind, LinkKind::kLinear);
  EXPECT_DOUBLE_EQ(model.bandwidth_bits_per_s, 1e9);
  EXPECT_DOUBLE_EQ(model.latency_s, 50e-6);
  EXPECT_DOUBLE_EQ(model.overhead, 1);  // the plain α–β model unless asked for framing
}

TEST(LinkModelTest, LinearSpec) {
  const LinkModel model = LinkModel::parse("bandwidth=100Mbit,latency=2ms");
  EXPECT_EQ(model.kind, LinkKind::kLinear);
  EXPECT_DOUBLE_EQ(model.bandwidth_bits_per_s, 1e8);
  EXPECT_DOUBLE_EQ(model.latency_s, 2e-3);
  // α + 8b/β
  EXPECT_DOUBLE_EQ(model.message_seconds(0), 2e-3);
  EXPECT_DOUBLE_EQ(model.message_seconds(1'000'000), 2e-3 + 8e6 / 1e8);
  EXPECT_DOUBLE_EQ(LinkModel::parse("bandwidth=10MB/s").bandwidth_bits_per_s, 8e7);
}

TEST(LinkModelTest, LinearOverheadScalesOnlyTheBandwidthTerm) {
  // TCP/IPv4 over Ethernet, 1500-byte MTU, timestamps on: 1448 payload bytes per 1514-byte frame.
  const LinkModel model = LinkModel::parse("bandwidth=10Mbit,latency=1ms,overhead=1.0456");
  EXPECT_DOUBLE_EQ(model.overhead, 1.0456);
  // α + 8·o·b/β: α is not scaled, the wire time of the bytes is.
  EXPECT_DOUBLE_EQ(model.message_seconds(0), 1e-3);
  EXPECT_DOUBLE_EQ(model.message_seconds(1'000'000), 1e-3 + 8e6 * 1.0456 / 1e7);
  // o = 1514/1448: 1448 payload bytes take one 1514-byte frame's time. std::to_string keeps 6
  // decimals, so o is exact to 5e-7 and the time to 5e-7 relative.
  const LinkModel framed =
      LinkModel::parse("bandwidth=1Gbit,latency=0,overhead=" + std::to_string(1514.0 / 1448.0));
  const double frame_s = 1514.0 * 8.0 / 1e9;
  EXPECT_NEAR(framed.message_seconds(1448), frame_s, 1e-6 * frame_s);
}

TEST(LinkModelTest, PacketSpec) {
  const LinkModel model =
      LinkModel::parse("model=packet,payload=1000B,header=24B,bandwidth=1Gbit,latency=10us");
  EXPECT_EQ(model.kind, LinkKind::kPacket);
  const double per_packet = (1000.0 + 24.0) * 8.0 / 1e9;
  // α + ⌈b/P⌉·(P + H)·8/β: a partly filled packet costs a full one.
  EXPECT_DOUBLE_EQ(model.message_seconds(0), 10e-6);
  EXPECT_DOUBLE_EQ(model.message_seconds(1), 10e-6 + per_packet);
  EXPECT_DOUBLE_EQ(model.message_seconds(1000), 10e-6 + per_packet);
  EXPECT_DOUBLE_EQ(model.message_seconds(1001), 10e-6 + 2 * per_packet);
  EXPECT_DOUBLE_EQ(model.message_seconds(2500), 10e-6 + 3 * per_packet);
}

TEST(LinkModelTest, PacketDefaults) {
  const LinkModel model = LinkModel::parse("model=packet");
  EXPECT_DOUBLE_EQ(model.payload_bytes, 1460);
  EXPECT_DOUBLE_EQ(model.header_bytes, 40);
  EXPECT_DOUBLE_EQ(model.message_seconds(1460), 50e-6 + 1500.0 * 8.0 / 1e9);
}

TEST(LinkModelTest, SpecRoundTrips) {
  for (const char* spec : {"bandwidth=100Mbit,latency=50us", "bandwidth=3.3Gbit,latency=0",
                           "bandwidth=10Mbit,latency=421us,overhead=1.068",
                           "model=packet,payload=512B,header=40B,bandwidth=1Mbit,latency=1ms"}) {
    const LinkModel model = LinkModel::parse(spec);
    const LinkModel again = LinkModel::parse(model.to_spec());
    EXPECT_EQ(again.kind, model.kind) << spec;
    EXPECT_EQ(again.bandwidth_bits_per_s, model.bandwidth_bits_per_s) << model.to_spec();
    EXPECT_EQ(again.latency_s, model.latency_s) << model.to_spec();
    EXPECT_EQ(again.payload_bytes, model.payload_bytes) << model.to_spec();
    EXPECT_EQ(again.header_bytes, model.header_bytes) << model.to_spec();
    EXPECT_EQ(again.overhead, model.overhead) << model.to_spec();
  }
}

void expect_rejected(const std::string& spec, const std::string& mentions) {
  try {
    (void)LinkModel::parse(spec);
    ADD_FAILURE() << "accepted '" << spec << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos)
        << spec << " -> " << e.what();
  }
}

TEST(LinkModelTest, RejectsBadSpecs) {
  expect_rejected("bandwith=1Gbit", "bandwith");
  expect_rejected("bandwidth=fast", "bandwidth");
  expect_rejected("bandwidth=0", "bandwidth");
  expect_rejected("bandwidth=-5Mbit", "bandwidth");
  expect_rejected("latency=-1ms", "latency");
  expect_rejected("latency=1parsec", "latency");
  expect_rejected("model=carrier-pigeon", "model");
  expect_rejected("model=packet,payload=0B", "payload");
  expect_rejected("payload=1000B", "payload");  // only the packet form has packets
  expect_rejected("overhead=0.9", "overhead");  // framing never shrinks a message
  expect_rejected("overhead=inf", "overhead");
  expect_rejected("model=packet,overhead=1.05", "overhead");  // the packet form has its own framing
  expect_rejected("bandwidth", "key=value");
}

TEST(LinkModelTest, ValidateCatchesHandBuiltModels) {
  EXPECT_NO_THROW(LinkModel{}.validate());
  LinkModel model;
  model.latency_s = -1;
  EXPECT_THROW(model.validate(), InvalidArgument);
  model = LinkModel{};
  model.kind = LinkKind::kPacket;
  model.payload_bytes = 0;
  EXPECT_THROW(model.validate(), InvalidArgument);
  model = LinkModel{};
  model.overhead = 0.5;
  EXPECT_THROW(model.validate(), InvalidArgument);
}

}  // namespace
}  // namespace thinwire::comm
