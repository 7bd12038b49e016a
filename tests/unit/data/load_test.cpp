#include "thinwire/data/load.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "temp_dir.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/data/idx.hpp"

namespace thinwire::data {
namespace {

using testing::TempDir;

TEST(LoadTest, Synthetic) {
  const TrainTest d = load_dataset("synthetic:n=100,d=4,cond=3,task=softmax,classes=3,seed=1");
  EXPECT_EQ(d.train.rows(), 100u);
  EXPECT_EQ(d.train.cols(), 4u);
  EXPECT_EQ(d.train.num_classes(), 3u);
  EXPECT_TRUE(d.test.empty());
  const TrainTest split = load_dataset("synthetic:n=100,d=4,seed=1,test_fraction=0.2,split_seed=3");
  EXPECT_EQ(split.train.rows(), 80u);
  EXPECT_EQ(split.test.rows(), 20u);
  EXPECT_EQ(load_dataset("synthetic:n=100,d=4,seed=1,limit=30").train.rows(), 30u);
}

TEST(LoadTest, LibsvmByPathAndSpec) {
  TempDir dir;
  const std::string train = dir.write("a.svm", "1 1:1\n2 2:1\n3 3:1\n1 1:2\n");
  const std::string test = dir.write("a.t", "2 4:1\n");
  const TrainTest bare = load_dataset(train);
  EXPECT_EQ(bare.train.rows(), 4u);
  EXPECT_TRUE(bare.train.is_sparse());
  const TrainTest pair = load_dataset("libsvm:path=" + train + ",test=" + test);
  EXPECT_EQ(pair.train.cols(), 4u);
  EXPECT_EQ(pair.test.rows(), 1u);
  const TrainTest binary = load_dataset("libsvm:path=" + train + ",classes=3/1");
  EXPECT_EQ(binary.train.rows(), 3u);
  EXPECT_EQ(binary.train.num_classes(), 2u);
  EXPECT_EQ(binary.train.classes()[0], 1);  // label 1 is the second class given
  EXPECT_EQ(binary.train.targets()[0], 1.0f);
  const TrainTest regression =
      load_dataset("libsvm:path=" + train + ",labels=regression,features=9");
  EXPECT_FALSE(regression.train.has_classes());
  EXPECT_EQ(regression.train.cols(), 9u);
}

TEST(LoadTest, IdxSource) {
  TempDir dir;
  const auto idx = [](std::initializer_list<unsigned char> header_and_data) {
    return std::string(header_and_data.begin(), header_and_data.end());
  };
  const std::string images = dir.write("img", idx({0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 1, 7, 9}));
  const std::string labels = dir.write("lab", idx({0, 0, 8, 1, 0, 0, 0, 2, 1, 0}));
  const std::string test_labels = dir.write("tlab", idx({0, 0, 8, 1, 0, 0, 0, 2, 4, 0}));
  const TrainTest d = load_dataset("idx:images=" + images + ",labels=" + labels +
                                   ",test_images=" + images + ",test_labels=" + test_labels);
  EXPECT_EQ(d.train.rows(), 2u);
  EXPECT_EQ(d.train.cols(), 1u);
  EXPECT_EQ(d.train.num_classes(), 5u);  // shared with the test labels (max 4)
  EXPECT_EQ(d.test.num_classes(), 5u);
  EXPECT_FLOAT_EQ(d.train.dense()(1, 0), 9.0f / 255.0f);
  EXPECT_THROW((void)load_dataset("idx:images=" + images), InvalidArgument);
  EXPECT_THROW(
      (void)load_dataset("idx:images=" + images + ",labels=" + labels + ",test_images=" + images),
      InvalidArgument);
}

TEST(LoadTest, Errors) {
  EXPECT_THROW((void)load_dataset("mnist"), InvalidArgument);
  EXPECT_THROW((void)load_dataset("synthetic:n=10,bogus=1"), InvalidArgument);
  EXPECT_THROW((void)load_dataset("libsvm"), InvalidArgument);
  EXPECT_THROW((void)load_dataset("libsvm:path=/nonexistent/x.svm"), IoError);
  EXPECT_THROW((void)load_dataset("fashion-mnist:dir=/nonexistent"), IoError);
  EXPECT_THROW((void)load_dataset("synthetic:n=10,classes=0/x"), InvalidArgument);
  TempDir dir;
  const std::string regression = dir.write("r.svm", "0.5 1:1\n1.5 1:2\n");
  EXPECT_THROW((void)load_dataset("libsvm:path=" + regression + ",classes=0/1"), InvalidArgument);
  const std::string labelled = dir.write("c.svm", "1 1:1\n2 1:2\n");
  EXPECT_THROW((void)load_dataset("libsvm:path=" + labelled + ",classes=1/x"), InvalidArgument);
  EXPECT_THROW((void)load_dataset("libsvm:path=" + labelled + ",classes=1/3"), InvalidArgument);
  EXPECT_THROW((void)load_dataset("libsvm:path=" + labelled + ",test_fraction=1.5"),
               InvalidArgument);
}

TEST(LoadTest, FashionMnistBinaryPair) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "fashion-mnist not installed";
  }
  const TrainTest d = load_dataset("fashion-mnist:classes=0/6");
  EXPECT_EQ(d.train.rows(), 12000u);
  EXPECT_EQ(d.test.rows(), 2000u);
  EXPECT_EQ(d.train.num_classes(), 2u);
  EXPECT_EQ(d.train.cols(), 784u);
  for (float t : d.train.targets()) ASSERT_TRUE(t == 1.0f || t == -1.0f);
}

}  // namespace
}  // namespace thinwire::data
