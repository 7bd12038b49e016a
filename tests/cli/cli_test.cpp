// End-to-end tests of the `thinwire` executable: files in, files out, exit codes and the one-line
// `error: ...` contract of SPEC §6. The binary's path comes from CMake (THINWIRE_CLI_PATH).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/scratch_dir.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/array_file.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire {
namespace {

namespace fs = std::filesystem;

using Result = test::ProcessResult;

class CliTest : public test::ScratchDirTest {
 protected:
  // Runs the tool in dir_ with `args` (no shell), capturing stdout, stderr and the exit code.
  Result run(std::vector<std::string> args) const {
    args.insert(args.begin(), THINWIRE_CLI_PATH);
    return test::run_process(args, dir_, std::chrono::seconds(120), {.cwd = dir_});
  }

  // Expects a failure with `code` and exactly one stderr line "error: ..." containing `needle`.
  void expect_error(const std::vector<std::string>& args, int code, const std::string& needle) {
    std::string joined;
    for (const std::string& a : args) joined += " " + a;
    SCOPED_TRACE("thinwire" + joined);
    const Result r = run(args);
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "stderr must be one line: " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
};

std::vector<float> gaussian(std::size_t n, std::uint64_t seed) {
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kTest));
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.next_normal());
  return v;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
  return b;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Example specs without error feedback (a one-shot compress has no residual to carry).
std::vector<std::string> plain_specs() {
  std::vector<std::string> specs;
  for (const std::string& s : codec::example_codec_specs()) {
    if (!codec::parse_codec(s).error_feedback) specs.push_back(s);
  }
  return specs;
}

TEST_F(CliTest, CompressMatchesTheLibraryAndDecompressRoundTrips) {
  const std::vector<float> v = gaussian(1000, 1);
  write_array(path("v.npy"), v);
  write_array(path("v.f32"), v);
  for (const std::string& spec : plain_specs()) {
    SCOPED_TRACE(spec);
    for (const char* in : {"v.npy", "v.f32"}) {
      const Result c = run({"compress", "--codec", spec, "--in", in, "--out", "m.twm", "--seed",
                            "7", "--rank", "2", "--iteration", "3"});
      ASSERT_EQ(c.exit_code, 0) << c.err;
      EXPECT_TRUE(c.err.empty()) << c.err;
      // Same bytes as an in-process encode with the same (seed, rank, iteration).
      const std::vector<std::byte> message = read_file_bytes(path("m.twm"));
      EXPECT_EQ(message, codec::make_codec(spec)->encode(v, {.seed = 7, .rank = 2, .iteration = 3}))
          << in;
      std::vector<float> expected(v.size());
      codec::decode(message, expected, codec::DecodeMode::kOverwrite);
      for (const char* out : {"y.npy", "y.f32"}) {
        const Result d = run({"decompress", "--in", "m.twm", "--out", out});
        ASSERT_EQ(d.exit_code, 0) << d.err;
        EXPECT_TRUE(same_bits(read_array(path(out)), expected)) << in << " -> " << out;
      }
    }
  }
}

TEST_F(CliTest, IdentityRoundTripIsExactThroughFiles) {
  const std::vector<float> v = gaussian(4097, 2);
  write_array(path("v.npy"), v);
  ASSERT_EQ(run({"compress", "--codec", "identity", "--in", "v.npy", "--out", "m.twm"}).exit_code,
            0);
  ASSERT_EQ(run({"decompress", "--in", "m.twm", "--out", "y.f32"}).exit_code, 0);
  EXPECT_TRUE(same_bits(read_array(path("y.f32")), v));
}

TEST_F(CliTest, InspectPrintsTheHeaderAsJson) {
  const std::vector<float> v = gaussian(300, 3);
  write_array(path("v.f32"), v);
  for (const std::string& spec : plain_specs()) {
    SCOPED_TRACE(spec);
    ASSERT_EQ(run({"compress", "--codec", spec, "--in", "v.f32", "--out", "m.twm"}).exit_code, 0);
    const Result r = run({"inspect", "m.twm"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const std::vector<std::byte> message = read_file_bytes(path("m.twm"));
    const codec::MessageInfo info = codec::inspect(message);
    EXPECT_EQ(j.at("codec"), info.codec);
    EXPECT_EQ(j.at("spec"), codec::make_codec(spec)->spec());
    EXPECT_EQ(j.at("elements"), 300u);
    EXPECT_EQ(j.at("bytes"), message.size());
    EXPECT_EQ(j.at("payload_bytes"), info.payload_bytes);
    EXPECT_EQ(j.at("header_bytes").get<std::uint64_t>() +
                  j.at("params_bytes").get<std::uint64_t>() +
                  j.at("payload_bytes").get<std::uint64_t>(),
              message.size());
    EXPECT_DOUBLE_EQ(j.at("bits_per_element").get<double>(),
                     8.0 * static_cast<double>(message.size()) / 300.0);
    EXPECT_EQ(j.at("error_feedback"), false);
    // Parameters: one JSON member per key of the canonical spec.
    ASSERT_TRUE(j.at("parameters").is_object());
    const Spec canonical = Spec::parse(info.spec);
    EXPECT_EQ(j.at("parameters").size(), canonical.params().size());
    for (const auto& [key, value] : canonical.params()) {
      EXPECT_TRUE(j.at("parameters").contains(key)) << key;
    }
  }
}

TEST_F(CliTest, ErrorFeedbackFlagOnOneMessage) {
  const std::vector<float> v = gaussian(500, 6);
  write_array(path("v.f32"), v);
  for (const char* spec : {"identity", "topk:k=0.1"}) {
    SCOPED_TRACE(spec);
    ASSERT_EQ(
        run({"compress", "--codec", std::string(spec) + "+ef", "--in", "v.f32", "--out", "ef.twm"})
            .exit_code,
        0);
    ASSERT_EQ(run({"compress", "--codec", spec, "--in", "v.f32", "--out", "plain.twm"}).exit_code,
              0);
    const Result r = run({"inspect", "ef.twm"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).at("error_feedback"), true);
    // From a zero residual the payload is the plain codec's; only the flag (and checksum) differ.
    const std::vector<std::byte> ef = read_file_bytes(path("ef.twm"));
    const std::vector<std::byte> plain = read_file_bytes(path("plain.twm"));
    ASSERT_EQ(ef.size(), plain.size());
    EXPECT_TRUE(std::equal(ef.begin() + 32, ef.end(), plain.begin() + 32));
    EXPECT_EQ(ef[4], std::byte{1});
    ASSERT_EQ(run({"decompress", "--in", "ef.twm", "--out", "y.f32"}).exit_code, 0);
    std::vector<float> expected(v.size());
    codec::decode(plain, expected, codec::DecodeMode::kOverwrite);
    EXPECT_TRUE(same_bits(read_array(path("y.f32")), expected));
  }
}

TEST_F(CliTest, UsageErrorsExitWithTwo) {
  write_array(path("v.f32"), gaussian(10, 4));
  expect_error({"compress", "--codec", "nosuch", "--in", "v.f32", "--out", "m.twm"}, 2,
               "unknown codec 'nosuch'");
  expect_error({"compress", "--codec", "identity:frob=1", "--in", "v.f32", "--out", "m.twm"}, 2,
               "unknown parameter 'frob'");
  expect_error({"compress", "--codec", "identity", "--in", "v.f32", "--out", "m.twm", "--frob"}, 2,
               "--frob");
  expect_error({"compress", "--in", "v.f32", "--out", "m.twm"}, 2, "--codec is required");
  expect_error({"compress", "--codec", "identity", "--in", "v.csv", "--out", "m.twm"}, 2,
               "v.csv: unknown array file extension '.csv'");
  expect_error({"decompress", "--in", "m.twm", "--out", "y.txt"}, 2,
               "unknown array file extension");
  expect_error(
      {"compress", "--codec", "identity", "--in", "v.f32", "--out", "m.twm", "--seed", "x"}, 2,
      "--seed");
  expect_error({"demo", "--size", "0"}, 2, "--size");
  expect_error({"inspect"}, 2, "message is required");
  expect_error({}, 2, "subcommand");
  expect_error({"frobnicate"}, 2, "frobnicate");
  EXPECT_FALSE(fs::exists(path("m.twm"))) << "a failed command must not write its output";
}

TEST_F(CliTest, RuntimeErrorsExitWithOne) {
  // Missing input.
  expect_error({"compress", "--codec", "identity", "--in", "missing.npy", "--out", "m.twm"}, 1,
               "missing.npy: cannot open for reading");
  expect_error({"inspect", "missing.twm"}, 1, "missing.twm: cannot open for reading");
  // A float64 .npy and a 2-D .npy.
  std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
  dict.resize(117, ' ');  // 10-byte preamble + 118-byte header (0x76) = 128
  const std::string f8 =
      std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + "\n" + std::string(8, '\0');
  write_file_bytes(path("f8.npy"), bytes_of(f8));
  expect_error({"compress", "--codec", "identity", "--in", "f8.npy", "--out", "m.twm"}, 1,
               "f8.npy: dtype '<f8' is not float32");
  std::string two_d = f8;
  two_d.replace(two_d.find("'<f8'"), 5, "'<f4'");
  two_d.replace(two_d.find("(1,)"), 4, "(1, 2)");
  two_d.erase(two_d.find("}") + 1, 2);  // keep the header length unchanged
  write_file_bytes(path("2d.npy"), bytes_of(two_d));
  expect_error({"compress", "--codec", "identity", "--in", "2d.npy", "--out", "m.twm"}, 1,
               "shape (1, 2) is not 1-D");
  // A .f32 whose size is not a multiple of 4, and one holding a NaN.
  write_file_bytes(path("odd.f32"), bytes_of("abcde"));
  expect_error({"compress", "--codec", "identity", "--in", "odd.f32", "--out", "m.twm"}, 1,
               "not a multiple of 4");
  write_array(path("nan.f32"), std::vector<float>{1.0f, std::nanf("")});
  expect_error({"compress", "--codec", "identity", "--in", "nan.f32", "--out", "m.twm"}, 1,
               "element 1 is not finite");
  // Corrupt messages: a flipped payload bit, a truncated file, something else entirely.
  write_array(path("v.f32"), gaussian(10, 5));
  ASSERT_EQ(run({"compress", "--codec", "identity", "--in", "v.f32", "--out", "m.twm"}).exit_code,
            0);
  std::vector<std::byte> message = read_file_bytes(path("m.twm"));
  message.back() ^= std::byte{0x04};
  write_file_bytes(path("flipped.twm"), message);
  expect_error({"decompress", "--in", "flipped.twm", "--out", "y.npy"}, 1,
               "flipped.twm: message checksum mismatch");
  expect_error({"inspect", "flipped.twm"}, 1, "flipped.twm: message checksum mismatch");
  message.resize(message.size() - 3);
  write_file_bytes(path("short.twm"), message);
  expect_error({"decompress", "--in", "short.twm", "--out", "y.npy"}, 1,
               "short.twm: message length");
  expect_error({"decompress", "--in", "v.f32", "--out", "y.npy"}, 1, "v.f32: ");
  EXPECT_FALSE(fs::exists(path("y.npy"))) << "a failed decompress must not write its output";
}

TEST_F(CliTest, EverySubcommandHasHelp) {
  for (const char* cmd : {"compress", "decompress", "inspect", "codecs", "demo"}) {
    const Result r = run({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_TRUE(r.err.empty()) << r.err;
    EXPECT_NE(r.out.find(std::string("Usage: thinwire ") + cmd), std::string::npos) << r.out;
  }
  const Result top = run({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"compress", "decompress", "inspect", "codecs", "demo"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos) << cmd;
  }
}

TEST_F(CliTest, CodecsListsTheRegistry) {
  const Result r = run({"codecs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const codec::CodecEntry& entry : codec::codec_registry()) {
    EXPECT_NE(r.out.find("  " + std::string(entry.name) + " "), std::string::npos) << entry.name;
    EXPECT_NE(r.out.find(entry.summary), std::string::npos) << entry.name;
  }
  for (const std::string& spec : codec::example_codec_specs()) {
    EXPECT_NE(r.out.find(spec), std::string::npos) << spec;
  }
}

TEST_F(CliTest, DemoPrintsOneRowPerExampleSpec) {
  const Result r = run({"demo", "--size", "2000", "--seed", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("softmax-regression gradient"), std::string::npos);
  EXPECT_NE(r.out.find("d = 2000"), std::string::npos);
  for (const std::string& spec : codec::example_codec_specs()) {
    EXPECT_NE(r.out.find("\n" + spec + " "), std::string::npos) << spec << " missing in\n" << r.out;
  }
  // The identity row is exact: 8000 payload bytes + 32 header bytes, zero error.
  EXPECT_NE(r.out.find("\nidentity "), std::string::npos);
  const std::size_t row = r.out.find("\nidentity ");
  const std::string line = r.out.substr(row + 1, r.out.find('\n', row + 1) - row - 1);
  EXPECT_NE(line.find(" 8032 "), std::string::npos) << line;
  EXPECT_NE(line.find(" 0.000e+00 "), std::string::npos) << line;

  const Result one = run({"demo", "--size", "100", "--codec", "identity"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  expect_error({"demo", "--size", "100", "--codec", "nosuch"}, 2, "unknown codec 'nosuch'");
}

}  // namespace
}  // namespace thinwire
