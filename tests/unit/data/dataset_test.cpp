#include "thinwire/data/dataset.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

// Five rows, row i = (i, 0, -i), classes 0,1,2,0,1 with raw labels 10, 20, 30.
Dataset small() {
  DenseMatrix x(5, 3);
  for (int i = 0; i < 5; ++i) x.row(i) << static_cast<float>(i), 0.0f, static_cast<float>(-i);
  return Dataset(x, {10, 20, 30, 10, 20}, {0, 1, 2, 0, 1}, {10, 20, 30}, "small");
}

TEST(DatasetTest, ValidatesShapes) {
  const DenseMatrix x = DenseMatrix::Zero(2, 2);
  EXPECT_THROW(Dataset(x, {1.0f}), InvalidArgument);                  // targets
  EXPECT_THROW(Dataset(x, {1, 2}, {0}, {0, 1}), InvalidArgument);     // class count
  EXPECT_THROW(Dataset(x, {1, 2}, {0, 2}, {0, 1}), InvalidArgument);  // class id range
  EXPECT_THROW(Dataset(x, {1, 2}, {0, 1}, {}), InvalidArgument);      // values missing
  const Dataset regression(x, {1, 2});
  EXPECT_FALSE(regression.has_classes());
  EXPECT_THROW((void)regression.sparse(), InvalidArgument);
  EXPECT_EQ(small().describe(), "small: 5 x 3 dense, 3 classes");
}

TEST(DatasetTest, SubsetCopiesRowsInOrderDenseAndSparse) {
  const std::vector<std::size_t> rows = {4, 1, 1};
  for (const Dataset& d : {small(), to_sparse(small())}) {
    const Dataset s = d.subset(rows);
    ASSERT_EQ(s.rows(), 3u);
    EXPECT_EQ(s.is_sparse(), d.is_sparse());
    const DenseMatrix x = to_dense(s).dense();
    EXPECT_EQ(x(0, 0), 4.0f);
    EXPECT_EQ(x(0, 2), -4.0f);
    EXPECT_EQ(x(2, 0), 1.0f);
    EXPECT_EQ(s.classes()[0], 1);
    EXPECT_EQ(s.targets()[1], 20.0f);
    EXPECT_EQ(s.num_classes(), 3u);
    EXPECT_THROW((void)d.subset(std::vector<std::size_t>{5}), InvalidArgument);
  }
  // Sparse drops explicit zeros: rows 0..4 have 0, 2, 2, 2, 2 non-zeros.
  EXPECT_EQ(to_sparse(small()).nonzeros(), 8u);
}

TEST(DatasetTest, SelectClassesRenumbersAndMakesBinaryTargets) {
  const std::vector<double> pair = {30, 10};
  const Dataset b = select_classes(small(), pair);
  ASSERT_EQ(b.rows(), 3u);  // rows 0, 2, 3
  EXPECT_EQ(b.num_classes(), 2u);
  EXPECT_EQ(std::vector<std::int32_t>(b.classes().begin(), b.classes().end()),
            (std::vector<std::int32_t>{1, 0, 1}));
  EXPECT_EQ(std::vector<float>(b.targets().begin(), b.targets().end()),
            (std::vector<float>{1, -1, 1}));
  EXPECT_EQ(b.dense()(1, 0), 2.0f);
  const std::vector<double> three = {20, 10, 30};
  const Dataset t = select_classes(small(), three);
  EXPECT_EQ(t.rows(), 5u);
  EXPECT_EQ(t.classes()[0], 1);
  EXPECT_EQ(t.targets()[0], 1.0f);  // the new class id
  EXPECT_THROW((void)select_classes(small(), std::vector<double>{40}), InvalidArgument);
  EXPECT_THROW((void)select_classes(small(), std::vector<double>{10, 10}), InvalidArgument);
}

TEST(DatasetTest, BatchValidatesRows) {
  const Dataset d = small();
  EXPECT_EQ(Batch::all(d).size(), 5u);
  EXPECT_EQ(Batch::all(d).row(3), 3u);
  const std::vector<std::size_t> rows = {2, 4};
  EXPECT_EQ(Batch::of(d, rows).row(1), 4u);
  EXPECT_NO_THROW(Batch::of(d, rows).validate("t"));
  const std::vector<std::size_t> bad = {1, 5};
  EXPECT_THROW(Batch::of(d, bad).validate("t"), InvalidArgument);
  EXPECT_THROW(Batch::of(d, {}).validate("t"), InvalidArgument);
}

TEST(DatasetTest, TrainTestSplitPartitionsDeterministically) {
  DenseMatrix x(100, 1);
  for (int i = 0; i < 100; ++i) x(i, 0) = static_cast<float>(i);
  const Dataset d(x, std::vector<float>(100, 0.0f));
  const TrainTest a = train_test_split(d, 0.25, 7);
  const TrainTest b = train_test_split(d, 0.25, 7);
  const TrainTest c = train_test_split(d, 0.25, 8);
  ASSERT_EQ(a.test.rows(), 25u);
  ASSERT_EQ(a.train.rows(), 75u);
  std::vector<float> all;
  for (const Dataset* part : {&a.train, &a.test}) {
    for (Eigen::Index i = 0; i < part->dense().rows(); ++i) all.push_back(part->dense()(i, 0));
  }
  std::sort(all.begin(), all.end());
  std::vector<float> expected(100);
  std::iota(expected.begin(), expected.end(), 0.0f);
  EXPECT_EQ(all, expected);  // every row exactly once
  EXPECT_EQ(a.test.dense(), b.test.dense());
  EXPECT_NE(a.test.dense(), c.test.dense());
  EXPECT_THROW((void)train_test_split(d, 1.0, 0), InvalidArgument);
  std::vector<std::size_t> perm = shuffled_indices(100, 3);
  EXPECT_NE(perm, shuffled_indices(100, 4));
  std::sort(perm.begin(), perm.end());
  std::vector<std::size_t> identity(100);
  std::iota(identity.begin(), identity.end(), std::size_t{0});
  EXPECT_EQ(perm, identity);
}

}  // namespace
}  // namespace thinwire::data
