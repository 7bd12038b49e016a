// Which implementation runs a codec's hot loops. kFast is the default everywhere (vectorized
// kernels, see src/codec/*_kernels.*); kReference is the original scalar per-element loop, kept
// as the test oracle. Both produce byte-identical messages and identical decoded values.
#pragma once

#include <cstdint>

namespace thinwire::codec {

enum class KernelPath : std::uint8_t { kFast, kReference };

}  // namespace thinwire::codec
