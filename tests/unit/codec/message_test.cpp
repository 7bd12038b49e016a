#include "thinwire/codec/message.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

// A payload written in pieces with begin_payload / finish(sum) gives the same message, byte for
// byte, as finish(payload_bytes) over the whole payload: params, flags and lengths included.
TEST(MessageTest, PayloadCheckedInPiecesIsTheSameMessage) {
  for (const std::size_t payload_bytes : {0UL, 5UL, 239UL, 1000UL, 5000UL}) {
    std::vector<std::byte> whole(kHeaderBytes + 3 + payload_bytes);
    std::vector<std::byte> pieces(whole.size());
    MessageWriter a(whole, CodecId::kQsgd, 77);
    MessageWriter b(pieces, CodecId::kQsgd, 77);
    for (MessageWriter* w : {&a, &b}) {
      w->set_flags(kFlagErrorFeedback);
      w->params().put_u8(9);
      w->params().put_u16(0x1234);
      const std::span<std::byte> payload = w->payload_area();
      for (std::size_t i = 0; i < payload_bytes; ++i) {
        payload[i] = static_cast<std::byte>(i * 31 + 7);
      }
    }
    ASSERT_EQ(a.finish(payload_bytes), whole.size());
    Checksum64 sum = b.begin_payload(payload_bytes);
    const std::span<std::byte> payload = b.payload_area();
    for (std::size_t at = 0; at < payload_bytes; at += 300) {
      sum.update(payload.subspan(at, std::min<std::size_t>(300, payload_bytes - at)));
    }
    ASSERT_EQ(b.finish(sum), pieces.size());
    EXPECT_EQ(pieces, whole) << payload_bytes;
    EXPECT_NO_THROW((void)parse_message(pieces));
  }
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
