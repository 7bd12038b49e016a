#include "thinwire/data/idx.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

using testing::TempDir;

// An IDX file of unsigned bytes with the given dimensions and data.
std::string idx_bytes(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data,
                      std::uint8_t type = 0x08) {
  std::string out{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(d >> shift));
  }
  out.append(data.begin(), data.end());
  return out;
}

// Three 2x2 images with pixel values 0..11 and labels 2, 0, 1.
const std::vector<std::uint8_t> kPixels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
const std::vector<std::uint8_t> kLabels = {2, 0, 1};

std::string error_of(const std::string& images, const std::string& labels) {
  try {
    (void)load_idx(images, labels);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(IdxTest, ParsesHeaderAndData) {
  const IdxArray a = parse_idx(idx_bytes({3, 2, 2}, kPixels), "mem");
  EXPECT_EQ(a.dims, (std::vector<std::size_t>{3, 2, 2}));
  EXPECT_EQ(a.data, kPixels);
}

TEST(IdxTest, LoadsPlainAndGzippedImagesWithLabels) {
  TempDir dir;
  for (const bool gz : {false, true}) {
    const std::string images = gz ? dir.write_gz("img.gz", idx_bytes({3, 2, 2}, kPixels))
                                  : dir.write("img", idx_bytes({3, 2, 2}, kPixels));
    const std::string labels = gz ? dir.write_gz("lab.gz", idx_bytes({3}, kLabels))
                                  : dir.write("lab", idx_bytes({3}, kLabels));
    const Dataset d = load_idx(images, labels);
    ASSERT_EQ(d.rows(), 3u);
    ASSERT_EQ(d.cols(), 4u);
    EXPECT_FALSE(d.is_sparse());
    EXPECT_FLOAT_EQ(d.dense()(0, 1), 1.0f / 255.0f);
    EXPECT_FLOAT_EQ(d.dense()(1, 0), 4.0f / 255.0f);
    EXPECT_FLOAT_EQ(d.dense()(2, 3), 1.0f);
    EXPECT_EQ(d.num_classes(), 3u);  // max label + 1
    EXPECT_EQ(std::vector<std::int32_t>(d.classes().begin(), d.classes().end()),
              (std::vector<std::int32_t>{2, 0, 1}));
    EXPECT_EQ(load_idx(images, labels, 10).num_classes(), 10u);
    EXPECT_THROW((void)load_idx(images, labels, 2), IoError);  // label 2 is not below 2
  }
}

TEST(IdxTest, ErrorsNameTheFileAndProblem) {
  TempDir dir;
  const std::string labels = dir.write("lab", idx_bytes({3}, kLabels));
  struct Case {
    std::string name;
    std::string bytes;
    std::string problem;
  };
  std::string trailing = idx_bytes({3, 2, 2}, kPixels) + "x";
  const std::vector<Case> cases = {
      {"short", std::string("\0\0", 2), "shorter than the 4-byte magic"},
      {"magic", "PK\x03\x04rest", "not an IDX file (magic starts with 0x50 0x4B"},
      {"type", idx_bytes({3, 2, 2}, kPixels, 0x0D), "data type 0x0D not supported"},
      {"header", idx_bytes({3, 2, 2}, {}).substr(0, 9), "truncated IDX header"},
      {"truncated", idx_bytes({3, 2, 2}, {1, 2, 3}),
       "announces 12 data bytes, file has 3 (truncated)"},
      {"trailing", trailing, "file has 13 (trailing bytes)"},
      {"onedim", idx_bytes({12}, kPixels), "images need at least 2 dimensions"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.write(c.name, c.bytes);
    const std::string message = error_of(path, labels);
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << c.name << " -> " << message;
    EXPECT_NE(message.find(c.problem), std::string::npos) << c.name << " -> " << message;
  }
  const std::string images = dir.write("img", idx_bytes({3, 2, 2}, kPixels));
  const std::string two = dir.write("two", idx_bytes({2}, {0, 1}));
  const std::string mismatch = error_of(images, two);
  EXPECT_NE(mismatch.find(images + " has 3 images but " + two + " has 2 labels"), std::string::npos)
      << mismatch;
  const std::string flat = dir.write("flat", idx_bytes({3, 1}, kLabels));
  EXPECT_NE(error_of(images, flat).find("labels need 1 dimension"), std::string::npos);
}

TEST(IdxTest, FashionMnistMissingSaysHowToInstall) {
  TempDir dir;
  try {
    (void)load_fashion_mnist(dir.path().string());
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("fashion-mnist not found in " + dir.path().string() +
                                              "; install it with `apt-get install "
                                              "dataset-fashion-mnist` (or run scripts/setup)",
                                          0),
              0u)
        << e.what();
  }
}

TEST(IdxTest, FashionMnistLoadsWhenPresent) {
  const std::string dir(kFashionMnistDir);
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "fashion-mnist not installed in " << dir;
  }
  const TrainTest fm = load_fashion_mnist(dir);
  EXPECT_EQ(fm.train.rows(), 60000u);
  EXPECT_EQ(fm.train.cols(), 784u);
  EXPECT_EQ(fm.train.num_classes(), 10u);
  EXPECT_EQ(fm.test.rows(), 10000u);
  EXPECT_EQ(fm.test.cols(), 784u);
  EXPECT_EQ(fm.test.num_classes(), 10u);
  EXPECT_GE(fm.train.dense().minCoeff(), 0.0f);
  EXPECT_LE(fm.train.dense().maxCoeff(), 1.0f);
  // Fashion-MNIST is balanced: 6000 training images per class.
  std::vector<int> counts(10, 0);
  for (std::int32_t c : fm.train.classes()) ++counts[static_cast<std::size_t>(c)];
  for (int c : counts) EXPECT_EQ(c, 6000);
}

}  // namespace
}  // namespace thinwire::data
