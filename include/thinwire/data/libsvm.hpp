// LIBSVM / SVMlight text format (sparse):
//
//   line    := label (' ' index ':' value)* ['#' comment]
//   label   := a real number (+1/-1, 0/1, class numbers 1..K, or a regression target)
//   index   := 1-based feature index, strictly increasing within a line
//
// Blank lines and '#' comments are skipped; a "qid:N" token right after the label (ranking data)
// is ignored. Input may be gzip-compressed (detected by its magic bytes, not the file name).
// Every malformed line is an IoError "FILE:LINE: problem", e.g. "a.svm:7: feature index 0 (indices
// are 1-based)".
//
// Labels: with LabelMode::kAuto, labels that are all integers (at most kMaxAutoClasses distinct
// values) make a classification data set: values within {-1, +1} or {0, 1} give two classes
// (class 1 = +1 / 1, even if only one value occurs), other sets give one class per distinct value
// in increasing order (class_values() maps back). Any non-integer label makes it regression. The
// raw values are always kept as targets().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "thinwire/data/dataset.hpp"

namespace thinwire::data {

enum class LabelMode {
  kAuto,        // classes if every label is an integer, else regression (see above)
  kRegression,  // targets only
  kClasses,     // classes; throws IoError at the first non-integer label
};

inline constexpr std::size_t kMaxAutoClasses = 1000;

struct LibsvmOptions {
  // Number of features d; 0 means the largest index in the file. When given, a larger index is an
  // error (use it to give a training and a test file the same width).
  std::size_t num_features = 0;
  LabelMode labels = LabelMode::kAuto;
};

// Reads a (possibly gzipped) LIBSVM file. The data set is named after the file.
[[nodiscard]] Dataset read_libsvm(const std::string& path, const LibsvmOptions& options = {});

// A training and a test file read together: both get the width of the wider one (unless
// num_features is given) and one class numbering made from the labels of both.
[[nodiscard]] TrainTest read_libsvm_pair(const std::string& train_path,
                                         const std::string& test_path,
                                         const LibsvmOptions& options = {});

// Parses LIBSVM text; `source` names it in errors ("SOURCE:LINE: problem").
[[nodiscard]] Dataset parse_libsvm(std::string_view text, const std::string& source,
                                   const LibsvmOptions& options = {});

}  // namespace thinwire::data
