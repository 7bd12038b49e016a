// The codec contract (SPEC §2), checked for every spec in example_codec_specs() over several
// lengths and input shapes, so that a newly registered codec is covered without touching this
// file:
//   - encoded size <= max_encoded_bytes(d); the header names the codec and d;
//   - the same (seed, rank, iteration) gives the same bytes; deterministic codecs ignore them;
//   - lossless codecs decode bit for bit; every decode of finite input is finite;
//   - accumulate == prior + overwrite, exactly (the same decoded values are added);
//   - spec() round-trips through make_codec and through the message's params;
//   - truncated, extended, bit-flipped and random byte strings throw CorruptMessage, never
//     anything else and never a crash (ASan and UBSan check the "never" part in CI);
//   - decode_unverified (no checksum) on damaged messages either succeeds or throws
//     CorruptMessage: this is what exercises the payload decoders on hostile input;
//   - non-finite input throws InvalidArgument.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <typeinfo>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/message.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

enum class Shape { kGaussian, kZeros, kOneHuge, kConstant };

const char* shape_name(Shape s) {
  switch (s) {
    case Shape::kGaussian:
      return "gaussian";
    case Shape::kZeros:
      return "zeros";
    case Shape::kOneHuge:
      return "onehuge";
    case Shape::kConstant:
      return "constant";
  }
  return "?";
}

struct ContractCase {
  std::size_t index = 0;  // position in example_codec_specs(), keeps test names unique
  std::string spec;
  std::size_t length = 0;
  Shape shape = Shape::kGaussian;
};

// Messages up to this size get every prefix and every bit flip; larger ones a sample.
constexpr std::size_t kExhaustiveBytes = 256;
constexpr std::size_t kSampledDamages = 96;
// decode_unverified sizes its output from the (possibly damaged) element count, up to this.
constexpr std::uint64_t kMaxUnverifiedElements = std::uint64_t{1} << 22;

std::vector<ContractCase> all_cases() {
  std::vector<ContractCase> cases;
  const std::vector<std::string> specs = example_codec_specs();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    cases.push_back({i, specs[i], 0, Shape::kGaussian});  // one empty vector is enough
    for (std::size_t length : {1u, 5u, 1000u, 4097u}) {
      for (Shape shape : {Shape::kGaussian, Shape::kZeros, Shape::kOneHuge, Shape::kConstant}) {
        cases.push_back({i, specs[i], length, shape});
      }
    }
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<ContractCase>& info) {
  std::string name = std::to_string(info.param.index) + "_";
  for (char c : info.param.spec) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  name += "_n" + std::to_string(info.param.length);
  if (info.param.length > 0) name += std::string("_") + shape_name(info.param.shape);
  return name;
}

std::vector<float> make_input(std::size_t n, Shape shape, std::uint64_t seed) {
  std::vector<float> v(n, 0.0f);
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kTest));
  switch (shape) {
    case Shape::kGaussian:
      for (float& x : v) x = static_cast<float>(rng.next_normal());
      break;
    case Shape::kZeros:
      break;
    case Shape::kOneHuge:
      // An exploded gradient: squares overflow float, so norms must be computed with care.
      for (float& x : v) x = static_cast<float>(rng.next_normal());
      if (n > 0) v[n / 2] = 1e30f;
      break;
    case Shape::kConstant:
      std::fill(v.begin(), v.end(), -0.75f);
      break;
  }
  return v;
}

// Runs fn and checks that it throws CorruptMessage and nothing else.
template <typename Fn>
::testing::AssertionResult throws_corrupt(Fn&& fn) {
  try {
    fn();
  } catch (const CorruptMessage&) {
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw " << typeid(e).name() << ": " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << "threw a non-std exception";
  }
  return ::testing::AssertionFailure() << "accepted the damaged message";
}

// Runs fn and checks that it either returns or throws CorruptMessage.
template <typename Fn>
::testing::AssertionResult succeeds_or_throws_corrupt(Fn&& fn) {
  try {
    fn();
  } catch (const CorruptMessage&) {
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw " << typeid(e).name() << ": " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << "threw a non-std exception";
  }
  return ::testing::AssertionSuccess();
}

// Positions to damage: all of [0, n) when n is small, else both ends and a seeded sample.
std::vector<std::size_t> positions(std::size_t n, std::size_t exhaustive_limit,
                                   std::uint64_t seed) {
  std::vector<std::size_t> out;
  if (n <= exhaustive_limit) {
    for (std::size_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (std::size_t i = 0; i < 40; ++i) {
    out.push_back(i);
    out.push_back(n - 1 - i);
  }
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kTest);
  for (std::size_t i = 0; i < kSampledDamages; ++i) out.push_back(key.below(i, n));
  return out;
}

// Decodes without the checksum into a buffer sized from the message's own element count, as a
// receiver that trusts the header would. Skips absurd counts (the fuzzer does the same).
void decode_unverified_any(std::span<const std::byte> message, DecodeMode mode) {
  const std::uint64_t n = message_elements(message);
  if (n > kMaxUnverifiedElements) return;
  std::vector<float> out(n, 1.0f);
  decode_unverified(message, out, mode);
}

void store_u64(std::vector<std::byte>& bytes, std::size_t offset, std::uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) bytes[offset + i] = static_cast<std::byte>(v >> (8 * i));
}

class CodecContract : public ::testing::TestWithParam<ContractCase> {
 protected:
  void SetUp() override {
    const ContractCase& c = GetParam();
    CodecChoice choice = parse_codec(c.spec);
    error_feedback_ = choice.error_feedback;
    codec_ = std::move(choice.codec);
    ASSERT_NE(codec_, nullptr);
    input_ = make_input(c.length, c.shape, 1000 + c.index);
    ctx_ = {.seed = 42, .rank = 3, .iteration = 17};
    message_ = codec_->encode(input_, ctx_);
  }

  std::vector<float> decoded(std::span<const std::byte> message) const {
    std::vector<float> out(input_.size(), 0.0f);
    decode(message, out, DecodeMode::kOverwrite);
    return out;
  }

  std::unique_ptr<Codec> codec_;
  bool error_feedback_ = false;
  std::vector<float> input_;
  EncodeContext ctx_;
  std::vector<std::byte> message_;
};

TEST_P(CodecContract, Encode) {
  const std::size_t d = input_.size();
  EXPECT_LE(message_.size(), codec_->max_encoded_bytes(d));
  EXPECT_GE(message_.size(), kHeaderBytes);
  const MessageView view = parse_message(message_);
  EXPECT_EQ(view.header.codec, codec_->id());
  EXPECT_EQ(view.header.elements, d);
  EXPECT_EQ(view.header.flags, 0) << "codecs never set flags; error feedback does";
  const MessageInfo info = inspect(message_);
  EXPECT_EQ(info.bytes, message_.size());
  EXPECT_EQ(info.elements, d);

  // Same context, same bytes; also through encode_into with an exact-size buffer.
  EXPECT_EQ(codec_->encode(input_, ctx_), message_);
  std::vector<std::byte> exact(codec_->max_encoded_bytes(d));
  exact.resize(codec_->encode_into(input_, ctx_, exact));
  EXPECT_EQ(exact, message_);
  if (codec_->traits().deterministic) {
    EXPECT_EQ(codec_->encode(input_, {.seed = 9, .rank = 0, .iteration = 1}), message_);
  }

  const std::vector<float> out = decoded(message_);
  for (std::size_t i = 0; i < d; ++i) {
    ASSERT_TRUE(std::isfinite(out[i])) << "decoded element " << i << " is " << out[i];
  }
  if (codec_->traits().lossless && d > 0) {  // memcmp needs non-null pointers
    EXPECT_EQ(std::memcmp(out.data(), input_.data(), d * sizeof(float)), 0)
        << "lossless codec changed the values";
  }
}

TEST_P(CodecContract, DecodeModes) {
  const std::vector<float> over = decoded(message_);
  std::vector<float> acc = make_input(input_.size(), Shape::kGaussian, 99);
  const std::vector<float> prior = acc;
  decode(message_, acc, DecodeMode::kAccumulate);
  for (std::size_t i = 0; i < acc.size(); ++i) {
    // Exact: accumulate must add the very values that overwrite stores.
    ASSERT_EQ(acc[i], prior[i] + over[i]) << "element " << i;
  }
  std::vector<float> wrong(input_.size() + 1);
  EXPECT_THROW(decode(message_, wrong, DecodeMode::kOverwrite), InvalidArgument);
}

TEST_P(CodecContract, SpecRoundTrip) {
  const std::string spec = codec_->spec();
  const std::unique_ptr<Codec> rebuilt = make_codec(spec);
  EXPECT_EQ(rebuilt->spec(), spec);
  EXPECT_EQ(rebuilt->id(), codec_->id());
  EXPECT_EQ(rebuilt->max_encoded_bytes(input_.size()), codec_->max_encoded_bytes(input_.size()));
  EXPECT_EQ(rebuilt->encode(input_, ctx_), message_);
  // The message's params rebuild the same codec.
  EXPECT_EQ(codec_of(message_)->spec(), spec);
  // The example spec itself names this codec (with "+ef" for error feedback).
  EXPECT_EQ(parse_codec(GetParam().spec).error_feedback, error_feedback_);
}

TEST_P(CodecContract, RejectsDamagedMessages) {
  const std::size_t n = message_.size();
  std::vector<float> out(input_.size());
  for (std::size_t len : positions(n, kExhaustiveBytes, 1)) {
    const std::span<const std::byte> prefix(message_.data(), len);
    ASSERT_TRUE(throws_corrupt([&] { decode(prefix, out, DecodeMode::kOverwrite); }))
        << "truncated to " << len << " of " << n << " bytes";
  }
  for (std::size_t extra : {1u, 3u, 8u, 64u}) {
    std::vector<std::byte> longer = message_;
    longer.resize(n + extra, std::byte{0});
    ASSERT_TRUE(throws_corrupt([&] { decode(longer, out, DecodeMode::kOverwrite); }))
        << "extended by " << extra << " bytes";
  }
  for (std::size_t bit : positions(8 * n, 8 * kExhaustiveBytes, 2)) {
    std::vector<std::byte> flipped = message_;
    flipped[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
    ASSERT_TRUE(throws_corrupt([&] { decode(flipped, out, DecodeMode::kAccumulate); }))
        << "bit " << bit << " flipped";
  }
  RngStream rng(RngKey::make(3, GetParam().index, GetParam().length, RngPurpose::kTest));
  for (int trial = 0; trial < 32; ++trial) {
    std::vector<std::byte> junk(rng.next_below(2 * n + 8));
    for (std::byte& b : junk) b = static_cast<std::byte>(rng.next_bits());
    if (trial % 2 == 0 && junk.size() >= 4) {
      // Past the magic and version, so the length and checksum checks are reached.
      std::memcpy(junk.data(), message_.data(), 4);
    }
    ASSERT_TRUE(throws_corrupt([&] { decode(junk, out, DecodeMode::kOverwrite); }))
        << "random bytes, trial " << trial;
  }
}

TEST_P(CodecContract, UnverifiedDecodeIsSafe) {
  const std::size_t n = message_.size();
  ASSERT_TRUE(
      succeeds_or_throws_corrupt([&] { decode_unverified_any(message_, DecodeMode::kOverwrite); }));
  for (std::size_t bit : positions(8 * n, 8 * kExhaustiveBytes, 4)) {
    std::vector<std::byte> flipped = message_;
    flipped[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
    const DecodeMode mode = bit % 2 == 0 ? DecodeMode::kOverwrite : DecodeMode::kAccumulate;
    ASSERT_TRUE(succeeds_or_throws_corrupt([&] { decode_unverified_any(flipped, mode); }))
        << "bit " << bit << " flipped";
  }
  // Random params and payloads behind this codec's valid header, with consistent lengths: the
  // decoder and from_params see arbitrary bytes.
  const MessageView view = parse_message(message_);
  const std::size_t params = view.params.size();
  const std::size_t payload = view.payload.size();
  RngStream rng(RngKey::make(5, GetParam().index, GetParam().length, RngPurpose::kTest));
  for (int trial = 0; trial < 48; ++trial) {
    const std::size_t len = trial % 4 == 0   ? payload
                            : trial % 4 == 1 ? rng.next_below(payload + 2)
                            : trial % 4 == 2 ? payload + 1 + rng.next_below(16)
                                             : rng.next_below(2 * payload + 64);
    std::vector<std::byte> msg(
        message_.begin(), message_.begin() + static_cast<std::ptrdiff_t>(kHeaderBytes + params));
    const bool random_params = trial % 3 == 0;
    for (std::size_t i = kHeaderBytes; random_params && i < msg.size(); ++i) {
      msg[i] = static_cast<std::byte>(rng.next_bits());
    }
    for (std::size_t i = 0; i < len; ++i) msg.push_back(static_cast<std::byte>(rng.next_bits()));
    store_u64(msg, 16, len);
    const DecodeMode mode = trial % 2 == 0 ? DecodeMode::kOverwrite : DecodeMode::kAccumulate;
    ASSERT_TRUE(succeeds_or_throws_corrupt([&] { decode_unverified_any(msg, mode); }))
        << "random payload of " << len << " bytes" << (random_params ? " and random params" : "")
        << ", trial " << trial;
  }
}

TEST_P(CodecContract, RejectsNonFiniteInput) {
  const std::size_t d = input_.size();
  if (d == 0) return;  // nothing to poison; SetUp already encoded the empty vector
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    for (std::size_t at : {std::size_t{0}, d / 2, d - 1}) {
      std::vector<float> v = input_;
      v[at] = bad;
      EXPECT_THROW((void)codec_->encode(v, ctx_), InvalidArgument) << bad << " at " << at;
    }
  }
}

// One finiteness rule for encode and decode (issue 22): a payload holding an infinity or NaN bit
// pattern where a float could be (any 4-byte window) is refused with CorruptMessage, or decodes to
// finite values; a decoder never hands out what its encoder would have refused.
TEST_P(CodecContract, DecodeNeverYieldsNonFinite) {
  const MessageView view = parse_message(message_);
  const std::size_t start = kHeaderBytes + view.params.size();
  const std::size_t payload = view.payload.size();
  if (payload < 4 || view.header.elements > kMaxUnverifiedElements) return;
  for (std::uint32_t bits : {0x7F800000U, 0xFF800000U, 0x7FC00000U}) {
    for (std::size_t at : positions(payload - 3, 64, 1)) {
      std::vector<std::byte> msg = message_;
      for (std::size_t i = 0; i < 4; ++i) {
        msg[start + at + i] = static_cast<std::byte>((bits >> (8 * i)) & 0xFF);
      }
      std::vector<float> out(view.header.elements, 0.0f);
      try {
        decode_unverified(msg, out, DecodeMode::kOverwrite);
      } catch (const CorruptMessage&) {
        continue;
      }
      for (float x : out) ASSERT_TRUE(std::isfinite(x)) << "pattern " << bits << " at " << at;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ExampleSpecs, CodecContract, ::testing::ValuesIn(all_cases()), case_name);

}  // namespace
}  // namespace thinwire::codec
