#include "thinwire/codec/error_feedback.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "sparse_test_util.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {
namespace {

std::shared_ptr<const Codec> shared_codec(const std::string& spec) { return make_codec(spec); }

std::vector<float> step_vector(std::uint64_t t, std::size_t d) {
  return testing::normal_vector(1000 + t, d);
}

// Telescoping: e_T = Σ_t v_t − Σ_t decode(c_t) exactly in real arithmetic. In fp32 each step
// rounds s = e + v and e' = s − decode(c) once each (unit roundoff u = 2^-24), so the identity
// holds per element to within Σ_t u·(|e_{t-1}| + |v_t| + |e_t|); we allow twice that.
void expect_telescoping(const std::string& spec) {
  const std::size_t d = 200;
  const int steps = 50;
  ErrorFeedback ef(shared_codec(spec), d);
  std::vector<double> sum_v(d, 0.0);
  std::vector<double> sum_decoded(d, 0.0);
  std::vector<double> tolerance(d, 0.0);
  const double u = std::ldexp(1.0, -24);
  for (int t = 0; t < steps; ++t) {
    const std::vector<float> v = step_vector(std::uint64_t(t), d);
    const std::vector<float> before(ef.residual().begin(), ef.residual().end());
    const auto message = ef.encode(v, {.seed = 9, .rank = 1, .iteration = std::uint64_t(t)});
    ASSERT_LE(message.size(), ef.max_encoded_bytes());
    EXPECT_TRUE(inspect(message).error_feedback) << spec;
    const std::vector<float> decoded = testing::decode_vector(message);  // verifies the checksum
    for (std::size_t i = 0; i < d; ++i) {
      sum_v[i] += v[i];
      sum_decoded[i] += decoded[i];
      tolerance[i] +=
          2 * u * (std::fabs(before[i]) + std::fabs(v[i]) + std::fabs(ef.residual()[i]));
    }
  }
  for (std::size_t i = 0; i < d; ++i) {
    EXPECT_NEAR(sum_decoded[i] + ef.residual()[i], sum_v[i], tolerance[i] + 1e-30)
        << spec << " element " << i;
  }
}

TEST(ErrorFeedbackTest, DecodedMessagesTelescope) {
  for (const char* spec :
       {"topk:k=0.05", "topk:k=0.1,values=qsgd,s=4", "randk:k=0.1", "randk:k=0.1,shared_seed=3",
        "wangni:density=0.1", "threshold:tau=1.5", "qsgd:s=4", "sign", "identity"}) {
    expect_telescoping(spec);
  }
}

TEST(ErrorFeedbackTest, LosslessCodecLeavesNoResidual) {
  ErrorFeedback ef(shared_codec("identity"), 30);
  for (std::uint64_t t = 0; t < 5; ++t) {
    const auto v = step_vector(t, 30);
    EXPECT_EQ(testing::decode_vector(ef.encode(v)), v);
    for (const float e : ef.residual()) EXPECT_EQ(e, 0.0f);
  }
}

TEST(ErrorFeedbackTest, TopKEventuallySendsEverything) {
  // With memory, an element that top-k keeps skipping accumulates until it is sent. Top-k is a
  // δ-contraction with δ = k/d (||x − top_k(x)||² <= (1 − δ)||x||²), so for a constant input the
  // residual stays below ||v||·√(1−δ)/(1 − √(1−δ)) and the mean decoded message is within that
  // over T of v.
  const std::size_t d = 20;
  ErrorFeedback ef(shared_codec("topk:k=2"), d);
  const std::vector<float> v = testing::normal_vector(5, d);
  double norm = 0;
  for (const float x : v) norm += static_cast<double>(x) * x;
  norm = std::sqrt(norm);
  const double c = std::sqrt(1.0 - 2.0 / d);
  const int steps = 2000;
  const double tolerance = 1.01 * norm * c / (1.0 - c) / steps;
  std::vector<double> sum(d, 0.0);
  for (int t = 0; t < steps; ++t) {
    const auto decoded = testing::decode_vector(ef.encode(v));
    for (std::size_t i = 0; i < d; ++i) sum[i] += decoded[i];
  }
  for (std::size_t i = 0; i < d; ++i) {
    EXPECT_NEAR(sum[i] / steps, v[i], tolerance) << i;
    EXPECT_NE(sum[i], 0.0) << "element " << i << " was never sent";
  }
}

TEST(ErrorFeedbackTest, RejectsBadInputWithoutTouchingTheResidual) {
  ErrorFeedback ef(shared_codec("topk:k=3"), 10);
  (void)ef.encode(step_vector(0, 10));
  const std::vector<float> before(ef.residual().begin(), ef.residual().end());
  EXPECT_THROW((void)ef.encode(step_vector(1, 11)), InvalidArgument);
  std::vector<float> bad = step_vector(1, 10);
  bad[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW((void)ef.encode(bad), InvalidArgument);
  EXPECT_EQ(std::vector<float>(ef.residual().begin(), ef.residual().end()), before);
  ef.reset();
  for (const float e : ef.residual()) EXPECT_EQ(e, 0.0f);
  EXPECT_THROW(ErrorFeedback(nullptr, 3), InvalidArgument);
}

TEST(ErrorFeedbackTest, AnotherCodecPerMessageSharesTheResidual) {
  ErrorFeedback ef(shared_codec("topk:k=1"), 8);
  const auto other = make_codec("topk:k=4");
  const auto v = step_vector(2, 8);
  std::vector<std::byte> out(other->max_encoded_bytes(8));
  out.resize(ef.encode_into(*other, v, {}, out));
  EXPECT_EQ(codec_of(out)->spec(), other->spec());
  EXPECT_TRUE(inspect(out).error_feedback);
  const auto decoded = testing::decode_vector(out);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(ef.residual()[i], v[i] - decoded[i]) << i;
}

TEST(ErrorFeedbackTest, MakeFromSpecWithPlusEf) {
  const CodecChoice choice = parse_codec("qsgd:s=4+ef");
  EXPECT_TRUE(choice.error_feedback);
  const auto ef = make_error_feedback(choice, 64);
  EXPECT_EQ(ef->dimension(), 64U);
  EXPECT_EQ(ef->codec().spec(), choice.codec->spec());
  const auto message = ef->encode(step_vector(0, 64));
  EXPECT_TRUE(inspect(message).error_feedback);
  EXPECT_EQ(inspect(message).codec, "qsgd");
  EXPECT_THROW((void)make_error_feedback(CodecChoice{}, 3), InvalidArgument);
}

TEST(ErrorFeedbackTest, SetMessageFlagsValidates) {
  auto message = make_codec("identity")->encode(step_vector(0, 4));
  EXPECT_FALSE(inspect(message).error_feedback);
  set_message_flags(message, kFlagErrorFeedback);
  EXPECT_TRUE(inspect(message).error_feedback);  // inspect verifies the re-stamped checksum
  set_message_flags(message, 0);
  EXPECT_FALSE(inspect(message).error_feedback);
  EXPECT_THROW(set_message_flags(message, 0x02), InvalidArgument);
  message[kHeaderBytes] ^= std::byte{1};
  EXPECT_THROW(set_message_flags(message, kFlagErrorFeedback), CorruptMessage);
}

std::string saved_state(const ErrorFeedback& ef) {
  std::ostringstream os;
  ef.save(os);
  return os.str();
}

TEST(ErrorFeedbackTest, SaveLoadRoundTripContinuesIdentically) {
  const std::size_t d = 100;
  ErrorFeedback a(shared_codec("topk:k=0.1"), d);
  for (std::uint64_t t = 0; t < 5; ++t) (void)a.encode(step_vector(t, d));
  // Inside a larger stream: load reads exactly its own bytes.
  std::stringstream stream;
  stream << "model";
  a.save(stream);
  stream << "tail";
  ErrorFeedback b(shared_codec("topk:k=0.1"), d);
  std::string prefix(5, '\0');
  stream.read(prefix.data(), 5);
  b.load(stream);
  std::string tail;
  stream >> tail;
  EXPECT_EQ(prefix, "model");
  EXPECT_EQ(tail, "tail");
  EXPECT_EQ(std::vector<float>(a.residual().begin(), a.residual().end()),
            std::vector<float>(b.residual().begin(), b.residual().end()));
  for (std::uint64_t t = 5; t < 8; ++t) {
    const auto v = step_vector(t, d);
    EXPECT_EQ(a.encode(v, {.iteration = t}), b.encode(v, {.iteration = t})) << t;
  }
}

TEST(ErrorFeedbackTest, EmptyVector) {
  ErrorFeedback ef(shared_codec("topk:k=1"), 0);
  EXPECT_TRUE(testing::decode_vector(ef.encode(std::vector<float>{})).empty());
  ErrorFeedback copy(shared_codec("topk:k=1"), 0);
  std::istringstream is(saved_state(ef));
  copy.load(is);
  EXPECT_EQ(copy.dimension(), 0U);
}

TEST(ErrorFeedbackTest, LoadRejectsCorruptOrMismatchedState) {
  const std::size_t d = 16;
  ErrorFeedback source(shared_codec("sign"), d);
  (void)source.encode(step_vector(0, d));
  const std::string state = saved_state(source);
  ASSERT_EQ(state.size(), 20 + source.codec().spec().size() + 4 * d + 8);

  ErrorFeedback target(shared_codec("sign"), d);
  (void)target.encode(step_vector(1, d));
  const std::vector<float> before(target.residual().begin(), target.residual().end());
  auto unchanged = [&] {
    return std::vector<float>(target.residual().begin(), target.residual().end()) == before;
  };

  for (std::size_t i = 0; i < state.size(); ++i) {
    std::string flipped = state;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x04);
    std::istringstream is(flipped);
    if (i >= 8 && i < 16) {
      // The dimension field: read as a state for another dimension.
      EXPECT_THROW(target.load(is), InvalidArgument) << "byte " << i;
    } else {
      EXPECT_THROW(target.load(is), CorruptMessage) << "byte " << i;
    }
    ASSERT_TRUE(unchanged()) << "byte " << i;
  }
  for (std::size_t n = 0; n < state.size(); ++n) {
    std::istringstream is(state.substr(0, n));
    EXPECT_THROW(target.load(is), CorruptMessage) << "truncated to " << n;
    ASSERT_TRUE(unchanged());
  }
  std::istringstream other_codec(state);
  ErrorFeedback wrong_codec(shared_codec("sign:bucket=4"), d);
  EXPECT_THROW(wrong_codec.load(other_codec), InvalidArgument);
  std::istringstream other_dimension(state);
  ErrorFeedback wrong_dimension(shared_codec("sign"), d + 1);
  EXPECT_THROW(wrong_dimension.load(other_dimension), InvalidArgument);

  std::istringstream good(state);
  target.load(good);
  EXPECT_EQ(std::vector<float>(target.residual().begin(), target.residual().end()),
            std::vector<float>(source.residual().begin(), source.residual().end()));
}

}  // namespace
}  // namespace thinwire::codec
