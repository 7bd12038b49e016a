// Internal: reading whole files, gzip-compressed or not.
#pragma once

#include <string>

namespace thinwire::data::detail {

// The file's bytes; gzip input (magic 0x1f 0x8b) is decompressed. Throws IoError naming the file
// when it cannot be opened or read, or the gzip stream is corrupt or truncated.
[[nodiscard]] std::string read_file(const std::string& path);

}  // namespace thinwire::data::detail
