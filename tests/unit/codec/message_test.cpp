#include "thinwire/codec/message.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {
namespace {

std::vector<std::byte> sample_message() {
  const std::vector<float> v = {1.0f, -2.5f, 3.25f};
  return make_codec("identity")->encode(v);
}

TEST(MessageTest, HeaderFieldsRoundTrip) {
  const auto msg = sample_message();
  ASSERT_EQ(msg.size(), kHeaderBytes + 12);
  const MessageView view = parse_message(msg);
  EXPECT_EQ(view.header.codec, CodecId::kIdentity);
  EXPECT_EQ(view.header.elements, 3u);
  EXPECT_EQ(view.header.payload_bytes, 12u);
  EXPECT_EQ(view.params.size(), 0u);
}

TEST(MessageTest, RejectsDamage) {
  const auto msg = sample_message();
  auto truncated = msg;
  truncated.pop_back();
  EXPECT_THROW((void)parse_message(truncated), CorruptMessage);
  auto extended = msg;
  extended.push_back(std::byte{0});
  EXPECT_THROW((void)parse_message(extended), CorruptMessage);
  for (std::size_t i = 0; i < msg.size(); ++i) {
    auto flipped = msg;
    flipped[i] ^= std::byte{0x10};
    EXPECT_THROW((void)parse_message(flipped), CorruptMessage) << "byte " << i;
  }
  EXPECT_THROW((void)parse_message(std::span<const std::byte>{}), CorruptMessage);
}

TEST(MessageTest, DecodeChecksOutputSize) {
  const auto msg = sample_message();
  std::vector<float> out(2);
  EXPECT_THROW(decode(msg, out, DecodeMode::kOverwrite), InvalidArgument);
  out.resize(3);
  decode(msg, out, DecodeMode::kOverwrite);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -2.5f, 3.25f}));
  decode(msg, out, DecodeMode::kAccumulate);
  EXPECT_EQ(out, (std::vector<float>{2.0f, -5.0f, 6.5f}));
}

TEST(MessageTest, InspectReportsTheCodec) {
  const MessageInfo info = inspect(sample_message());
  EXPECT_EQ(info.codec, "identity");
  EXPECT_EQ(info.spec, "identity");
  EXPECT_EQ(info.elements, 3u);
  EXPECT_EQ(info.bytes, kHeaderBytes + 12);
}

}  // namespace
}  // namespace thinwire::codec
