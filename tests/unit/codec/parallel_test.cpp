// Multi-threaded encode (the `threads=T` spec key of qsgd, terngrad and sign): messages must be
// byte-identical to the one-thread encode for the same context, for every thread count, whether
// the pool runs the parts or a busy pool makes the caller run them all; errors are the same; and
// threads is a local setting that never reaches the wire.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "sparse_test_util.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

std::vector<float> gradient_like(std::size_t d, std::uint64_t seed) {
  std::vector<float> v = testing::log_uniform_vector(testing::test_key(seed), d, -5.0, 5.0);
  // A zero bucket (sends only its scale) in the middle of the second part.
  for (std::size_t i = d / 2; i < d / 2 + 1100 && i < d; ++i) v[i] = 0.0f;
  return v;
}

// Every spec that takes threads, one-thread form; the test appends ",threads=T".
const char* const kSpecs[] = {
    "qsgd:s=7,bucket=512,norm=max,coding=packed",
    "qsgd:s=127,bucket=512,norm=max,coding=packed",
    "qsgd:s=1,bucket=512,norm=max,coding=packed",
    "qsgd:s=16,bucket=1000,norm=l2,coding=packed",
    "qsgd:s=5,bucket=777,norm=l2,coding=packed",
    "qsgd:s=16,bucket=512,norm=l2,coding=elias",
    "qsgd:s=2,bucket=70000,norm=max,coding=elias",
    "terngrad:bucket=512,clip=0",
    "terngrad:bucket=999,clip=2.5",
    "sign:bucket=512",
    "sign:bucket=333",
};

std::string with_threads(const std::string& spec, unsigned t) {
  return spec + ",threads=" + std::to_string(t);
}

TEST(ParallelEncodeTest, MessagesAreByteIdenticalForEveryThreadCount) {
  // Sizes: parts of whole buckets with a short last bucket; 2^17 + 5 gives 4 parts of >= 2^15.
  const std::size_t sizes[] = {(std::size_t{1} << 16) + 3, (std::size_t{1} << 17) + 5, 200003};
  for (const std::size_t d : sizes) {
    const std::vector<float> v = gradient_like(d, d);
    for (const std::string spec : kSpecs) {
      const auto one = make_codec(spec);
      const EncodeContext ctx{.seed = 7, .rank = 1, .iteration = d};
      const std::vector<std::byte> expected = one->encode(v, ctx);
      for (const unsigned t : {2U, 3U, 4U, 7U}) {
        const auto many = make_codec(with_threads(spec, t));
        ASSERT_EQ(many->encode(v, ctx), expected) << spec << " threads=" << t << " d=" << d;
      }
      // The decoded message is the same vector whichever encoder made it (sanity: not empty).
      std::vector<float> out(d);
      decode(expected, out, DecodeMode::kOverwrite);
    }
  }
}

TEST(ParallelEncodeTest, ConcurrentCallersGetTheSameBytes) {
  // Four callers at once: at most one holds the pool, the others run their parts themselves.
  const std::size_t d = (std::size_t{1} << 17) + 5;
  const std::vector<float> v = gradient_like(d, 3);
  const auto codec = make_codec("qsgd:s=7,bucket=512,norm=max,coding=packed,threads=2");
  const auto one = make_codec("qsgd:s=7,bucket=512,norm=max,coding=packed");
  std::vector<std::vector<std::byte>> got(4);
  {
    std::vector<std::jthread> callers;
    for (std::size_t c = 0; c < got.size(); ++c) {
      callers.emplace_back([&, c] {
        for (int rep = 0; rep < 3; ++rep) {
          got[c] = codec->encode(v, {.seed = 1, .rank = static_cast<std::uint32_t>(c)});
        }
      });
    }
  }
  for (std::size_t c = 0; c < got.size(); ++c) {
    EXPECT_EQ(got[c], one->encode(v, {.seed = 1, .rank = static_cast<std::uint32_t>(c)})) << c;
  }
}

TEST(ParallelEncodeTest, NonFiniteInputGivesTheOneThreadError) {
  const std::size_t d = (std::size_t{1} << 17) + 5;
  std::vector<float> v = gradient_like(d, 5);
  v[d - 10] = std::numeric_limits<float>::quiet_NaN();  // in the last part
  for (const std::string spec : kSpecs) {
    std::string expected;
    try {
      (void)make_codec(spec)->encode(v);
    } catch (const InvalidArgument& e) {
      expected = e.what();
    }
    ASSERT_FALSE(expected.empty()) << spec;
    try {
      (void)make_codec(with_threads(spec, 4))->encode(v);
      ADD_FAILURE() << spec << ": no error with threads";
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.what(), expected) << spec;
    }
  }
}

TEST(ParallelEncodeTest, ThreadsIsALocalSettingNotOnTheWire) {
  for (const std::string spec : kSpecs) {
    const auto one = make_codec(spec);
    const auto many = make_codec(with_threads(spec, 2));
    EXPECT_EQ(one->spec(), spec);
    EXPECT_EQ(many->spec(), with_threads(spec, 2));
    EXPECT_EQ(make_codec(many->spec())->spec(), many->spec());
    const std::vector<float> v = gradient_like(1000, 1);
    EXPECT_EQ(codec_of(many->encode(v))->spec(), spec);
    EXPECT_EQ(make_codec(with_threads(spec, 1))->spec(), spec);
  }
}

TEST(ParallelEncodeTest, BadThreadCountsAreRejected) {
  for (const char* bad : {"qsgd:threads=0", "qsgd:threads=65", "terngrad:threads=0",
                          "sign:threads=100", "qsgd:threads=two"}) {
    EXPECT_THROW((void)make_codec(bad), InvalidArgument) << bad;
  }
  try {
    (void)make_codec("qsgd:threads=0");
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("threads must be in [1, 64]"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace thinwire::codec
