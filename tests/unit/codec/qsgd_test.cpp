#include "thinwire/codec/qsgd.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec {
namespace {

std::vector<float> gaussian(std::size_t d, std::uint64_t seed) {
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kTest));
  std::vector<float> v(d);
  for (float& x : v) x = static_cast<float>(rng.next_normal());
  return v;
}

std::vector<float> decoded(std::span<const std::byte> msg, std::size_t d) {
  std::vector<float> out(d, -7.0f);
  decode(msg, out, DecodeMode::kOverwrite);
  return out;
}

// Builds a message by hand (params and payload bits), for the decoder's corruption checks.
std::vector<std::byte> hand_message(std::size_t d, const QsgdParams& p,
                                    const std::function<void(BitWriter&)>& payload) {
  std::vector<std::byte> buf(4096);
  MessageWriter msg(buf, CodecId::kQsgd, d);
  write_qsgd_params(msg.params(), p);
  BitWriter w(msg.payload_area());
  payload(w);
  buf.resize(msg.finish(w.finish()));
  return buf;
}

void put_scale(BitWriter& w, float scale) { w.put(std::bit_cast<std::uint32_t>(scale), 32); }

// Per bucket (scale, per-element rounding probability f_i and step = scale/s), as in SPEC §2,
// computed here independently of the codec from the definition r_i = |u_i|/‖u‖.
struct Moments {
  std::vector<double> step;  // per element: scale/s of its bucket
  std::vector<double> f;     // per element: s·r_i − ⌊s·r_i⌋
};

Moments moments(const std::vector<float>& v, const QsgdParams& p) {
  Moments m;
  const std::size_t b = p.bucket == 0 ? v.size() : p.bucket;
  for (std::size_t first = 0; first < v.size(); first += b) {
    const std::size_t end = std::min(v.size(), first + b);
    double norm = 0.0;
    for (std::size_t i = first; i < end; ++i) {
      norm = p.norm == QsgdParams::Norm::kMax ? std::max(norm, std::fabs(double{v[i]}))
                                              : norm + double{v[i]} * v[i];
    }
    const float scale =
        static_cast<float>(p.norm == QsgdParams::Norm::kMax ? norm : std::sqrt(norm));
    for (std::size_t i = first; i < end; ++i) {
      const double r = scale == 0.0f ? 0.0 : std::fabs(double{v[i]}) / scale;
      const double l = std::floor(p.levels * r);
      m.step.push_back(static_cast<double>(scale) / p.levels);
      m.f.push_back(p.levels * r - l);
    }
  }
  return m;
}

TEST(QsgdTest, SpecsAreCanonicalAndValidated) {
  EXPECT_EQ(make_codec("qsgd")->spec(), "qsgd:s=16,bucket=512,norm=l2,coding=packed");
  const auto c = make_codec("qsgd:coding=elias,norm=max,s=3,bucket=0");
  EXPECT_EQ(c->spec(), "qsgd:s=3,bucket=0,norm=max,coding=elias");
  EXPECT_EQ(make_codec(c->spec())->spec(), c->spec());
  EXPECT_EQ(c->id(), CodecId::kQsgd);
  EXPECT_TRUE(c->traits().unbiased);
  EXPECT_FALSE(c->traits().deterministic);
  EXPECT_FALSE(c->traits().lossless);
  try {
    (void)make_codec("qsgd:s=0");
    FAIL() << "s=0 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "qsgd: levels must be in [1, 2^20], got 0");
  }
  EXPECT_NO_THROW((void)make_codec("qsgd:s=1048576"));
  for (const char* bad : {"qsgd:s=1048577", "qsgd:s=-1", "qsgd:norm=l3", "qsgd:coding=huffman",
                          "qsgd:bucket=4294967296", "qsgd:bucekt=5", "qsgd:s=x"}) {
    EXPECT_THROW((void)make_codec(bad), InvalidArgument) << bad;
  }
}

TEST(QsgdTest, ParamsRoundTripThroughTheWire) {
  const QsgdParams p{.levels = 77,
                     .bucket = 100,
                     .norm = QsgdParams::Norm::kMax,
                     .coding = QsgdParams::Coding::kElias};
  std::byte buf[kQsgdParamsBytes];
  ParamWriter w(buf);
  write_qsgd_params(w, p);
  ASSERT_EQ(w.size(), kQsgdParamsBytes);
  ParamReader r(buf);
  EXPECT_EQ(read_qsgd_params(r), p);
  r.finish();
  EXPECT_EQ(qsgd_params_spec(p), "s=77,bucket=100,norm=max,coding=elias");
}

// Entries exactly on the grid (s·r_i an integer) are sent exactly, whatever the seed.
TEST(QsgdTest, GridVectorsAreExact) {
  struct Case {
    const char* spec;
    std::vector<float> v;
  };
  const std::vector<Case> cases = {
      {"qsgd:s=5,bucket=0,norm=l2", {3.0f, -4.0f}},                      // ‖u‖ = 5
      {"qsgd:s=10,bucket=0,norm=l2", {0.0f, 3.0f, -4.0f, 0.0f, -0.0f}},  // levels 6, 8
      {"qsgd:s=4,bucket=3,norm=max", {4.0f, -2.0f, 0.0f, 1.0f, -3.0f, 4.0f, -8.0f}},
      {"qsgd:s=1,bucket=1,norm=l2", {-1.5f, 2.5f, 0.0f, 1e-30f}},
  };
  for (const Case& c : cases) {
    for (const char* coding : {",coding=packed", ",coding=elias"}) {
      const auto codec = make_codec(std::string(c.spec) + coding);
      for (std::uint64_t seed = 0; seed < 20; ++seed) {
        const auto out = decoded(codec->encode(c.v, {.seed = seed}), c.v.size());
        for (std::size_t i = 0; i < c.v.size(); ++i) {
          ASSERT_EQ(out[i], c.v[i]) << codec->spec() << " element " << i;
          ASSERT_FALSE(std::signbit(out[i]) && out[i] == 0.0f) << "zero decodes as +0";
        }
      }
    }
  }
}

TEST(QsgdTest, ZeroBucketsSendOnlyTheirScale) {
  std::vector<float> v(1124, 0.0f);  // buckets of 512: zero, gaussian, zero tail of 100
  const auto g = gaussian(512, 3);
  std::copy(g.begin(), g.end(), v.begin() + 512);
  const auto packed = make_codec("qsgd:s=16,bucket=512");
  const auto msg = packed->encode(v, {.seed = 1});
  // 3 scales + 512 fields of 1 + ⌈log2 17⌉ = 6 bits.
  EXPECT_EQ(msg.size(), kHeaderBytes + kQsgdParamsBytes + (3 * 32 + 512 * 6 + 7) / 8);
  const auto out = decoded(msg, v.size());
  for (std::size_t i = 0; i < 512; ++i) ASSERT_EQ(out[i], 0.0f);
  for (std::size_t i = 1024; i < v.size(); ++i) ASSERT_EQ(out[i], 0.0f);
  const auto elias = make_codec("qsgd:s=16,bucket=512,coding=elias");
  EXPECT_EQ(decoded(elias->encode(v, {.seed = 1}), v.size()), out);
  const std::vector<float> zeros(10, 0.0f);
  EXPECT_EQ(elias->encode(zeros).size(), kHeaderBytes + kQsgdParamsBytes + 4);
}

TEST(QsgdTest, EmptyAndSingleElement) {
  for (const char* spec : {"qsgd", "qsgd:coding=elias", "qsgd:bucket=0,norm=max"}) {
    const auto codec = make_codec(spec);
    const auto empty = codec->encode(std::span<const float>{});
    EXPECT_EQ(empty.size(), kHeaderBytes + kQsgdParamsBytes);
    EXPECT_EQ(codec->max_encoded_bytes(0), empty.size());
    std::vector<float> none;
    decode(empty, none, DecodeMode::kOverwrite);
    const std::vector<float> one = {-3.5f};  // r = 1: level s, exact
    EXPECT_EQ(decoded(codec->encode(one, {.seed = 5}), 1), one) << spec;
  }
}

TEST(QsgdTest, AccumulateAddsTheOverwriteResult) {
  const auto v = gaussian(1000, 4);
  for (const char* spec : {"qsgd:s=4,bucket=128", "qsgd:s=4,bucket=128,coding=elias"}) {
    const auto msg = make_codec(spec)->encode(v, {.seed = 2});
    const auto once = decoded(msg, v.size());
    std::vector<float> acc(v.size(), 1.0f);
    decode(msg, acc, DecodeMode::kAccumulate);
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(acc[i], 1.0f + once[i]) << spec << i;
  }
}

// Both wire encodings carry the same levels: identical decodes for the same context, including
// sparse buckets (Elias-delta gaps), partial last buckets and zero buckets.
TEST(QsgdTest, CodingsDecodeIdentically) {
  auto v = gaussian(5000, 5);
  for (std::size_t i = 3000; i < 3600; ++i) v[i] = 0.0f;
  for (const char* base : {"qsgd:s=1,bucket=0", "qsgd:s=2,bucket=1024", "qsgd:s=16,bucket=512",
                           "qsgd:s=70,bucket=0,norm=max", "qsgd:s=1000,bucket=333"}) {
    const auto packed = make_codec(std::string(base) + ",coding=packed");
    const auto elias = make_codec(std::string(base) + ",coding=elias");
    for (std::uint64_t it = 0; it < 3; ++it) {
      const EncodeContext ctx{.seed = 7, .rank = 1, .iteration = it};
      ASSERT_EQ(decoded(packed->encode(v, ctx), v.size()), decoded(elias->encode(v, ctx), v.size()))
          << base;
    }
  }
}

TEST(QsgdTest, SameContextSameBytes) {
  const auto v = gaussian(777, 6);
  for (const char* spec : {"qsgd", "qsgd:coding=elias,s=4"}) {
    const auto codec = make_codec(spec);
    const EncodeContext ctx{.seed = 11, .rank = 2, .iteration = 3};
    const auto msg = codec->encode(v, ctx);
    EXPECT_EQ(msg, codec->encode(v, ctx));
    EXPECT_NE(msg, codec->encode(v, {.seed = 11, .rank = 2, .iteration = 4}));
    EXPECT_NE(msg, codec->encode(v, {.seed = 11, .rank = 3, .iteration = 3}));
    EXPECT_NE(msg, codec->encode(v, {.seed = 12, .rank = 2, .iteration = 3}));
  }
}

// The RNG counter is the element index, not a position in a sequential stream: changing one
// bucket leaves the levels drawn in every other bucket unchanged.
TEST(QsgdTest, ElementsDrawIndependentNumbers) {
  const auto v = gaussian(1000, 15);
  auto w = v;
  for (std::size_t i = 200; i < 300; ++i) w[i] = (i % 2 == 0) ? 0.0f : w[i] * 3.0f;
  for (const char* spec : {"qsgd:s=4,bucket=100", "qsgd:s=4,bucket=100,coding=elias"}) {
    const auto codec = make_codec(spec);
    const auto a = decoded(codec->encode(v, {.seed = 4}), v.size());
    const auto b = decoded(codec->encode(w, {.seed = 4}), w.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i < 200 || i >= 300) {
        ASSERT_EQ(a[i], b[i]) << spec << " element " << i;
      }
    }
  }
}

// E Q(v) = v: the mean over N seeds is within 5 standard errors of v_i for every element, with
// the standard error from the exact per-element variance step²·f(1 − f) / N (a level is
// ⌊s·r⌋ + Bernoulli(f)). Elements with f = 0 must come out exact (up to fp32 rounding).
TEST(QsgdTest, UnbiasedOverSeeds) {
  const auto v = gaussian(40, 8);
  constexpr int kSeeds = 4000;
  for (const char* spec :
       {"qsgd:s=3,bucket=16,norm=l2", "qsgd:s=2,bucket=0,norm=max,coding=elias"}) {
    const auto codec = make_codec(spec);
    const auto& p = dynamic_cast<const QsgdCodec&>(*codec).params();
    const Moments m = moments(v, p);
    std::vector<double> sum(v.size(), 0.0);
    std::vector<float> out(v.size());
    for (int n = 0; n < kSeeds; ++n) {
      decode(codec->encode(v, {.seed = static_cast<std::uint64_t>(n)}), out,
             DecodeMode::kOverwrite);
      for (std::size_t i = 0; i < v.size(); ++i) sum[i] += out[i];
    }
    double chi2 = 0.0;
    int free_elements = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double mean = sum[i] / kSeeds;
      const double se = m.step[i] * std::sqrt(m.f[i] * (1.0 - m.f[i]) / kSeeds);
      EXPECT_NEAR(mean, v[i], 5.0 * se + 1e-6 * std::fabs(v[i])) << spec << " element " << i;
      if (se > 0) {
        chi2 += (mean - v[i]) * (mean - v[i]) / (se * se);
        ++free_elements;
      }
    }
    // Σ z_i² ~ χ²(k): mean k, sd √(2k); 6 sd above the mean is far in the tail.
    EXPECT_LT(chi2, free_elements + 6.0 * std::sqrt(2.0 * free_elements)) << spec;
  }
}

// The measured E‖Q(v) − v‖² matches qsgd_variance within 5 standard errors of the sample mean
// (Var ‖Q − v‖² = Σ step⁴·f(1−f)(1−2f)² for independent Bernoulli roundings), qsgd_variance
// matches the SPEC formula ‖u‖²·Σ (r − ℓ/s)((ℓ+1)/s − r), and both respect the QSGD bound.
TEST(QsgdTest, VarianceMatchesTheExactFormula) {
  const auto v = gaussian(256, 9);
  constexpr int kSeeds = 2000;
  for (const char* spec : {"qsgd:s=4,bucket=64,norm=l2", "qsgd:s=2,bucket=100,norm=max"}) {
    const auto codec = make_codec(spec);
    const auto& p = dynamic_cast<const QsgdCodec&>(*codec).params();
    const Moments m = moments(v, p);
    double expected = 0.0;
    double var_of_sq = 0.0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double s2 = m.step[i] * m.step[i];
      expected += s2 * m.f[i] * (1.0 - m.f[i]);
      var_of_sq += s2 * s2 * m.f[i] * (1.0 - m.f[i]) * (1.0 - 2 * m.f[i]) * (1.0 - 2 * m.f[i]);
    }
    const double exact = qsgd_variance(v, p);
    EXPECT_NEAR(exact, expected, 1e-9 * expected) << spec;
    std::vector<float> out(v.size());
    double total = 0.0;
    for (int n = 0; n < kSeeds; ++n) {
      decode(codec->encode(v, {.seed = 1000u + static_cast<std::uint64_t>(n)}), out,
             DecodeMode::kOverwrite);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const double e = double{out[i]} - v[i];
        total += e * e;
      }
    }
    EXPECT_NEAR(total / kSeeds, exact, 5.0 * std::sqrt(var_of_sq / kSeeds)) << spec;
  }
}

// E‖Q(u) − u‖² <= min(B/s², √B/s)·‖u‖² per bucket (QSGD Lemma 3.1), for both norms.
TEST(QsgdTest, VarianceBound) {
  std::vector<std::vector<float>> vectors = {gaussian(3000, 10), std::vector<float>(3000, 1.0f)};
  std::vector<float> spiky(3000, 1e-3f);
  spiky[17] = 50.0f;
  vectors.push_back(spiky);
  std::vector<float> heavy = gaussian(3000, 11);
  for (float& x : heavy) x = x * x * x;
  vectors.push_back(heavy);
  for (const auto& v : vectors) {
    double norm2 = 0.0;
    for (float x : v) norm2 += double{x} * x;
    for (std::uint32_t s : {1u, 2u, 7u, 55u, 1024u}) {
      for (std::uint32_t bucket : {0u, 64u, 512u}) {
        for (auto norm : {QsgdParams::Norm::kL2, QsgdParams::Norm::kMax}) {
          const QsgdParams p{.levels = s, .bucket = bucket, .norm = norm};
          const double b = bucket == 0 ? static_cast<double>(v.size()) : bucket;
          const double bound = std::min(b / (static_cast<double>(s) * s), std::sqrt(b) / s) * norm2;
          EXPECT_LE(qsgd_variance(v, p), bound * (1 + 1e-6)) << s << " " << bucket;
        }
      }
    }
  }
}

TEST(QsgdTest, MaxEncodedBytesIsAnUpperBound) {
  // Dense worst cases (all levels s, gaps of 1) and gap patterns near the Jensen optimum b/e.
  std::vector<std::vector<float>> vectors = {gaussian(4099, 12)};
  for (std::size_t spacing : {1, 2, 3, 4, 7, 40, 1000}) {
    std::vector<float> v(4099, 0.0f);
    for (std::size_t i = 0; i < v.size(); i += spacing) v[i] = (i % 3 == 0) ? -1.0f : 1.0f;
    vectors.push_back(v);
  }
  for (const auto& v : vectors) {
    for (const char* spec :
         {"qsgd:s=1,bucket=0,norm=max,coding=elias",
          "qsgd:s=1048576,bucket=0,norm=max,coding=elias",
          "qsgd:s=3,bucket=5000,norm=l2,coding=elias", "qsgd:s=16,bucket=512,norm=max,coding=elias",
          "qsgd:s=1048576,bucket=7,norm=max,coding=packed"}) {
      const auto codec = make_codec(spec);
      for (std::uint64_t seed = 0; seed < 3; ++seed) {
        // encode() would throw if a message outgrew max_encoded_bytes.
        const auto msg = codec->encode(v, {.seed = seed});
        ASSERT_LE(msg.size(), codec->max_encoded_bytes(v.size())) << spec;
        ASSERT_EQ(decoded(msg, v.size()).size(), v.size());
      }
    }
  }
}

// The seed paper's claim: Elias-coded QSGD with s = √d and no bucketing needs at most 2.8 bits
// per element (expected size <= 2.8·d + 32 bits; ~2.7 is normal). Whole message, header included.
TEST(QsgdTest, EliasBitsPerElementWithSqrtDLevels) {
  for (unsigned log_d : {18u, 20u}) {
    const std::size_t d = std::size_t{1} << log_d;
    const auto v = gaussian(d, 13);
    const std::string spec =
        "qsgd:s=" + std::to_string(1u << (log_d / 2)) + ",bucket=0,norm=l2,coding=elias";
    const auto codec = make_codec(spec);
    const auto msg = codec->encode(v, {.seed = 1});
    const double bits = 8.0 * static_cast<double>(msg.size()) / static_cast<double>(d);
    std::cout << "[ qsgd    ] " << spec << ", d = 2^" << log_d << ": " << bits
              << " bits/element (whole message)\n";
    RecordProperty("elias_bits_per_element_2^" + std::to_string(log_d), std::to_string(bits));
    EXPECT_LE(bits, 2.8) << spec;
    EXPECT_LE(msg.size(), codec->max_encoded_bytes(d));
  }
}

TEST(QsgdTest, RejectsNonFiniteAndOverflowingInput) {
  const auto codec = make_codec("qsgd");
  const std::vector<float> nan = {1.0f, std::nanf("")};
  EXPECT_THROW((void)codec->encode(nan), InvalidArgument);
  // A 2-norm beyond the fp32 range cannot be sent as an fp32 scale; max-norm can.
  const std::vector<float> huge = {3e38f, 3e38f};
  EXPECT_THROW((void)codec->encode(huge), InvalidArgument);
  EXPECT_EQ(decoded(make_codec("qsgd:norm=max")->encode(huge), 2), huge);
}

// The 2-norm's sum of squares is the finiteness check: the error names the first bad element of
// the whole vector, whichever bucket and norm, as a separate pass over it would.
TEST(QsgdTest, NonFiniteErrorNamesTheElement) {
  std::vector<float> v(20, 0.5f);
  v[13] = std::numeric_limits<float>::infinity();
  v[17] = std::nanf("");
  for (const char* spec :
       {"qsgd:bucket=4", "qsgd:bucket=0", "qsgd:bucket=4,coding=elias", "qsgd:bucket=4,norm=max"}) {
    try {
      (void)make_codec(spec)->encode(v);
      ADD_FAILURE() << spec << " accepted a non-finite input";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("input element 13 is not finite"), std::string::npos)
          << spec << ": " << e.what();
    }
  }
}

TEST(QsgdTest, DecoderRejectsBadParams) {
  std::vector<float> out(1);
  const auto with_params = [](std::uint32_t levels, std::uint8_t norm, std::uint8_t coding) {
    std::vector<std::byte> buf(64);
    MessageWriter msg(buf, CodecId::kQsgd, 1);
    msg.params().put_u32(levels);
    msg.params().put_u32(0);
    msg.params().put_u8(norm);
    msg.params().put_u8(coding);
    BitWriter w(msg.payload_area());
    put_scale(w, 0.0f);
    buf.resize(msg.finish(w.finish()));
    return buf;
  };
  EXPECT_NO_THROW(decode(with_params(1, 0, 0), out, DecodeMode::kOverwrite));
  EXPECT_THROW(decode(with_params(0, 0, 0), out, DecodeMode::kOverwrite), CorruptMessage);
  EXPECT_THROW(decode(with_params(kQsgdMaxLevels + 1, 0, 0), out, DecodeMode::kOverwrite),
               CorruptMessage);
  EXPECT_THROW(decode(with_params(4, 2, 0), out, DecodeMode::kOverwrite), CorruptMessage);
  EXPECT_THROW(decode(with_params(4, 0, 2), out, DecodeMode::kOverwrite), CorruptMessage);
}

TEST(QsgdTest, DecoderRejectsInconsistentPayloads) {
  const QsgdParams packed{.levels = 5, .bucket = 0};  // fields of 1 + 3 bits
  const QsgdParams elias{.levels = 5, .bucket = 0, .coding = QsgdParams::Coding::kElias};
  std::vector<float> out(2);
  const auto rejects = [&](const QsgdParams& p, const std::function<void(BitWriter&)>& bits) {
    const auto msg = hand_message(out.size(), p, bits);
    EXPECT_THROW(decode(msg, out, DecodeMode::kOverwrite), CorruptMessage);
    EXPECT_THROW(decode_unverified(msg, out, DecodeMode::kAccumulate), CorruptMessage);
  };
  // A valid packed message first: levels 5 and 2 (negative).
  const auto ok = hand_message(2, packed, [](BitWriter& w) {
    put_scale(w, 10.0f);
    w.put(5, 4);
    w.put(2 | 8, 4);
  });
  decode(ok, out, DecodeMode::kOverwrite);
  EXPECT_EQ(out, (std::vector<float>{10.0f, -4.0f}));
  for (float scale : {-1.0f, -0.0f, std::numeric_limits<float>::infinity(), std::nanf("")}) {
    rejects(packed, [&](BitWriter& w) {
      put_scale(w, scale);
      w.put(0, 8);
    });
    rejects(elias, [&](BitWriter& w) {
      put_scale(w, scale);
      EliasGamma::put(w, 3);
    });
  }
  rejects(packed, [](BitWriter& w) {
    put_scale(w, 1.0f);
    w.put(6, 4);
    w.put(0, 4);
  });  // 6 > s
  rejects(packed, [](BitWriter& w) {
    put_scale(w, 1.0f);
    w.put(8, 4);
    w.put(0, 4);
  });  // -0
  // Too short: the fields are missing (bits inside the last byte's padding cannot be told apart
  // from zero fields, so a payload is only short by whole bytes).
  rejects(packed, [](BitWriter& w) { put_scale(w, 1.0f); });
  rejects(packed, [](BitWriter& w) {
    put_scale(w, 1.0f);
    w.put(1, 8);
    w.put(0, 8);
  });  // long
  rejects(packed, [](BitWriter& w) {
    put_scale(w, 1.0f);
    w.put(1, 8);
    w.put(1, 1);
  });  // padding
  rejects(packed, [](BitWriter& w) {
    put_scale(w, 0.0f);
    w.put(0, 8);
  });  // zero bucket + data
  // Elias: index gaps counted from one before the bucket; terminator gap lands on d = 2.
  const auto elias_ok = hand_message(2, elias, [](BitWriter& w) {
    put_scale(w, 5.0f);
    EliasGamma::put(w, 2);  // index 1
    w.put_bit(true);
    EliasGamma::put(w, 3);
    EliasGamma::put(w, 1);  // terminator
  });
  decode(elias_ok, out, DecodeMode::kOverwrite);
  EXPECT_EQ(out, (std::vector<float>{0.0f, -3.0f}));
  rejects(elias, [](BitWriter& w) {
    put_scale(w, 1.0f);
    EliasGamma::put(w, 4);
  });                                // past end
  rejects(elias, [](BitWriter& w) {  // level 6 > s
    put_scale(w, 1.0f);
    EliasGamma::put(w, 1);
    w.put_bit(false);
    EliasGamma::put(w, 6);
    EliasGamma::put(w, 2);
  });
  rejects(elias, [](BitWriter& w) {  // no terminator
    put_scale(w, 1.0f);
    EliasGamma::put(w, 1);
    w.put_bit(false);
    EliasGamma::put(w, 1);
  });
  rejects(elias, [](BitWriter& w) {
    put_scale(w, 1.0f);
    EliasGamma::put(w, 3);
    w.put(0, 8);
  });
}

// Every truncation, extension and single-bit flip of real payloads either decodes or throws
// CorruptMessage (decode_unverified skips the checksum so that the payload decoder sees them);
// the sanitizer builds check that nothing is read or written out of bounds.
TEST(QsgdTest, DamagedPayloadsNeverEscapeCorruptMessage) {
  auto v = gaussian(300, 14);
  for (std::size_t i = 60; i < 100; ++i) v[i] = 0.0f;
  for (const char* spec : {"qsgd:s=3,bucket=64,coding=elias", "qsgd:s=3,bucket=64,coding=packed",
                           "qsgd:s=1,bucket=0,coding=elias"}) {
    const auto codec = make_codec(spec);
    const auto msg = codec->encode(v, {.seed = 3});
    const std::size_t start = kHeaderBytes + kQsgdParamsBytes;
    const std::span<const std::byte> payload = std::span(msg).subspan(start);
    std::vector<float> out(v.size());
    const auto rebuild = [&](std::span<const std::byte> body) {
      std::vector<std::byte> buf(start + body.size());
      MessageWriter w(buf, CodecId::kQsgd, v.size());
      codec->write_params(w.params());
      std::copy(body.begin(), body.end(), w.payload_area().begin());
      buf.resize(w.finish(body.size()));
      return buf;
    };
    for (std::size_t n = 0; n < payload.size(); ++n) {
      EXPECT_THROW(decode(rebuild(payload.first(n)), out, DecodeMode::kOverwrite), CorruptMessage)
          << spec << " truncated to " << n;
    }
    std::vector<std::byte> longer(payload.begin(), payload.end());
    longer.push_back(std::byte{0});
    EXPECT_THROW(decode(rebuild(longer), out, DecodeMode::kOverwrite), CorruptMessage) << spec;
    // Single-bit flips: decode() rejects every one (the checksum, checked before out is touched);
    // the payload decoder alone decodes some (a flipped level or scale bit) and rejects others.
    // (It streams: the Elias decoder may have accumulated the buckets before a damaged one.)
    std::size_t decoded = 0;
    std::size_t rejected = 0;
    for (std::size_t bit = 0; bit < 8 * payload.size(); ++bit) {
      auto flipped = msg;
      flipped[start + bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
      std::vector<float> acc(v.size(), 7.0f);
      EXPECT_THROW(decode(flipped, acc, DecodeMode::kAccumulate), CorruptMessage)
          << spec << " bit " << bit;
      EXPECT_EQ(acc, std::vector<float>(v.size(), 7.0f)) << spec << " bit " << bit;
      try {
        decode_unverified(flipped, acc, DecodeMode::kAccumulate);
        ++decoded;
      } catch (const CorruptMessage&) {
        ++rejected;
      }
    }
    EXPECT_GT(decoded, 0U) << spec;
    EXPECT_GT(rejected, 0U) << spec;
  }
}

}  // namespace
}  // namespace thinwire::codec
