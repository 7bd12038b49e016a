// The Highway targets the codec kernels are compiled for (internal). One dispatch mechanism for
// every kernel in src/codec/kernels/: HWY_EXPORT / HWY_DYNAMIC_DISPATCH, target chosen once per
// process; tests switch it with use_target to run each kernel on every target the CPU has.
#pragma once

#include <cstdint>
#include <vector>

namespace thinwire::codec::kernels {

// Highway target bits (hwy::HWY_AVX2 ...) compiled into the library and supported by this CPU,
// best first.
[[nodiscard]] std::vector<std::int64_t> compiled_targets();

// Runs every kernel on `target` (one of compiled_targets()) from the next call on; 0 goes back to
// the best target. Not thread-safe (tests and benchmarks call it between runs).
void use_target(std::int64_t target);

// The target the next kernel call runs on.
[[nodiscard]] std::int64_t current_target();

}  // namespace thinwire::codec::kernels
