#include "thinwire/data/load.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"
#include "thinwire/data/idx.hpp"
#include "thinwire/data/libsvm.hpp"
#include "thinwire/data/synthetic.hpp"

namespace thinwire::data {
namespace {

bool ends_with_any(std::string_view s, std::initializer_list<std::string_view> suffixes) {
  return std::any_of(suffixes.begin(), suffixes.end(),
                     [&](std::string_view suffix) { return s.ends_with(suffix); });
}

// A bare path to a LIBSVM file ("data/a9a.svm", "rcv1.txt.gz").
bool is_libsvm_path(std::string_view spec) {
  std::string_view s = spec;
  if (s.ends_with(".gz")) s.remove_suffix(3);
  return ends_with_any(s, {".svm", ".libsvm", ".txt"});
}

std::string require(Spec& spec, std::string_view key, std::string_view example) {
  std::optional<std::string> value = spec.get_string(key);
  if (!value || value->empty()) {
    throw InvalidArgument(spec.name() + ": " + std::string(key) + " is required (e.g. " +
                          std::string(example) + ")");
  }
  return *value;
}

LabelMode label_mode(Spec& spec) {
  const std::string mode = spec.get_choice("labels", "auto", {"auto", "regression", "classes"});
  return mode == "regression" ? LabelMode::kRegression
         : mode == "classes"  ? LabelMode::kClasses
                              : LabelMode::kAuto;
}

TrainTest load_libsvm(Spec& spec) {
  const std::string path = require(spec, "path", "path=data/a9a.svm");
  LibsvmOptions options;
  options.num_features = static_cast<std::size_t>(spec.get_uint("features", 0));
  options.labels = label_mode(spec);
  if (std::optional<std::string> test = spec.get_string("test")) {
    return read_libsvm_pair(path, *test, options);
  }
  return TrainTest{read_libsvm(path, options), Dataset()};
}

// Largest label + 1 over the given IDX label files, so train and test share one class count.
std::size_t idx_classes(std::initializer_list<const std::string*> label_files) {
  std::size_t k = 0;
  for (const std::string* path : label_files) {
    for (std::uint8_t label : read_idx(*path).data) k = std::max<std::size_t>(k, label + 1u);
  }
  return k;
}

TrainTest load_idx_source(Spec& spec) {
  const std::string images = require(spec, "images", "images=train-images-idx3-ubyte.gz");
  const std::string labels = require(spec, "labels", "labels=train-labels-idx1-ubyte.gz");
  const std::optional<std::string> test_images = spec.get_string("test_images");
  const std::optional<std::string> test_labels = spec.get_string("test_labels");
  if (test_images.has_value() != test_labels.has_value()) {
    throw InvalidArgument("idx: test_images and test_labels go together");
  }
  if (!test_images) return TrainTest{load_idx(images, labels), Dataset()};
  const std::size_t k = idx_classes({&labels, &*test_labels});
  return TrainTest{load_idx(images, labels, k), load_idx(*test_images, *test_labels, k)};
}

std::vector<double> parse_class_list(const std::string& text, const std::string& source) {
  std::vector<double> values;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t slash = std::min(text.find('/', begin), text.size());
    values.push_back(
        parse_double(std::string_view(text).substr(begin, slash - begin), source + ": classes"));
    begin = slash + 1;
  }
  return values;
}

}  // namespace

TrainTest load_dataset(std::string_view text) {
  // "libsvm:FILE[,key=value...]" is the natural spelling of "libsvm:path=FILE[,...]".
  std::string natural;
  if (text.starts_with("libsvm:")) {
    const std::string_view rest = text.substr(7);
    const std::string_view first = rest.substr(0, rest.find(','));
    if (!first.empty() && first.find('=') == std::string_view::npos) {
      natural = "libsvm:path=" + std::string(rest);
    }
  }
  Spec spec = !natural.empty() ? Spec::parse(natural)
              : is_libsvm_path(text) && text.find('=') == std::string_view::npos
                  ? Spec::parse("libsvm:path=" + std::string(text))
                  : Spec::parse(text);
  const std::string& source = spec.name();
  TrainTest data;
  if (source == "fashion-mnist") {
    data = load_fashion_mnist(spec.get_string("dir", kFashionMnistDir));
  } else if (source == "libsvm") {
    data = load_libsvm(spec);
  } else if (source == "idx") {
    data = load_idx_source(spec);
  } else if (source == "synthetic") {
    data.train = make_synthetic(synthetic_options(spec));
  } else {
    throw InvalidArgument("data: unknown source '" + source +
                          "' (expected fashion-mnist, libsvm:path=FILE, FILE.svm, "
                          "idx:images=..,labels=.. or synthetic:...)");
  }

  // For synthetic data "classes" is the class count (read by synthetic_options above).
  const std::optional<std::string> classes =
      source == "synthetic" ? std::nullopt : spec.get_string("classes");
  const std::uint64_t limit = spec.get_uint("limit", 0);
  const double test_fraction = spec.get_double("test_fraction", 0.0);
  const std::uint64_t split_seed = spec.get_uint("split_seed", 0);
  spec.finish();

  if (classes) {
    const std::vector<double> values = parse_class_list(*classes, source);
    data.train = select_classes(data.train, values);
    if (!data.test.empty()) data.test = select_classes(data.test, values);
  }
  if (limit != 0 && limit < data.train.rows()) {
    std::vector<std::size_t> first(static_cast<std::size_t>(limit));
    std::iota(first.begin(), first.end(), std::size_t{0});
    data.train = data.train.subset(first);
  }
  if (test_fraction != 0.0) {
    if (!data.test.empty()) {
      throw InvalidArgument(source + ": test_fraction given, but the source has its own test set");
    }
    data = train_test_split(data.train, test_fraction, split_seed);
  }
  return data;
}

}  // namespace thinwire::data
