#include "thinwire/core/array_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A .npy file with the given format version, header dict and data bytes, laid out as
// numpy.lib.format describes (header padded with spaces, ended by '\n').
std::vector<std::byte> make_npy(std::string dict, std::string_view data, int major = 1) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t len = dict.size();
  for (std::size_t i = 0; i < prefix - 8; ++i) out += static_cast<char>((len >> (8 * i)) & 0xFF);
  out += dict;
  out += data;
  return bytes_of(out);
}

std::string float_bytes(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

// Expects parse_array(.npy) to throw IoError whose message contains `needle` and the file name.
void expect_npy_error(const std::vector<std::byte>& bytes, const std::string& needle) {
  try {
    (void)parse_array(bytes, ArrayFormat::kNpy, "x.npy");
    FAIL() << "expected IoError containing '" << needle << "'";
  } catch (const IoError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("x.npy: ", 0), 0u) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

std::vector<float> awkward_values(std::size_t n) {
  // Signed zero, subnormals and extremes must survive bit for bit.
  const std::vector<float> special = {0.0f,
                                      -0.0f,
                                      1.0f,
                                      -2.5f,
                                      std::numeric_limits<float>::denorm_min(),
                                      std::numeric_limits<float>::max(),
                                      std::numeric_limits<float>::lowest()};
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = i < special.size() ? special[i] : static_cast<float>(i) * 0.37f - 11.0f;
  }
  return v;
}

TEST(ArrayFileTest, NpyRoundTripIsBitExact) {
  for (std::size_t n : {0u, 1u, 3u, 7u, 1000u}) {
    const std::vector<float> v = awkward_values(n);
    const std::vector<std::byte> bytes = format_array(v, ArrayFormat::kNpy);
    EXPECT_EQ((bytes.size() - 4 * n) % 64, 0u) << "data must start 64-byte aligned";
    EXPECT_TRUE(same_bits(parse_array(bytes, ArrayFormat::kNpy, "x.npy"), v)) << "n=" << n;
  }
}

TEST(ArrayFileTest, WriterProducesNumpysLayout) {
  // What numpy.save writes for np.array([1, 2, 3], dtype='<f4').
  std::string expected = "\x93NUMPY\x01";
  expected += '\0';
  expected += "v";  // header length 118, little-endian
  expected += '\0';
  expected += "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  expected.append(128 - 1 - expected.size(), ' ');
  expected += '\n';
  expected += float_bytes({1.0f, 2.0f, 3.0f});
  EXPECT_EQ(format_array(std::vector<float>{1.0f, 2.0f, 3.0f}, ArrayFormat::kNpy),
            bytes_of(expected));
}

TEST(ArrayFileTest, ReadsOtherHeaderSpellings) {
  const std::string data = float_bytes({4.0f, -1.0f});
  const std::vector<float> want = {4.0f, -1.0f};
  // Version 2.0 (4-byte header length), double quotes, other key order, no trailing comma.
  EXPECT_EQ(
      parse_array(make_npy(R"({"shape": (2,), "fortran_order": False, "descr": "<f4"})", data, 2),
                  ArrayFormat::kNpy, "x.npy"),
      want);
  // Version 3.0 and old Python 2 long literals.
  EXPECT_EQ(
      parse_array(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", data, 3),
                  ArrayFormat::kNpy, "x.npy"),
      want);
  // fortran_order does not matter for 1-D data.
  EXPECT_EQ(parse_array(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data),
                        ArrayFormat::kNpy, "x.npy"),
            want);
}

TEST(ArrayFileTest, RejectsOtherDtypesAndShapes) {
  const std::string eight = float_bytes({1.0f, 2.0f});
  expect_npy_error(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", eight),
                   "dtype '<f8' is not float32");
  expect_npy_error(make_npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", eight),
                   "dtype '<i4' is not float32");
  expect_npy_error(make_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", eight),
                   "big-endian");
  expect_npy_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", eight),
                   "shape (1, 2) is not 1-D");
  expect_npy_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", ""),
                   "shape () is not 1-D");
}

TEST(ArrayFileTest, RejectsDataOfTheWrongLength) {
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
  expect_npy_error(make_npy(dict, float_bytes({1.0f, 2.0f})), "needs 3 float32 values");
  expect_npy_error(make_npy(dict, float_bytes({1.0f, 2.0f, 3.0f, 4.0f})), "needs 3 float32");
  expect_npy_error(make_npy(dict, float_bytes({1.0f, 2.0f, 3.0f}) + "x"), "needs 3 float32");
  expect_npy_error(
      make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", ""),
      "too large");
}

TEST(ArrayFileTest, RejectsMalformedFiles) {
  expect_npy_error(bytes_of("hello, world, this is text"), "not a NumPy .npy file");
  expect_npy_error(bytes_of("\x93NUMPY"), "not a NumPy .npy file");
  std::vector<std::byte> v4 =
      make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0,)}", "");
  v4[6] = std::byte{4};
  expect_npy_error(v4, "unsupported .npy format version 4.0");
  std::vector<std::byte> truncated = format_array(std::vector<float>{1.0f}, ArrayFormat::kNpy);
  truncated.resize(40);
  expect_npy_error(truncated, "ends inside the .npy header");
  expect_npy_error(make_npy("{'descr': '<f4', 'shape': (0,)}", ""), "lacks one of");
  expect_npy_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), 'x': 1}", ""),
                   "unexpected key 'x'");
  expect_npy_error(make_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False}", ""),
                   "appears twice");
  expect_npy_error(make_npy("{'descr': '<f4', 'fortran_order': no, 'shape': (0,)}", ""),
                   "True or False");
  expect_npy_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}", ""),
                   "integers");
  expect_npy_error(make_npy("{'descr: '<f4'}", ""), "malformed .npy header");
  expect_npy_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0,)} x", ""),
                   "after the closing brace");
}

TEST(ArrayFileTest, RawF32) {
  const std::vector<float> v = awkward_values(9);
  const std::vector<std::byte> bytes = format_array(v, ArrayFormat::kF32);
  EXPECT_EQ(bytes.size(), 36u);
  EXPECT_TRUE(same_bits(parse_array(bytes, ArrayFormat::kF32, "x.f32"), v));
  EXPECT_TRUE(parse_array({}, ArrayFormat::kF32, "x.f32").empty());
  try {
    (void)parse_array(std::span(bytes).first(10), ArrayFormat::kF32, "x.f32");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_STREQ(e.what(),
                 "x.f32: size 10 bytes is not a multiple of 4 (a .f32 file holds raw float32 "
                 "values)");
  }
}

TEST(ArrayFileTest, FormatFromExtension) {
  EXPECT_EQ(array_format_for("a/b.npy"), ArrayFormat::kNpy);
  EXPECT_EQ(array_format_for("B.NPY"), ArrayFormat::kNpy);
  EXPECT_EQ(array_format_for("c.f32"), ArrayFormat::kF32);
  for (const char* bad : {"x.txt", "x", "x.npz", "npy"}) {
    try {
      (void)array_format_for(bad);
      FAIL() << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(bad) + ": unknown array file extension"),
                std::string::npos)
          << e.what();
    }
  }
}

class ArrayFileIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("thinwire_array_file_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ArrayFileIoTest, WriteThenReadBothFormats) {
  const std::vector<float> v = awkward_values(2000);
  for (const char* name : {"v.npy", "v.f32"}) {
    write_array(dir_ / name, v);
    EXPECT_TRUE(same_bits(read_array(dir_ / name), v)) << name;
  }
  EXPECT_EQ(fs::file_size(dir_ / "v.f32"), 8000u);
  write_array(dir_ / "empty.npy", {});
  EXPECT_TRUE(read_array(dir_ / "empty.npy").empty());
}

TEST_F(ArrayFileIoTest, ByteFilesRoundTrip) {
  const std::vector<std::byte> bytes = bytes_of(std::string("\0\1\2message\xff", 11));
  write_file_bytes(dir_ / "m.twm", bytes);
  EXPECT_EQ(read_file_bytes(dir_ / "m.twm"), bytes);
  // Larger than the reader's chunk, to cover the loop.
  std::vector<std::byte> big((std::size_t{1} << 20) + 17, std::byte{0x5A});
  write_file_bytes(dir_ / "big.twm", big);
  EXPECT_EQ(read_file_bytes(dir_ / "big.twm"), big);
}

TEST_F(ArrayFileIoTest, ErrorsNameTheFileAndTheReason) {
  const fs::path missing = dir_ / "missing.npy";
  try {
    (void)read_array(missing);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()),
              missing.string() + ": cannot open for reading: No such file or directory");
  }
  EXPECT_THROW(write_array(dir_ / "no" / "such" / "dir.npy", std::vector<float>{1.0f}), IoError);
  EXPECT_THROW((void)read_file_bytes(dir_), IoError);  // a directory, not a file
  // The extension is checked before the file is opened.
  EXPECT_THROW((void)read_array(dir_ / "missing.csv"), InvalidArgument);
}

}  // namespace
}  // namespace thinwire
