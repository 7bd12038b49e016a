// Scratch directories for tests: one per test (named after the process, the suite and the test),
// empty when made, removed with everything in it afterwards.
//
//   ScratchDir      an object a test body holds: path(), write(name, bytes)
//   ScratchDirTest  a fixture that gives every test of the suite one (path(name), dir_)
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

namespace thinwire::test {

class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("thinwire_" + std::string(info->test_suite_name()) + "_" + std::to_string(::getpid()) +
             "_" + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  // Writes `bytes` to the file `name` in the directory and returns its full path.
  std::string write(const std::string& name, std::string_view bytes) const {
    const auto file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << "writing " << file;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_ = std::make_unique<ScratchDir>();
    dir_ = scratch_->path();
  }
  void TearDown() override { scratch_.reset(); }

  [[nodiscard]] std::filesystem::path path(const std::string& name) const { return dir_ / name; }

  std::filesystem::path dir_;

 private:
  std::unique_ptr<ScratchDir> scratch_;
};

}  // namespace thinwire::test
