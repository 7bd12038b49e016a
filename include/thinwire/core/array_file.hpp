// Vector files: the float arrays that `thinwire compress` reads and `decompress` writes, and the
// whole-file byte I/O used for messages.
//
// Two formats, chosen by the file's extension (case-insensitive):
//   .npy  NumPy's array format (versions 1.0, 2.0 and 3.0 of the header): a 1-D little-endian
//         float32 array, i.e. descr '<f4' and shape (n,). Anything else (another dtype, a 2-D or
//         0-D shape, big-endian data) is rejected with a message naming the file and the field;
//         we never convert silently. See numpy.lib.format for the layout: magic "\x93NUMPY",
//         major and minor version bytes, a little-endian header length (2 bytes in 1.0, 4 in
//         2.0/3.0), a Python dict literal padded with spaces and ended by '\n', then the data.
//   .f32  raw little-endian float32 values, nothing else (the size must be a multiple of 4).
//
// Errors: IoError for a file that cannot be read or written or whose content is malformed, with
// "path: problem" messages; InvalidArgument for an unknown extension (a usage mistake, detected
// before any file is touched).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace thinwire {

enum class ArrayFormat : std::uint8_t {
  kNpy,  // NumPy .npy, 1-D '<f4'
  kF32,  // raw little-endian float32
};

// The format for a path's extension; throws InvalidArgument for anything but .npy and .f32.
[[nodiscard]] ArrayFormat array_format_for(const std::filesystem::path& path);

// Reads a 1-D float32 array (format from the extension). Throws IoError or InvalidArgument.
[[nodiscard]] std::vector<float> read_array(const std::filesystem::path& path);

// Writes a 1-D float32 array (format from the extension), replacing the file.
void write_array(const std::filesystem::path& path, std::span<const float> values);

// In-memory halves of the above; `name` is the file name used in error messages.
[[nodiscard]] std::vector<float> parse_array(std::span<const std::byte> bytes, ArrayFormat format,
                                             std::string_view name);
[[nodiscard]] std::vector<std::byte> format_array(std::span<const float> values,
                                                  ArrayFormat format);

// Whole-file byte I/O; throws IoError naming the file and the system's reason.
[[nodiscard]] std::vector<std::byte> read_file_bytes(const std::filesystem::path& path);
void write_file_bytes(const std::filesystem::path& path, std::span<const std::byte> bytes);

}  // namespace thinwire
