#include "thinwire/data/idx.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <utility>

#include "file_io.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::data {
namespace {

constexpr std::uint8_t kTypeUnsignedByte = 0x08;

std::uint32_t read_be32(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<std::uint8_t>(bytes[at + i]);
  }
  return v;
}

std::string hex_byte(unsigned v) {
  constexpr char kDigits[] = "0123456789ABCDEF";
  return std::string("0x") + kDigits[(v >> 4) & 0xF] + kDigits[v & 0xF];
}

// DIR/NAME.gz if it exists, else DIR/NAME if it exists, else empty.
std::string find_variant(const std::filesystem::path& dir, const std::string& name) {
  std::error_code ec;
  for (const std::string& candidate : {name + ".gz", name}) {
    const auto path = dir / candidate;
    if (std::filesystem::is_regular_file(path, ec)) return path.string();
  }
  return {};
}

}  // namespace

IdxArray parse_idx(std::string_view bytes, const std::string& source) {
  if (bytes.size() < 4) {
    throw IoError(source + ": not an IDX file (" + std::to_string(bytes.size()) +
                  " bytes, shorter than the 4-byte magic)");
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    throw IoError(source + ": not an IDX file (magic starts with " +
                  hex_byte(static_cast<std::uint8_t>(bytes[0])) + " " +
                  hex_byte(static_cast<std::uint8_t>(bytes[1])) + ", expected 0x00 0x00)");
  }
  const auto type = static_cast<std::uint8_t>(bytes[2]);
  if (type != kTypeUnsignedByte) {
    throw IoError(source + ": IDX data type " + hex_byte(type) +
                  " not supported (only unsigned bytes, 0x08)");
  }
  const auto ndims = static_cast<std::uint8_t>(bytes[3]);
  if (ndims == 0) throw IoError(source + ": IDX file with 0 dimensions");
  const std::size_t header = 4 + 4 * std::size_t{ndims};
  if (bytes.size() < header) {
    throw IoError(source + ": truncated IDX header (" + std::to_string(ndims) +
                  " dimensions need " + std::to_string(header) + " bytes, file has " +
                  std::to_string(bytes.size()) + ")");
  }
  IdxArray out;
  std::size_t total = 1;
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::size_t dim = read_be32(bytes, 4 + 4 * i);
    if (dim != 0 && total > std::numeric_limits<std::size_t>::max() / dim) {
      throw IoError(source + ": IDX dimensions overflow");
    }
    total *= dim;
    out.dims.push_back(dim);
  }
  const std::size_t have = bytes.size() - header;
  if (have != total) {
    throw IoError(source + ": IDX header announces " + std::to_string(total) +
                  " data bytes, file has " + std::to_string(have) +
                  (have < total ? " (truncated)" : " (trailing bytes)"));
  }
  out.data.assign(reinterpret_cast<const std::uint8_t*>(bytes.data() + header),
                  reinterpret_cast<const std::uint8_t*>(bytes.data() + bytes.size()));
  return out;
}

IdxArray read_idx(const std::string& path) { return parse_idx(detail::read_file(path), path); }

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 std::size_t num_classes) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.dims.size() < 2) {
    throw IoError(images_path + ": images need at least 2 dimensions (items x features), got " +
                  std::to_string(images.dims.size()));
  }
  if (labels.dims.size() != 1) {
    throw IoError(labels_path + ": labels need 1 dimension, got " +
                  std::to_string(labels.dims.size()));
  }
  const std::size_t n = images.dims[0];
  if (labels.dims[0] != n) {
    throw IoError(images_path + " has " + std::to_string(n) + " images but " + labels_path +
                  " has " + std::to_string(labels.dims[0]) + " labels");
  }
  const std::size_t d = n == 0 ? 0 : images.data.size() / n;
  std::size_t k = 0;
  for (std::uint8_t label : labels.data) k = std::max<std::size_t>(k, std::size_t{label} + 1);
  if (num_classes != 0) {
    if (k > num_classes) {
      throw IoError(labels_path + ": label " + std::to_string(k - 1) + " is not below " +
                    std::to_string(num_classes) + " classes");
    }
    k = num_classes;
  }
  DenseMatrix x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  // Bytes to [0, 1]: one vectorized pass over the whole image block.
  x = Eigen::Map<
          const Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          images.data.data(), x.rows(), x.cols())
          .cast<float>() *
      (1.0f / 255.0f);
  std::vector<std::int32_t> classes(labels.data.begin(), labels.data.end());
  std::vector<float> targets(labels.data.begin(), labels.data.end());
  std::vector<double> class_values(k);
  for (std::size_t c = 0; c < k; ++c) class_values[c] = static_cast<double>(c);
  std::string name = images_path;
  if (const std::size_t slash = name.find_last_of('/'); slash != std::string::npos) {
    name = name.substr(slash + 1);
  }
  return Dataset(std::move(x), std::move(targets), std::move(classes), std::move(class_values),
                 std::move(name));
}

TrainTest load_fashion_mnist(const std::string& dir) {
  const std::filesystem::path root(dir);
  std::string files[4];
  const char* names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int i = 0; i < 4; ++i) {
    files[i] = find_variant(root, names[i]);
    if (files[i].empty()) {
      throw IoError("fashion-mnist not found in " + dir +
                    "; install it with `apt-get install dataset-fashion-mnist` (or run "
                    "scripts/setup) [missing " +
                    names[i] + "(.gz)]");
    }
  }
  constexpr std::size_t kClasses = 10;
  TrainTest out{load_idx(files[0], files[1], kClasses), load_idx(files[2], files[3], kClasses)};
  out.train.set_name("fashion-mnist train");
  out.test.set_name("fashion-mnist test");
  return out;
}

}  // namespace thinwire::data
