#include "thinwire/data/libsvm.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

using testing::TempDir;

// The IoError message of reading `text` from a file, or "" if it parsed.
std::string error_of(const TempDir& dir, const std::string& text, LibsvmOptions options = {}) {
  const std::string path = dir.write("bad.svm", text);
  try {
    (void)read_libsvm(path, options);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(LibsvmTest, ParsesSparseRowsLabelsCommentsAndBlankLines) {
  TempDir dir;
  const std::string path = dir.write("a.svm",
                                     "# header comment\n"
                                     "+1 1:0.5 3:-2 # trailing comment\n"
                                     "\n"
                                     "-1 2:1e-3\r\n"
                                     "   \t\n"
                                     "-1\n"
                                     "+1 qid:7 1:1 4:4\n");
  const Dataset d = read_libsvm(path);
  EXPECT_EQ(d.name(), "a.svm");
  ASSERT_EQ(d.rows(), 4u);
  ASSERT_EQ(d.cols(), 4u);
  ASSERT_TRUE(d.is_sparse());
  EXPECT_EQ(d.nonzeros(), 5u);
  const DenseMatrix x = DenseMatrix(d.sparse());
  EXPECT_FLOAT_EQ(x(0, 0), 0.5f);
  EXPECT_FLOAT_EQ(x(0, 2), -2.0f);
  EXPECT_FLOAT_EQ(x(1, 1), 1e-3f);
  EXPECT_EQ(x.row(2).squaredNorm(), 0.0f);  // a row with no features
  EXPECT_FLOAT_EQ(x(3, 3), 4.0f);
  ASSERT_TRUE(d.has_classes());
  EXPECT_EQ(d.num_classes(), 2u);
  EXPECT_EQ(std::vector<double>(d.class_values().begin(), d.class_values().end()),
            (std::vector<double>{-1, 1}));
  EXPECT_EQ(std::vector<std::int32_t>(d.classes().begin(), d.classes().end()),
            (std::vector<std::int32_t>{1, 0, 0, 1}));
  EXPECT_EQ(std::vector<float>(d.targets().begin(), d.targets().end()),
            (std::vector<float>{1, -1, -1, 1}));
}

TEST(LibsvmTest, LabelKinds) {
  // 0/1 labels.
  const Dataset zero_one = parse_libsvm("1 1:1\n0 2:1\n", "s");
  EXPECT_EQ(zero_one.num_classes(), 2u);
  EXPECT_EQ(zero_one.classes()[0], 1);
  EXPECT_EQ(zero_one.class_values()[0], 0.0);
  // Only +1 present: still two classes, {-1, +1}; only 0 present: {0, 1}.
  const Dataset ones = parse_libsvm("+1 1:1\n+1 2:1\n", "s");
  EXPECT_EQ(ones.num_classes(), 2u);
  EXPECT_EQ(ones.classes()[1], 1);
  EXPECT_EQ(ones.class_values()[0], -1.0);
  EXPECT_EQ(parse_libsvm("0 1:1\n", "s").class_values()[1], 1.0);
  // Multi-class integers: one class per distinct value, in increasing order.
  const Dataset multi = parse_libsvm("3 1:1\n7 1:1\n5 1:1\n3 1:1\n", "s");
  EXPECT_EQ(multi.num_classes(), 3u);
  EXPECT_EQ(std::vector<std::int32_t>(multi.classes().begin(), multi.classes().end()),
            (std::vector<std::int32_t>{0, 2, 1, 0}));
  EXPECT_EQ(multi.class_values()[2], 7.0);
  // Reals: regression, targets kept.
  const Dataset real = parse_libsvm("0.25 1:1\n-3.5 1:1\n", "s");
  EXPECT_FALSE(real.has_classes());
  EXPECT_FLOAT_EQ(real.targets()[1], -3.5f);
  // Forced modes.
  EXPECT_FALSE(parse_libsvm("1 1:1\n", "s", {.labels = LabelMode::kRegression}).has_classes());
  EXPECT_THROW((void)parse_libsvm("1 1:1\n0.5 1:1\n", "s", {.labels = LabelMode::kClasses}),
               IoError);
}

TEST(LibsvmTest, NumFeaturesWidensAndLimits) {
  const Dataset d = parse_libsvm("1 2:1\n", "s", {.num_features = 10});
  EXPECT_EQ(d.cols(), 10u);
  EXPECT_THROW((void)parse_libsvm("1 11:1\n", "s", {.num_features = 10}), IoError);
}

TEST(LibsvmTest, ReadsGzip) {
  TempDir dir;
  const std::string text = "1 1:1 5:2\n0 2:3\n";
  // The name does not say .gz: detection is by magic bytes.
  const Dataset d = read_libsvm(dir.write_gz("zipped.svm", text));
  EXPECT_EQ(d.rows(), 2u);
  EXPECT_EQ(d.cols(), 5u);
  EXPECT_FLOAT_EQ(DenseMatrix(d.sparse())(1, 1), 3.0f);
}

TEST(LibsvmTest, EveryMalformedLineNamesFileAndLine) {
  TempDir dir;
  const std::string file = (dir.path() / "bad.svm").string();
  // Two good lines (one blank, one comment) before the bad one: the bad line is line 4.
  const std::string prefix = "+1 1:1\n\n# comment\n";
  struct Case {
    std::string line;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {"abc 1:1", "bad label 'abc'"},
      {"1:1 2:2", "expected a label first"},
      {"+1 3", "missing ':'"},
      {"+1 0:1", "feature index 0"},
      {"+1 3:1 2:1", "feature index 2 after 3"},
      {"+1 2:1 2:1", "feature index 2 after 2"},
      {"+1 x:1", "bad feature index 'x'"},
      {"+1 -2:1", "bad feature index '-2'"},
      {"+1 2:abc", "bad feature value 'abc'"},
      {"+1 2:", "bad feature value ''"},
      {"+1 2:nan", "bad feature value 'nan'"},
      {"+1 2:inf", "bad feature value 'inf'"},
      {"+1 2:1e39", "out of float range"},
      {"1e39 2:1", "label '1e39' is out of float range"},
      {"+1 2:1:3", "bad feature value '1:3'"},
      {"+1 99999999999 :1", "missing ':'"},
      {"+1 5000000000:1", "is too large"},
  };
  for (const Case& c : cases) {
    const std::string message = error_of(dir, prefix + c.line + "\n-1 1:1\n");
    EXPECT_EQ(message.rfind(file + ":4: ", 0), 0u) << c.line << " -> " << message;
    EXPECT_NE(message.find(c.problem), std::string::npos) << c.line << " -> " << message;
  }
  const std::string wide = error_of(dir, prefix + "+1 9:1\n", {.num_features = 8});
  EXPECT_EQ(wide.rfind(file + ":4: feature index 9 exceeds the 8 features", 0), 0u) << wide;
  const std::string real = error_of(dir, prefix + "0.5 1:1\n", {.labels = LabelMode::kClasses});
  EXPECT_EQ(real.rfind(file + ":4: label", 0), 0u) << real;
}

TEST(LibsvmTest, MissingAndCorruptFiles) {
  TempDir dir;
  const std::string missing = (dir.path() / "nope.svm").string();
  try {
    (void)read_libsvm(missing);
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing + ": cannot open"), std::string::npos);
  }
  // A truncated gzip stream is an error, not a silently short file.
  const std::string gz = dir.write_gz("full.svm.gz", std::string(5000, '\n') + "1 1:1\n");
  std::string bytes;
  {
    std::ifstream in(gz, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string cut = dir.write("cut.svm.gz", bytes.substr(0, bytes.size() - 10));
  try {
    (void)read_libsvm(cut);
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(cut + ": truncated gzip"), std::string::npos) << e.what();
  }
  const std::string garbage =
      dir.write("garbage.svm.gz", std::string("\x1f\x8b\x08\x00junkjunkjunk", 16));
  EXPECT_THROW((void)read_libsvm(garbage), IoError);
}

TEST(LibsvmTest, PairSharesWidthAndClasses) {
  TempDir dir;
  const std::string train = dir.write("train.svm", "1 1:1\n3 2:1\n");
  const std::string test = dir.write("test.svm", "2 5:1\n3 1:1\n");
  const TrainTest tt = read_libsvm_pair(train, test);
  EXPECT_EQ(tt.train.cols(), 5u);
  EXPECT_EQ(tt.test.cols(), 5u);
  ASSERT_EQ(tt.train.num_classes(), 3u);
  ASSERT_EQ(tt.test.num_classes(), 3u);
  EXPECT_EQ(tt.train.classes()[1], 2);  // label 3
  EXPECT_EQ(tt.test.classes()[0], 1);   // label 2
  EXPECT_EQ(tt.test.classes()[1], 2);   // label 3
}

}  // namespace
}  // namespace thinwire::data
