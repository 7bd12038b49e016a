#include "thinwire/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::data {
namespace {

std::string label_of(const std::string& name) { return name.empty() ? "dataset" : name; }

// Copies the given rows of a CSR matrix into a new compressed CSR matrix.
SparseMatrix gather_sparse_rows(const SparseMatrix& x, std::span<const std::size_t> rows) {
  std::vector<SparseMatrix::StorageIndex> outer(rows.size() + 1, 0);
  std::size_t nnz = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto r = static_cast<Eigen::Index>(rows[i]);
    nnz += static_cast<std::size_t>(x.outerIndexPtr()[r + 1] - x.outerIndexPtr()[r]);
    outer[i + 1] = static_cast<SparseMatrix::StorageIndex>(nnz);
  }
  std::vector<SparseMatrix::StorageIndex> inner(nnz);
  std::vector<float> values(nnz);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto r = static_cast<Eigen::Index>(rows[i]);
    const auto begin = x.outerIndexPtr()[r];
    const auto end = x.outerIndexPtr()[r + 1];
    std::copy(x.innerIndexPtr() + begin, x.innerIndexPtr() + end, inner.begin() + outer[i]);
    std::copy(x.valuePtr() + begin, x.valuePtr() + end, values.begin() + outer[i]);
  }
  SparseMatrix out = Eigen::Map<const SparseMatrix>(static_cast<Eigen::Index>(rows.size()),
                                                    x.cols(), static_cast<Eigen::Index>(nnz),
                                                    outer.data(), inner.data(), values.data());
  out.makeCompressed();
  return out;
}

}  // namespace

Dataset::Dataset(Features features, std::vector<float> targets, std::vector<std::int32_t> classes,
                 std::vector<double> class_values, std::string name)
    : features_(std::move(features)),
      targets_(std::move(targets)),
      classes_(std::move(classes)),
      class_values_(std::move(class_values)),
      name_(std::move(name)) {
  std::visit(
      [&](auto& x) {
        rows_ = static_cast<std::size_t>(x.rows());
        cols_ = static_cast<std::size_t>(x.cols());
      },
      features_);
  if (auto* sparse_x = std::get_if<SparseMatrix>(&features_)) sparse_x->makeCompressed();
  const std::string what = label_of(name_);
  if (targets_.size() != rows_) {
    throw InvalidArgument(what + ": " + std::to_string(targets_.size()) + " targets for " +
                          std::to_string(rows_) + " rows");
  }
  if (classes_.empty() != class_values_.empty() && rows_ > 0) {
    throw InvalidArgument(what + ": class ids and class values must be given together");
  }
  if (!classes_.empty() && classes_.size() != rows_) {
    throw InvalidArgument(what + ": " + std::to_string(classes_.size()) + " class ids for " +
                          std::to_string(rows_) + " rows");
  }
  const auto k = static_cast<std::int64_t>(class_values_.size());
  for (std::size_t i = 0; i < classes_.size(); ++i) {
    if (classes_[i] < 0 || classes_[i] >= k) {
      throw InvalidArgument(what + ": row " + std::to_string(i) + " has class id " +
                            std::to_string(classes_[i]) + ", outside [0, " + std::to_string(k) +
                            ")");
    }
  }
}

std::size_t Dataset::nonzeros() const noexcept {
  if (const auto* x = std::get_if<SparseMatrix>(&features_)) {
    return static_cast<std::size_t>(x->nonZeros());
  }
  return rows_ * cols_;
}

const DenseMatrix& Dataset::dense() const {
  if (const auto* x = std::get_if<DenseMatrix>(&features_)) return *x;
  throw InvalidArgument(label_of(name_) + ": features are sparse, dense features needed");
}

const SparseMatrix& Dataset::sparse() const {
  if (const auto* x = std::get_if<SparseMatrix>(&features_)) return *x;
  throw InvalidArgument(label_of(name_) + ": features are dense, sparse features needed");
}

std::string Dataset::describe() const {
  std::string s =
      label_of(name_) + ": " + std::to_string(rows_) + " x " + std::to_string(cols_) +
      (is_sparse() ? " sparse (" + std::to_string(nonzeros()) + " non-zeros)" : " dense");
  if (has_classes()) {
    s += ", " + std::to_string(num_classes()) + " classes";
  } else {
    s += ", real targets";
  }
  return s;
}

Dataset Dataset::subset(std::span<const std::size_t> rows) const {
  for (std::size_t r : rows) {
    if (r >= rows_) {
      throw InvalidArgument(label_of(name_) + ": row " + std::to_string(r) +
                            " is outside the data set (" + std::to_string(rows_) + " rows)");
    }
  }
  Features features;
  if (const auto* x = std::get_if<DenseMatrix>(&features_)) {
    DenseMatrix out(static_cast<Eigen::Index>(rows.size()), x->cols());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      out.row(static_cast<Eigen::Index>(i)) = x->row(static_cast<Eigen::Index>(rows[i]));
    }
    features = std::move(out);
  } else {
    features = gather_sparse_rows(std::get<SparseMatrix>(features_), rows);
  }
  std::vector<float> targets(rows.size());
  std::vector<std::int32_t> classes(classes_.empty() ? 0 : rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    targets[i] = targets_[rows[i]];
    if (!classes_.empty()) classes[i] = classes_[rows[i]];
  }
  return Dataset(std::move(features), std::move(targets), std::move(classes), class_values_, name_);
}

void Batch::validate(std::string_view what) const {
  if (size() == 0) throw InvalidArgument(std::string(what) + ": empty batch");
  if (all_) return;
  const std::size_t n = data_->rows();
  for (std::size_t r : rows_) {
    if (r >= n) {
      throw InvalidArgument(std::string(what) + ": batch row " + std::to_string(r) +
                            " is outside " + label_of(data_->name()) + " (" + std::to_string(n) +
                            " rows)");
    }
  }
}

Dataset select_classes(const Dataset& data, std::span<const double> values) {
  const std::string what = label_of(data.name());
  if (!data.has_classes()) {
    throw InvalidArgument(what + ": cannot select classes of a data set without classes");
  }
  if (values.empty()) throw InvalidArgument(what + ": no classes selected");
  // new_id[old class id] = position in `values`, or -1 when the class is dropped.
  std::vector<std::int32_t> new_id(data.num_classes(), -1);
  for (std::size_t j = 0; j < values.size(); ++j) {
    const auto cv = data.class_values();
    const auto it = std::find(cv.begin(), cv.end(), values[j]);
    if (it == cv.end()) {
      throw InvalidArgument(what + ": has no class with label " + std::to_string(values[j]));
    }
    auto& slot = new_id[static_cast<std::size_t>(it - cv.begin())];
    if (slot >= 0) {
      throw InvalidArgument(what + ": class " + std::to_string(values[j]) + " selected twice");
    }
    slot = static_cast<std::int32_t>(j);
  }
  std::vector<std::size_t> keep;
  const auto classes = data.classes();
  for (std::size_t i = 0; i < classes.size(); ++i) {
    if (new_id[static_cast<std::size_t>(classes[i])] >= 0) keep.push_back(i);
  }
  const Dataset picked = data.subset(keep);
  std::vector<std::int32_t> ids(keep.size());
  std::vector<float> targets(keep.size());
  for (std::size_t i = 0; i < keep.size(); ++i) {
    ids[i] = new_id[static_cast<std::size_t>(classes[keep[i]])];
    targets[i] = values.size() == 2 ? (ids[i] == 1 ? 1.0f : -1.0f) : static_cast<float>(ids[i]);
  }
  return Dataset(picked.features(), std::move(targets), std::move(ids),
                 std::vector<double>(values.begin(), values.end()), data.name());
}

Dataset to_sparse(const Dataset& data) {
  if (data.is_sparse()) return data;
  SparseMatrix x = data.dense().sparseView();
  x.makeCompressed();
  const auto targets = data.targets();
  return Dataset(std::move(x), {targets.begin(), targets.end()},
                 {data.classes().begin(), data.classes().end()},
                 {data.class_values().begin(), data.class_values().end()}, data.name());
}

Dataset to_dense(const Dataset& data) {
  if (!data.is_sparse()) return data;
  DenseMatrix x = DenseMatrix(data.sparse());
  const auto targets = data.targets();
  return Dataset(std::move(x), {targets.begin(), targets.end()},
                 {data.classes().begin(), data.classes().end()},
                 {data.class_values().begin(), data.class_values().end()}, data.name());
}

std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  // Salt 1 separates this shuffle from the sampler's and the sharders' draws on the same seed.
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kData).derive(1));
  for (std::size_t i = n; i > 1; --i) {
    std::swap(idx[i - 1], idx[rng.next_below(i)]);
  }
  return idx;
}

TrainTest train_test_split(const Dataset& data, double test_fraction, std::uint64_t seed) {
  if (!(test_fraction >= 0.0 && test_fraction < 1.0)) {
    throw InvalidArgument("train/test split: test fraction must be in [0, 1), got " +
                          std::to_string(test_fraction));
  }
  const std::vector<std::size_t> perm = shuffled_indices(data.rows(), seed);
  const auto n_test =
      static_cast<std::size_t>(std::llround(test_fraction * static_cast<double>(data.rows())));
  std::vector<std::size_t> test(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(n_test));
  std::vector<std::size_t> train(perm.begin() + static_cast<std::ptrdiff_t>(n_test), perm.end());
  std::sort(test.begin(), test.end());
  std::sort(train.begin(), train.end());
  TrainTest out{data.subset(train), data.subset(test)};
  out.train.set_name(data.name() + " train");
  out.test.set_name(data.name() + " test");
  return out;
}

}  // namespace thinwire::data
