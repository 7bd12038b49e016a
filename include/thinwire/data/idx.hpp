// IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.): a 4-byte magic
// {0, 0, type, ndims}, ndims big-endian uint32 sizes, then the data in row-major order. Only
// unsigned-byte data (type 0x08) is supported, which is what (Fashion-)MNIST use. Files may be
// gzipped (detected by the gzip magic 0x1f 0x8b, not by the name).
//
// Images (n x rows x cols, or any n x ...) become an n x (rows * cols) dense matrix scaled to
// [0, 1] (byte / 255); labels (n) become class ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "thinwire/data/dataset.hpp"

namespace thinwire::data {

struct IdxArray {
  std::vector<std::size_t> dims;   // dims[0] is the number of items
  std::vector<std::uint8_t> data;  // product(dims) bytes
};

// Throws IoError "FILE: problem" (bad magic, unsupported type, truncated or oversized data).
[[nodiscard]] IdxArray read_idx(const std::string& path);
[[nodiscard]] IdxArray parse_idx(std::string_view bytes, const std::string& source);

// An image file and a label file as one data set. Classes are the label values; num_classes is
// max(label) + 1 unless given (then every label must be below it). Throws IoError naming the
// files when the counts differ.
[[nodiscard]] Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                               std::size_t num_classes = 0);

inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Fashion-MNIST from DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (Debian's
// dataset-fashion-mnist): 60000 training and 10000 test images, 784 features in [0, 1], 10
// classes. Throws IoError "fashion-mnist not found in DIR; install it with `apt-get install
// dataset-fashion-mnist` (or run scripts/setup)" when a file is missing.
[[nodiscard]] TrainTest load_fashion_mnist(const std::string& dir = std::string(kFashionMnistDir));

}  // namespace thinwire::data
