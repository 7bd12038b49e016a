// The data tests' scratch directory (tests/support/scratch_dir.hpp) that also writes gzip files.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <string_view>

#include "support/scratch_dir.hpp"

namespace thinwire::data::testing {

class TempDir : public test::ScratchDir {
 public:
  // Writes gzip-compressed bytes to NAME and returns its full path.
  std::string write_gz(const std::string& name, std::string_view bytes) const {
    const auto file = (path() / name).string();
    gzFile gz = gzopen(file.c_str(), "wb");
    EXPECT_NE(gz, nullptr);
    EXPECT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(gz);
    return file;
  }
};

}  // namespace thinwire::data::testing
