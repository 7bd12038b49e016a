// main() of the test programs that CTest runs once per SIMD target: `--simd-target=NAME` makes
// every codec kernel run on that Highway target (thinwire::codec::limit_simd_target) before the
// tests start; a target this CPU lacks exits with 77, which CTest reports as skipped. Without the
// flag the program runs on the best target, as gtest_main would.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "thinwire/codec/simd.hpp"

int main(int argc, char** argv) {
  constexpr std::string_view kFlag = "--simd-target=";
  std::string target;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg.starts_with(kFlag)) {
      target = std::string(arg.substr(kFlag.size()));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (!target.empty()) {
    const std::vector<std::string> have = thinwire::codec::simd_targets();
    if (std::find(have.begin(), have.end(), target) == have.end()) {
      std::printf("simd target %s: not on this CPU (or not built), skipped\n", target.c_str());
      return 77;
    }
    thinwire::codec::limit_simd_target(target);
  }
  std::printf("simd target: %s\n", thinwire::codec::simd_target().c_str());
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
