// Which SIMD target runs the codec kernels. The kernels are compiled once per target (Highway's
// dynamic dispatch: SSE4, AVX2, AVX-512, AVX-512 with VAES/VBMI/GFNI on x86, and a portable
// fallback); the first kernel call of a process picks the best one this CPU supports. Every target
// writes the same bytes and decodes the same values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace thinwire::codec {

// The target the kernels run on now, in Highway's name ("AVX3_DL", "AVX3", "AVX2", "SSE4",
// "EMU128" ...).
[[nodiscard]] std::string simd_target();

// The targets this build has and this CPU supports, best first.
[[nodiscard]] std::vector<std::string> simd_targets();

// Makes the kernels run on `name` (one of simd_targets()) as if the CPU had nothing better: for
// measuring a smaller target on a bigger host. Throws InvalidArgument for another name. Not
// thread-safe: call before any encode or decode.
void limit_simd_target(std::string_view name);

}  // namespace thinwire::codec
