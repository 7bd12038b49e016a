#include "thinwire/data/libsvm.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "file_io.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::data {
namespace {

using StorageIndex = SparseMatrix::StorageIndex;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

class LineParser {
 public:
  LineParser(const std::string& source, std::size_t line) : source_(source), line_(line) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw IoError(source_ + ":" + std::to_string(line_) + ": " + problem);
  }

  // A finite real; from_chars does not take a leading '+', which LIBSVM labels often have.
  double number(std::string_view token, std::string_view what) const {
    std::string_view digits = token;
    if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') digits.remove_prefix(1);
    double value = 0;
    const char* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (digits.empty() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
      fail("bad " + std::string(what) + " '" + clip_text(token) + "'");
    }
    return value;
  }

  std::uint64_t index(std::string_view token, std::string_view item) const {
    std::uint64_t value = 0;
    const char* end = token.data() + token.size();
    const auto [ptr, ec] = std::from_chars(token.data(), end, value);
    if (token.empty() || ec != std::errc() || ptr != end) {
      fail("bad feature index '" + clip_text(token) + "' in '" + clip_text(item) + "'");
    }
    return value;
  }

 private:
  const std::string& source_;
  std::size_t line_;
};

// Class ids for the labels per LabelMode (see libsvm.hpp); empty vectors for regression.
std::pair<std::vector<std::int32_t>, std::vector<double>> assign_classes(
    const std::vector<double>& labels, const std::vector<std::size_t>& label_lines, LabelMode mode,
    const std::string& source) {
  if (mode == LabelMode::kRegression) return {};
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double v = labels[i];
    if (v != std::floor(v) || std::fabs(v) > 2147483647.0) {
      if (mode == LabelMode::kAuto) return {};
      throw IoError(source + ":" + std::to_string(label_lines[i]) + ": label " + std::to_string(v) +
                    " is not a class number");
    }
  }
  std::vector<double> values = labels;
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  const auto within = [&](double a, double b) {
    return std::all_of(values.begin(), values.end(), [&](double v) { return v == a || v == b; });
  };
  if (within(-1.0, 1.0)) {
    values = {-1.0, 1.0};
  } else if (within(0.0, 1.0)) {
    values = {0.0, 1.0};
  } else if (values.size() > kMaxAutoClasses && mode == LabelMode::kAuto) {
    return {};
  }
  std::vector<std::int32_t> ids(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    ids[i] = static_cast<std::int32_t>(std::lower_bound(values.begin(), values.end(), labels[i]) -
                                       values.begin());
  }
  return {std::move(ids), std::move(values)};
}

// One parsed file in CSR arrays, before its width and classes are settled.
struct ParsedText {
  std::string source;
  std::vector<StorageIndex> outer{0};
  std::vector<StorageIndex> inner;
  std::vector<float> values;
  std::vector<double> labels;
  std::vector<std::size_t> label_lines;
  std::uint64_t max_index = 0;
};

ParsedText parse_text(std::string_view text, const std::string& source,
                      const LibsvmOptions& options) {
  constexpr std::uint64_t kMaxIndex = std::numeric_limits<StorageIndex>::max();
  if (options.num_features > kMaxIndex) {
    throw InvalidArgument(source + ": features=" + std::to_string(options.num_features) +
                          " is above the limit " + std::to_string(kMaxIndex));
  }
  // Without features=N the file sets the dimension: a stray huge index must not size a model of
  // billions of parameters (and exhaust memory), so it is bounded and named with its line.
  constexpr std::uint64_t kMaxImplicitFeatures = std::uint64_t{1} << 24;
  ParsedText parsed;
  parsed.source = source;
  std::vector<StorageIndex>& outer = parsed.outer;
  std::vector<StorageIndex>& inner = parsed.inner;
  std::vector<float>& values = parsed.values;
  std::vector<double>& labels = parsed.labels;
  std::uint64_t& max_index = parsed.max_index;

  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const LineParser p(source, line_no);
    std::uint64_t previous = 0;
    bool first = true;
    bool seen_feature = false;
    while (true) {
      while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
      if (line.empty()) break;
      std::size_t len = 0;
      while (len < line.size() && !is_space(line[len])) ++len;
      const std::string_view token = line.substr(0, len);
      line.remove_prefix(len);
      if (first) {
        if (token.find(':') != std::string_view::npos) {
          p.fail("line starts with '" + clip_text(token) + "', expected a label first");
        }
        const double label = p.number(token, "label");
        if (std::fabs(label) > std::numeric_limits<float>::max()) {
          p.fail("label '" + clip_text(token) + "' is out of float range");
        }
        labels.push_back(label);
        parsed.label_lines.push_back(line_no);
        first = false;
        continue;
      }
      const std::size_t colon = token.find(':');
      if (colon == std::string_view::npos) {
        p.fail("expected INDEX:VALUE, got '" + clip_text(token) + "' (missing ':')");
      }
      if (!seen_feature && token.substr(0, colon) == "qid") {
        seen_feature = true;  // a ranking query id; only right after the label
        continue;
      }
      seen_feature = true;
      const std::uint64_t index = p.index(token.substr(0, colon), token);
      if (index == 0) p.fail("feature index 0 in '" + clip_text(token) + "' (indices are 1-based)");
      if (index <= previous) {
        p.fail("feature index " + std::to_string(index) + " after " + std::to_string(previous) +
               " (indices must be strictly increasing)");
      }
      if (index > kMaxIndex) {
        p.fail("feature index " + std::to_string(index) + " is too large (the limit is " +
               std::to_string(kMaxIndex) + ")");
      }
      if (options.num_features == 0 && index > kMaxImplicitFeatures) {
        p.fail("feature index " + std::to_string(index) + " is above " +
               std::to_string(kMaxImplicitFeatures) +
               " (2^24), the most read without a width; give the width with "
               "libsvm:path=FILE,features=N if it is right");
      }
      if (options.num_features != 0 && index > options.num_features) {
        p.fail("feature index " + std::to_string(index) + " exceeds the " +
               std::to_string(options.num_features) + " features expected");
      }
      const double value = p.number(token.substr(colon + 1), "feature value");
      if (std::fabs(value) > std::numeric_limits<float>::max()) {
        p.fail("feature value '" + std::string(token.substr(colon + 1)) +
               "' is out of float range");
      }
      previous = index;
      max_index = std::max(max_index, index);
      inner.push_back(static_cast<StorageIndex>(index - 1));
      values.push_back(static_cast<float>(value));
    }
    if (!first) {
      if (inner.size() > kMaxIndex) p.fail("too many non-zeros for 32-bit sparse indices");
      outer.push_back(static_cast<StorageIndex>(inner.size()));
    }
  }

  return parsed;
}

std::string base_name(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Dataset build(ParsedText& p, std::size_t cols, std::vector<std::int32_t> ids,
              std::vector<double> class_values) {
  SparseMatrix x = Eigen::Map<const SparseMatrix>(
      static_cast<Eigen::Index>(p.labels.size()), static_cast<Eigen::Index>(cols),
      static_cast<Eigen::Index>(p.inner.size()), p.outer.data(), p.inner.data(), p.values.data());
  std::vector<float> targets(p.labels.begin(), p.labels.end());
  return Dataset(std::move(x), std::move(targets), std::move(ids), std::move(class_values),
                 base_name(p.source));
}

}  // namespace

Dataset parse_libsvm(std::string_view text, const std::string& source,
                     const LibsvmOptions& options) {
  ParsedText p = parse_text(text, source, options);
  auto [ids, class_values] = assign_classes(p.labels, p.label_lines, options.labels, source);
  const std::size_t cols = options.num_features != 0 ? options.num_features : p.max_index;
  return build(p, cols, std::move(ids), std::move(class_values));
}

TrainTest read_libsvm_pair(const std::string& train_path, const std::string& test_path,
                           const LibsvmOptions& options) {
  ParsedText train = parse_text(detail::read_file(train_path), train_path, options);
  ParsedText test = parse_text(detail::read_file(test_path), test_path, options);
  const std::size_t cols =
      options.num_features != 0
          ? options.num_features
          : static_cast<std::size_t>(std::max(train.max_index, test.max_index));
  // Classes from both files at once, so that a label means the same class id in both.
  std::vector<double> labels = train.labels;
  labels.insert(labels.end(), test.labels.begin(), test.labels.end());
  std::vector<std::size_t> lines = train.label_lines;
  lines.insert(lines.end(), test.label_lines.begin(), test.label_lines.end());
  auto [ids, class_values] = assign_classes(labels, lines, options.labels, train_path);
  std::vector<std::int32_t> test_ids;
  if (!ids.empty()) {
    test_ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(train.labels.size()), ids.end());
    ids.resize(train.labels.size());
  }
  TrainTest out{build(train, cols, std::move(ids), class_values),
                build(test, cols, std::move(test_ids), class_values)};
  return out;
}

Dataset read_libsvm(const std::string& path, const LibsvmOptions& options) {
  const std::string bytes = detail::read_file(path);
  return parse_libsvm(bytes, path, options);
}

}  // namespace thinwire::data
