// End-to-end tests of `thinwire bench`: the JSON object and its keys (SPEC §6, issue 7), the
// table form, and one-line usage errors for bad flags. No timing assertions: only that rates are
// positive and finite and that sizes and bits per element are exact.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/scratch_dir.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"

namespace thinwire {
namespace {

namespace fs = std::filesystem;

using Result = test::ProcessResult;

class BenchCliTest : public test::ScratchDirTest {
 protected:
  // Runs `thinwire bench args...` (no shell), capturing stdout, stderr and the exit code.
  Result bench(std::vector<std::string> args) const {
    args.insert(args.begin(), "bench");
    args.insert(args.begin(), THINWIRE_CLI_PATH);
    return test::run_process(args, dir_);
  }

  void expect_usage_error(const std::vector<std::string>& args, const std::string& needle) {
    std::string joined;
    for (const std::string& a : args) joined += " " + a;
    SCOPED_TRACE("thinwire bench" + joined);
    const Result r = bench(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "stderr must be one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
};

void expect_rate(const nlohmann::json& j, const char* key) {
  ASSERT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  const double x = j[key].get<double>();
  EXPECT_TRUE(std::isfinite(x) && x > 0.0) << key << " = " << x;
}

nlohmann::json bench_json(const Result& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  // Exactly one line holding one JSON object.
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(j.is_object()) << r.out;
  return j;
}

TEST_F(BenchCliTest, JsonHasTheRequiredKeys) {
  const std::string spec = "qsgd:s=7,bucket=512,norm=max,coding=packed";
  const nlohmann::json j =
      bench_json(bench({"--codec", spec, "--size", "5000", "--reps", "2", "--json"}));
  ASSERT_TRUE(j.is_object());
  for (const char* key :
       {"encode_elems_per_s", "decode_elems_per_s", "accumulate_elems_per_s", "ceiling_elems_per_s",
        "decode_ceiling_elems_per_s", "accumulate_ceiling_elems_per_s", "memcpy_elems_per_s",
        "checksum_elems_per_s", "encode_vs_ceiling", "decode_vs_ceiling",
        "accumulate_vs_ceiling"}) {
    expect_rate(j, key);
  }
  // Each decode pass is measured against its own ceiling, from the same run.
  EXPECT_DOUBLE_EQ(
      j["decode_vs_ceiling"].get<double>(),
      j["decode_elems_per_s"].get<double>() / j["decode_ceiling_elems_per_s"].get<double>());
  EXPECT_DOUBLE_EQ(j["accumulate_vs_ceiling"].get<double>(),
                   j["accumulate_elems_per_s"].get<double>() /
                       j["accumulate_ceiling_elems_per_s"].get<double>());
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["decode_threads"], 1);
  EXPECT_EQ(j["size"], 5000);
  EXPECT_EQ(j["reps"], 2);
  EXPECT_EQ(j["codec"], spec);
  EXPECT_FALSE(j.contains("nth_element_elems_per_s"));
  // bits_per_element is the real message size: the library's encode of the same length.
  const auto message = codec::make_codec(spec)->encode(std::vector<float>(5000, 1.0f));
  EXPECT_EQ(j["message_bytes"].get<std::size_t>(), message.size());
  EXPECT_DOUBLE_EQ(j["bits_per_element"].get<double>(), 8.0 * double(message.size()) / 5000.0);
}

TEST_F(BenchCliTest, TopkAddsTheNthElementBaseline) {
  const nlohmann::json j =
      bench_json(bench({"--codec", "topk:k=0.01", "--size", "20000", "--reps", "1", "--json"}));
  ASSERT_TRUE(j.is_object());
  expect_rate(j, "nth_element_elems_per_s");
  expect_rate(j, "select_elems_per_s");
  EXPECT_EQ(j["k"], 200);
}

TEST_F(BenchCliTest, ThreadsFlagReachesTheCodec) {
  for (const char* spec : {"qsgd:s=127,bucket=512,norm=max", "terngrad", "sign:bucket=512"}) {
    const nlohmann::json j = bench_json(
        bench({"--codec", spec, "--size", "70000", "--threads", "2", "--reps", "1", "--json"}));
    ASSERT_TRUE(j.is_object()) << spec;
    EXPECT_EQ(j["threads"], 2) << spec;
    EXPECT_NE(j["codec"].get<std::string>().find("threads=2"), std::string::npos) << j["codec"];
    expect_rate(j, "encode_elems_per_s");
    // Decode runs on the same threads: 70000 elements make two parts of at least 2^15.
    EXPECT_EQ(j["decode_threads"], 2) << spec;
  }
  // A threads key in the spec is reported too; 1000 elements are one part, decoded on one thread.
  const nlohmann::json j =
      bench_json(bench({"--codec", "qsgd:threads=3", "--size", "1000", "--reps", "1", "--json"}));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["threads"], 3);
  EXPECT_EQ(j["decode_threads"], 1);
  // Elias-coded buckets have no fixed size: encode splits, decode does not.
  const nlohmann::json elias = bench_json(bench({"--codec", "qsgd:coding=elias", "--size", "70000",
                                                 "--threads", "2", "--reps", "1", "--json"}));
  ASSERT_TRUE(elias.is_object());
  EXPECT_EQ(elias["threads"], 2);
  EXPECT_EQ(elias["decode_threads"], 1);
}

TEST_F(BenchCliTest, EveryExampleCodecRuns) {
  for (const std::string& spec : codec::example_codec_specs()) {
    if (codec::parse_codec(spec).error_feedback) continue;
    const nlohmann::json j =
        bench_json(bench({"--codec", spec, "--size", "777", "--reps", "1", "--json"}));
    ASSERT_TRUE(j.is_object()) << spec;
    expect_rate(j, "decode_elems_per_s");
    EXPECT_GT(j["bits_per_element"].get<double>(), 0.0) << spec;
  }
}

TEST_F(BenchCliTest, TableWithoutJson) {
  const Result r = bench({"--codec", "sign", "--size", "3000", "--reps", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("encode"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ceiling"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ceiling (accumulate)"), std::string::npos) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out, nullptr, false).is_discarded(), true);
}

TEST_F(BenchCliTest, BadFlagsAreUsageErrors) {
  expect_usage_error({"--size", "100"}, "--codec");
  expect_usage_error({"--codec", "qsgd"}, "--size");
  expect_usage_error({"--codec", "nope", "--size", "100"}, "unknown codec 'nope'");
  expect_usage_error({"--codec", "qsgd:s=0", "--size", "100"}, "levels");
  expect_usage_error({"--codec", "qsgd", "--size", "0"}, "--size");
  expect_usage_error({"--codec", "qsgd", "--size", "-5"}, "--size");
  expect_usage_error({"--codec", "qsgd", "--size", "100", "--threads", "0"}, "--threads");
  expect_usage_error({"--codec", "qsgd", "--size", "100", "--threads", "65"}, "--threads");
  expect_usage_error({"--codec", "randk:k=0.1", "--size", "100", "--threads", "2"}, "--threads");
  expect_usage_error({"--codec", "qsgd:threads=2", "--size", "100", "--threads", "2"}, "--threads");
  expect_usage_error({"--codec", "qsgd", "--size", "100", "--reps", "0"}, "--reps");
  expect_usage_error({"--codec", "qsgd", "--size", "100", "--bogus"}, "--bogus");
}

}  // namespace
}  // namespace thinwire
