// Target bookkeeping for the Highway kernels: a dispatched function that names its own target
// tells which one the process runs on.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/targets.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "src/codec/kernels/targets.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {

std::int64_t ThisTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <atomic>
#include <string>

#include "thinwire/codec/simd.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::codec {
namespace kernels {

HWY_EXPORT(ThisTarget);

namespace {
std::int64_t limit = 0;  // the target use_target set, 0 for the best
// The target dispatch picks, 0 until asked. Kernels on several threads read it (relaxed: every
// thread that fills it computes the same value); only use_target, between runs, empties it.
std::atomic<std::int64_t> chosen{0};
}  // namespace

std::vector<std::int64_t> compiled_targets() {
  // Without the restriction in force: the list is what the CPU and the build have.
  hwy::SetSupportedTargetsForTest(0);
  std::vector<std::int64_t> all = hwy::SupportedAndGeneratedTargets();
  use_target(limit);
  return all;
}

void use_target(std::int64_t target) {
  limit = target;
  hwy::SetSupportedTargetsForTest(0);
  if (target != 0) {
    // Highway numbers targets from the best (lowest bit) up: keep `target` and everything worse.
    hwy::SetSupportedTargetsForTest(hwy::SupportedTargets() & ~(target - 1));
  }
  // After Highway's own choice is reset, so that the next current_target() asks the new one.
  chosen.store(0, std::memory_order_relaxed);
}

std::int64_t current_target() {
  // Cached: the AVX-512 gate below is asked on every call of its kernels, and a dispatched
  // call costs an indirect call and Highway's own check each time.
  std::int64_t t = chosen.load(std::memory_order_relaxed);
  if (t == 0) {
    t = HWY_DYNAMIC_DISPATCH(ThisTarget)();
    chosen.store(t, std::memory_order_relaxed);
  }
  return t;
}

}  // namespace kernels

std::string simd_target() { return hwy::TargetName(kernels::current_target()); }

std::vector<std::string> simd_targets() {
  std::vector<std::string> names;
  for (const std::int64_t t : kernels::compiled_targets()) names.emplace_back(hwy::TargetName(t));
  return names;
}

void limit_simd_target(std::string_view name) {
  std::string known;
  for (const std::int64_t t : kernels::compiled_targets()) {
    if (name == hwy::TargetName(t)) {
      kernels::use_target(t);
      return;
    }
    known += known.empty() ? "" : ", ";
    known += hwy::TargetName(t);
  }
  throw InvalidArgument("simd target must be one of this CPU's (" + known + "), got '" +
                        std::string(name) + "'");
}

}  // namespace thinwire::codec
#endif  // HWY_ONCE
