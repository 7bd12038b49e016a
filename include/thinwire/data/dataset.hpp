// Dataset: a feature matrix (dense or sparse, one row per example) with its labels, and Batch, the
// view of some of its rows that a loss or gradient is evaluated on.
//
// Labels come in two forms, both kept when they exist:
//   - targets: one float per row; what least squares regresses on. Raw label values as read
//     (LIBSVM, IDX), except that binary data sets made by select_classes() use -1/+1;
//   - classes: one class id in [0, num_classes) per row, for classification data. class_values()
//     gives the raw label value of each id (e.g. {-1, +1} for a LIBSVM file with +1/-1 labels,
//     {0, ..., 9} for Fashion-MNIST). Binary problems use class 0 as "negative", 1 as "positive".
// Regression data has targets only (num_classes() == 0).
//
// A Dataset owns its storage. subset() copies rows (one-off: train/test splits, class selection);
// the hot path never copies a data set: workers keep lists of row indices (shards) and evaluate on
// Batch views, and problems gather just the batch rows into preallocated scratch space.
#pragma once

#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace thinwire::data {

// Dense features: n x d, row-major so that one example is contiguous (gathering a minibatch is a
// copy of whole rows).
using DenseMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Sparse features: compressed sparse rows (CSR), always kept compressed.
using SparseMatrix = Eigen::SparseMatrix<float, Eigen::RowMajor>;
using Features = std::variant<DenseMatrix, SparseMatrix>;

class Dataset {
 public:
  // An empty data set (0 x 0), e.g. "no test set".
  Dataset() = default;

  // Validates shapes: targets.size() == rows; classes empty or of size rows with ids in
  // [0, class_values.size()); class_values empty iff classes empty. Throws InvalidArgument.
  Dataset(Features features, std::vector<float> targets, std::vector<std::int32_t> classes = {},
          std::vector<double> class_values = {}, std::string name = {});

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }
  [[nodiscard]] bool empty() const noexcept { return rows_ == 0; }
  [[nodiscard]] bool is_sparse() const noexcept {
    return std::holds_alternative<SparseMatrix>(features_);
  }
  // Stored feature values (rows * cols when dense).
  [[nodiscard]] std::size_t nonzeros() const noexcept;

  [[nodiscard]] const Features& features() const noexcept { return features_; }
  // The dense / sparse matrix; throws InvalidArgument naming the data set if it is the other kind.
  [[nodiscard]] const DenseMatrix& dense() const;
  [[nodiscard]] const SparseMatrix& sparse() const;

  [[nodiscard]] std::span<const float> targets() const noexcept { return targets_; }
  [[nodiscard]] bool has_classes() const noexcept { return !class_values_.empty(); }
  [[nodiscard]] std::span<const std::int32_t> classes() const noexcept { return classes_; }
  [[nodiscard]] std::size_t num_classes() const noexcept { return class_values_.size(); }
  [[nodiscard]] std::span<const double> class_values() const noexcept { return class_values_; }

  // A short name for messages and logs ("fashion-mnist train", "a9a.svm").
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  // "NAME: 60000 x 784 dense, 10 classes".
  [[nodiscard]] std::string describe() const;

  // A new data set holding copies of the given rows, in the given order (repeats allowed). Class
  // ids and class_values are kept as they are. Throws InvalidArgument for an index >= rows().
  [[nodiscard]] Dataset subset(std::span<const std::size_t> rows) const;

 private:
  Features features_;
  std::vector<float> targets_;
  std::vector<std::int32_t> classes_;
  std::vector<double> class_values_;
  std::string name_;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
};

// Rows of a data set that one evaluation averages over: all of them (full-batch GD, evaluation)
// or a list of row indices (a minibatch, a worker's shard). A non-owning view: the data set and
// the index list must outlive it.
class Batch {
 public:
  [[nodiscard]] static Batch all(const Dataset& data) noexcept { return Batch(data, {}, true); }
  [[nodiscard]] static Batch of(const Dataset& data, std::span<const std::size_t> rows) noexcept {
    return Batch(data, rows, false);
  }

  [[nodiscard]] const Dataset& data() const noexcept { return *data_; }
  [[nodiscard]] bool is_all() const noexcept { return all_; }
  [[nodiscard]] std::size_t size() const noexcept { return all_ ? data_->rows() : rows_.size(); }
  // Index into data() of the i-th row of the batch.
  [[nodiscard]] std::size_t row(std::size_t i) const noexcept { return all_ ? i : rows_[i]; }
  // The index list (empty when is_all()).
  [[nodiscard]] std::span<const std::size_t> indices() const noexcept { return rows_; }

  // Throws InvalidArgument if the batch is empty or names a row outside the data set.
  void validate(std::string_view what) const;

 private:
  Batch(const Dataset& data, std::span<const std::size_t> rows, bool all) noexcept
      : data_(&data), rows_(rows), all_(all) {}

  const Dataset* data_;
  std::span<const std::size_t> rows_;
  bool all_;
};

// Keeps the rows whose class has one of the given raw label values (matched against
// class_values()), and renumbers classes in the order given: select_classes(fmnist, {0, 6}) makes
// T-shirt class 0 and Shirt class 1. With two values the targets become -1/+1 (a binary problem);
// otherwise they become the new class ids. Throws InvalidArgument if the data set has no classes,
// a value is not one of its classes, or a value repeats.
[[nodiscard]] Dataset select_classes(const Dataset& data, std::span<const double> values);

// The same data with dense / sparse storage (explicit zeros are dropped when going sparse).
[[nodiscard]] Dataset to_sparse(const Dataset& data);
[[nodiscard]] Dataset to_dense(const Dataset& data);

// A training set and a test set (the test set may be empty).
struct TrainTest {
  Dataset train;
  Dataset test;
};

// Row indices 0..n-1 shuffled by `seed` (Fisher-Yates over RngPurpose::kData draws).
[[nodiscard]] std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);

// Splits a seeded shuffle of the rows: the first round(test_fraction * n) rows of the shuffle go
// to the test set, the rest to training, each kept in original order. test_fraction in [0, 1).
// Copies rows. Same seed => same split.
[[nodiscard]] TrainTest train_test_split(const Dataset& data, double test_fraction,
                                         std::uint64_t seed);

}  // namespace thinwire::data
