// Internal: the rows of a batch as Eigen matrices of the evaluation's scalar type, chunk by chunk.
//
// Problems process a batch in chunks of at most kChunkRows rows so that full-batch evaluation on
// a large data set never materializes batch-sized intermediates (activations, double copies).
// A chunk is a view into the data set when no copy is needed (float, all rows: contiguous), and
// otherwise is gathered into a buffer that is reused across calls (no allocation in steady state).
#pragma once

#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "thinwire/data/dataset.hpp"
#include "thinwire/problem/problem.hpp"

namespace thinwire::problem::detail {

inline constexpr std::size_t kChunkRows = 4096;

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using DenseRows = Eigen::Map<const RowMatrix<T>>;
template <class T>
using SparseRows = Eigen::Map<const Eigen::SparseMatrix<T, Eigen::RowMajor>>;
using StorageIndex = data::SparseMatrix::StorageIndex;

inline Eigen::Index eidx(std::size_t i) noexcept { return static_cast<Eigen::Index>(i); }

template <class T>
class RowGather {
 public:
  // Rows [begin, begin + count) of the batch, dense data.
  DenseRows<T> dense(const Batch& batch, std::size_t begin, std::size_t count) {
    const data::DenseMatrix& x = batch.data().dense();
    if constexpr (std::is_same_v<T, float>) {
      if (batch.is_all())
        return DenseRows<T>(x.data() + begin * batch.data().cols(), eidx(count), x.cols());
    }
    dense_.resize(eidx(count), x.cols());
    for (std::size_t i = 0; i < count; ++i) {
      dense_.row(eidx(i)) = x.row(eidx(batch.row(begin + i))).template cast<T>();
    }
    return DenseRows<T>(dense_.data(), dense_.rows(), dense_.cols());
  }

  // Rows [begin, begin + count) of the batch, sparse data. The outer index array is always rebuilt
  // (count + 1 entries, starting at 0); inner indices and values are only copied when the rows are
  // not contiguous or the scalar type differs.
  SparseRows<T> sparse(const Batch& batch, std::size_t begin, std::size_t count) {
    const data::SparseMatrix& x = batch.data().sparse();
    const StorageIndex* x_outer = x.outerIndexPtr();
    outer_.resize(count + 1);
    outer_[0] = 0;
    if (batch.is_all()) {
      const StorageIndex base = x_outer[begin];
      for (std::size_t i = 0; i <= count; ++i) outer_[i] = x_outer[begin + i] - base;
      if constexpr (std::is_same_v<T, float>) {
        return SparseRows<T>(eidx(count), x.cols(), outer_[count], outer_.data(),
                             x.innerIndexPtr() + base, x.valuePtr() + base);
      }
    } else {
      for (std::size_t i = 0; i < count; ++i) {
        const auto r = eidx(batch.row(begin + i));
        outer_[i + 1] = outer_[i] + (x_outer[r + 1] - x_outer[r]);
      }
    }
    inner_.resize(static_cast<std::size_t>(outer_[count]));
    values_.resize(inner_.size());
    for (std::size_t i = 0; i < count; ++i) {
      const auto r = eidx(batch.row(begin + i));
      const auto from = x_outer[r];
      const auto to = x_outer[r + 1];
      std::copy(x.innerIndexPtr() + from, x.innerIndexPtr() + to, inner_.begin() + outer_[i]);
      std::transform(x.valuePtr() + from, x.valuePtr() + to, values_.begin() + outer_[i],
                     [](float v) { return static_cast<T>(v); });
    }
    return SparseRows<T>(eidx(count), x.cols(), outer_[count], outer_.data(), inner_.data(),
                         values_.data());
  }

 private:
  RowMatrix<T> dense_;
  std::vector<StorageIndex> outer_;
  std::vector<StorageIndex> inner_;
  std::vector<T> values_;
};

// Calls f(rows, begin, count) for every chunk of the batch, where rows is a DenseRows<T> or a
// SparseRows<T> (f is generic) holding batch rows [begin, begin + count).
template <class T, class F>
void for_each_chunk(const Batch& batch, RowGather<T>& gather, F&& f) {
  const bool sparse = batch.data().is_sparse();
  for (std::size_t begin = 0; begin < batch.size(); begin += kChunkRows) {
    const std::size_t count = std::min(kChunkRows, batch.size() - begin);
    if (sparse) {
      f(gather.sparse(batch, begin, count), begin, count);
    } else {
      f(gather.dense(batch, begin, count), begin, count);
    }
  }
}

struct RowScratch {
  RowGather<float> f32;
  RowGather<double> f64;

  template <class T>
  RowGather<T>& get() noexcept {
    if constexpr (std::is_same_v<T, float>) {
      return f32;
    } else {
      return f64;
    }
  }
};

}  // namespace thinwire::problem::detail
