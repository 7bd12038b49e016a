#include "thinwire/codec/topk.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sparse_test_util.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire::codec {
namespace {

using testing::decode_vector;
using testing::expect_rejected;
using testing::make_payload;
using testing::payload_of;
using testing::top_k_oracle;
using testing::with_payload;

// Decoding keeps exactly the oracle's indices with their exact values and zeros elsewhere.
void expect_exact_top_k(const Codec& codec, const std::vector<float>& v, std::size_t k,
                        const char* what) {
  const auto message = codec.encode(v);
  ASSERT_LE(message.size(), codec.max_encoded_bytes(v.size())) << what;
  const std::vector<float> decoded = decode_vector(message);
  std::vector<float> expected(v.size(), 0.0f);
  for (const std::uint32_t i : top_k_oracle(v, k)) expected[i] = v[i];
  ASSERT_EQ(decoded.size(), expected.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    // Bit-exact, so a kept -0.0 must stay -0.0 and a dropped element must be +0.0.
    EXPECT_EQ(std::bit_cast<std::uint32_t>(decoded[i]), std::bit_cast<std::uint32_t>(expected[i]))
        << what << ": element " << i << " of " << v.size() << ", k = " << k;
  }
}

TEST(TopKTest, KeptCountFollowsTheSpec) {
  EXPECT_EQ(TopKCodec(1).kept(0), 0U);
  EXPECT_EQ(TopKCodec(1).kept(10), 1U);
  EXPECT_EQ(TopKCodec(25).kept(10), 10U);   // capped at d
  EXPECT_EQ(TopKCodec(0.01).kept(10), 1U);  // at least one
  EXPECT_EQ(TopKCodec(0.01).kept(1000), 10U);
  EXPECT_EQ(TopKCodec(0.25).kept(10), 3U);  // round(2.5) = 3 (half away from zero)
  EXPECT_EQ(TopKCodec(0.999).kept(10), 10U);
  EXPECT_THROW(TopKCodec(0.0), InvalidArgument);
  EXPECT_THROW(TopKCodec(-1.0), InvalidArgument);
  EXPECT_THROW(TopKCodec(2.5), InvalidArgument);
  EXPECT_THROW(TopKCodec(1e10), InvalidArgument);
  EXPECT_THROW((void)make_codec("topk"), InvalidArgument);
  EXPECT_THROW((void)make_codec("topk:k=nan"), InvalidArgument);
  EXPECT_THROW((void)make_codec("topk:k=3,index=gamma"), InvalidArgument);
  EXPECT_THROW((void)make_codec("topk:k=3,s=4"), InvalidArgument);  // qsgd key without values=qsgd
}

TEST(TopKTest, KeepsExactlyTheLargestMagnitudes) {
  for (const char* index : {"elias", "fixed"}) {
    for (const std::size_t k : {1U, 2U, 3U, 5U, 8U, 40U}) {
      const auto codec = make_codec("topk:k=" + std::to_string(k) + ",index=" + std::string(index));
      expect_exact_top_k(*codec, {}, k, "empty");
      expect_exact_top_k(*codec, {-2.5f}, k, "d = 1");
      expect_exact_top_k(*codec, std::vector<float>(13, 0.0f), k, "zeros");
      expect_exact_top_k(*codec, std::vector<float>(13, -0.0f), k, "negative zeros");
      expect_exact_top_k(*codec, std::vector<float>(21, 0.75f), k, "constant");
      std::vector<float> huge(30, -1e-20f);
      huge[29] = -3e38f;
      expect_exact_top_k(*codec, huge, k, "one huge entry");
      for (std::uint64_t seed = 0; seed < 5; ++seed) {
        expect_exact_top_k(*codec, testing::tied_vector(seed, 40), k, "ties");
        expect_exact_top_k(*codec, testing::normal_vector(seed, 40), k, "normal");
      }
    }
  }
}

TEST(TopKTest, FractionOfTheLength) {
  const auto codec = make_codec("topk:k=0.1");
  for (const std::size_t d : {1U, 4U, 5U, 15U, 1000U}) {
    expect_exact_top_k(*codec, testing::normal_vector(d, d),
                       static_cast<TopKCodec&>(*codec).kept(d), "fraction");
  }
}

TEST(TopKTest, SpecIsCanonical) {
  for (const char* text : {"topk:k=10", "topk:k=0.01,index=fixed", "topk:values=qsgd,k=0.5,s=4",
                           "topk:k=3,values=qsgd,s=2,bucket=0,norm=max,coding=elias"}) {
    const auto codec = make_codec(text);
    const std::string spec = codec->spec();
    EXPECT_EQ(make_codec(spec)->spec(), spec) << text;
    const auto message = codec->encode(testing::normal_vector(1, 50));
    EXPECT_EQ(codec_of(message)->spec(), spec) << text;
  }
  EXPECT_EQ(make_codec("topk:k=10")->spec(), "topk:k=10,index=elias,values=fp32");
  EXPECT_EQ(make_codec("topk:k=0.01,index=fixed")->spec(), "topk:k=0.01,index=fixed,values=fp32");
  EXPECT_EQ(make_codec("topk:k=0.5,values=qsgd,s=4")->spec(),
            "topk:k=0.5,index=elias,values=qsgd,s=4,bucket=512,norm=l2,coding=packed");
  EXPECT_TRUE(make_codec("topk:k=1")->traits().deterministic);
  EXPECT_FALSE(make_codec("topk:k=1,values=qsgd")->traits().deterministic);
  EXPECT_FALSE(make_codec("topk:k=1")->traits().unbiased);
}

TEST(TopKTest, AccumulateAdds) {
  const auto codec = make_codec("topk:k=3");
  const std::vector<float> v = {1.0f, -5.0f, 0.5f, 4.0f, -3.0f, 0.0f};
  std::vector<float> out(6, 1.0f);
  decode(codec->encode(v), out, DecodeMode::kAccumulate);
  EXPECT_EQ(out, (std::vector<float>{1.0f, -4.0f, 1.0f, 5.0f, -2.0f, 1.0f}));
}

TEST(TopKTest, SizeBoundHoldsForWorstCaseGaps) {
  // Gaps of 2 are the most expensive per unit of d for Elias-delta (4 bits per gap of 2); sweep
  // every k for a range of d with the kept set placed at every stride.
  for (const char* index : {"elias", "fixed"}) {
    for (std::size_t d = 1; d <= 70; ++d) {
      for (std::size_t k = 1; k <= d; ++k) {
        const auto codec =
            make_codec("topk:k=" + std::to_string(k) + ",index=" + std::string(index));
        for (std::size_t stride = 1; stride <= 3; ++stride) {
          std::vector<float> v(d, 0.0f);
          for (std::size_t i = 0, n = 0; i < d && n < k; i += stride, ++n) v[i] = 1.0f;
          const auto message = codec->encode(v);
          ASSERT_LE(message.size(), codec->max_encoded_bytes(d))
              << index << " d = " << d << " k = " << k << " stride = " << stride;
        }
      }
    }
  }
  // Sparse selections in a long vector: the Jensen bound (about log2(d/k) + 2 bits per index)
  // must still hold, and be far below 32 bits per index.
  const auto codec = make_codec("topk:k=100");
  std::vector<float> v(1 << 20, 0.0f);
  for (std::size_t n = 0; n < 100; ++n) v[(n * 10487) % v.size()] = 1.0f + static_cast<float>(n);
  const auto message = codec->encode(v);
  EXPECT_LE(message.size(), codec->max_encoded_bytes(v.size()));
  EXPECT_LT(codec->max_encoded_bytes(v.size()), kHeaderBytes + 10 + 100 * (4 + 3));
}

TEST(TopKTest, EliasIndicesAreSmallerThanFixedForSparseSelections) {
  const std::vector<float> v = testing::normal_vector(3, 100000);
  const auto elias = make_codec("topk:k=0.001,index=elias")->encode(v);
  const auto fixed = make_codec("topk:k=0.001,index=fixed")->encode(v);
  EXPECT_LT(elias.size(), fixed.size());
  EXPECT_EQ(decode_vector(elias), decode_vector(fixed));
}

TEST(TopKTest, QsgdValuesStayOnTheKeptIndices) {
  const std::vector<float> v = testing::normal_vector(11, 2000);
  const auto codec = make_codec("topk:k=0.05,values=qsgd,s=64,bucket=0,norm=l2,coding=elias");
  const std::size_t k = static_cast<const TopKCodec&>(*codec).kept(v.size());
  const std::vector<std::uint32_t> kept = top_k_oracle(v, k);
  double norm2 = 0;
  for (const std::uint32_t i : kept) norm2 += static_cast<double>(v[i]) * v[i];
  // QSGD moves each value by at most one level, ||u||/s, with u the kept values (one bucket).
  const double step = std::sqrt(norm2) / 64.0 * (1 + 1e-5);
  std::vector<float> mean(v.size(), 0.0f);
  const int trials = 200;
  for (int t = 0; t < trials; ++t) {
    const auto message = codec->encode(v, {.seed = 5, .rank = 0, .iteration = std::uint64_t(t)});
    ASSERT_LE(message.size(), codec->max_encoded_bytes(v.size()));
    const std::vector<float> decoded = decode_vector(message);
    std::size_t j = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (j < kept.size() && kept[j] == i) {
        ASSERT_LE(std::fabs(decoded[i] - v[i]), step) << "element " << i;
        ++j;
      } else {
        ASSERT_EQ(decoded[i], 0.0f) << "element " << i << " is not among the top k";
      }
      mean[i] += decoded[i] / trials;
    }
  }
  // QSGD is unbiased on the kept values: the mean over trials is within 6 standard errors, the
  // per-element variance being at most step^2 / 4.
  const double tolerance = 6.0 * (step / 2.0) / std::sqrt(static_cast<double>(trials));
  for (const std::uint32_t i : kept) EXPECT_NEAR(mean[i], v[i], tolerance) << "element " << i;
}

TEST(TopKTest, DecoderRejectsInconsistentPayloads) {
  const std::vector<float> v = {0.0f, 3.0f, 0.0f, -4.0f, 1.0f, 0.0f, 0.0f, 0.0f};  // d = 8
  for (const char* index : {"elias", "fixed"}) {
    const bool fixed = std::string(index) == "fixed";
    const auto message = make_codec("topk:k=2,index=" + std::string(index))->encode(v);
    const auto payload = payload_of(message);
    // Sanity: an untouched rebuild decodes.
    std::vector<float> out(8);
    decode_unverified(with_payload(message, payload), out, DecodeMode::kOverwrite);
    EXPECT_EQ(out[3], -4.0f);

    auto put_index = [fixed](BitWriter& w, std::uint64_t gap_or_index) {
      if (fixed) {
        w.put(gap_or_index, 3);
      } else {
        EliasDelta::put(w, gap_or_index);
      }
    };
    auto two_values = [](BitWriter& w) {
      w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
      w.put(std::bit_cast<std::uint32_t>(2.0f), 32);
    };
    expect_rejected(with_payload(message, std::vector<std::byte>{}), "empty payload");
    auto truncated = payload;
    truncated.pop_back();
    expect_rejected(with_payload(message, truncated), "truncated");
    auto extended = payload;
    extended.push_back(std::byte{0});
    expect_rejected(with_payload(message, extended), "trailing byte");
    if (fixed) {
      // 2·3 index bits + 64 value bits = 70 bits: 2 padding bits in the last byte must be zero.
      auto padded = payload;
      padded.back() |= std::byte{0x80};
      expect_rejected(with_payload(message, padded), "non-zero padding");
      expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                     put_index(w, 5);
                                     put_index(w, 2);
                                     two_values(w);
                                   })),
                      "decreasing indices");
      expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                     put_index(w, 4);
                                     put_index(w, 4);
                                     two_values(w);
                                   })),
                      "repeated index");
    } else {
      expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                     put_index(w, 4);
                                     put_index(w, 5);  // 3 + 5 = index 8 >= d
                                     two_values(w);
                                   })),
                      "gap past the end");
      expect_rejected(with_payload(message, make_payload([&](BitWriter& w) {
                                     put_index(w, 9);
                                     put_index(w, 1);
                                     two_values(w);
                                   })),
                      "first index out of range");
    }
    expect_rejected(
        with_payload(message, make_payload([&](BitWriter& w) {
                       put_index(w, 1);
                       put_index(w, fixed ? 3 : 2);
                       w.put(std::bit_cast<std::uint32_t>(1.0f), 32);
                       w.put(std::bit_cast<std::uint32_t>(std::numeric_limits<float>::infinity()),
                             32);
                     })),
        "infinite value");
  }
}

TEST(TopKTest, DecoderSurvivesRandomBitFlips) {
  // Every flipped payload bit: decode() rejects it (the checksum); the payload decoder alone
  // either decodes it or throws CorruptMessage before it writes anything (out is left as it was),
  // and both happen (a flipped value decodes, a flipped index or count does not). ASan checks the
  // bounds.
  for (const char* spec : {"topk:k=0.1", "topk:k=0.2,index=fixed",
                           "topk:k=0.2,values=qsgd,s=8,bucket=16,coding=elias"}) {
    SCOPED_TRACE(spec);
    const auto message = make_codec(spec)->encode(testing::normal_vector(2, 100));
    const auto payload = payload_of(message);
    std::size_t decoded = 0;
    std::size_t rejected = 0;
    for (std::size_t bit = 0; bit < 8 * payload.size(); bit += 3) {
      auto flipped = payload;
      flipped[bit / 8] ^= std::byte{static_cast<unsigned char>(1U << (bit % 8))};
      const std::vector<std::byte> damaged = with_payload(message, flipped);
      std::vector<float> out(100, 7.0f);
      EXPECT_THROW(decode(damaged, out, DecodeMode::kOverwrite), CorruptMessage) << "bit " << bit;
      try {
        decode_unverified(damaged, out, DecodeMode::kOverwrite);
        ++decoded;
      } catch (const CorruptMessage&) {
        ++rejected;
        EXPECT_EQ(out, std::vector<float>(100, 7.0f)) << "bit " << bit << " wrote before throwing";
      }
    }
    EXPECT_GT(decoded, 0U);
    EXPECT_GT(rejected, 0U);
  }
}

}  // namespace
}  // namespace thinwire::codec
