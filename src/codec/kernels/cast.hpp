// fp16 / bf16 cast kernels on Highway (internal): the scalar float_to_half / float_to_bfloat16 /
// half_to_float / bfloat16_to_float of float_cast.hpp (the oracle) on vectors, bit for bit:
// rounding to nearest even, saturating at the largest finite value.
#pragma once

#include <cstddef>
#include <cstdint>

#include "thinwire/codec/float_cast.hpp"

namespace thinwire::codec::kernels {

// out[2i..2i+1] = the 16-bit encoding of in[i], little-endian, for i < n (out need not be
// aligned). Returns false if some in[i] is an infinity or NaN (its encoding is then the scalar
// function's, but the caller rejects the input anyway).
[[nodiscard]] bool cast_to_16(CastFormat format, const float* in, std::size_t n,
                              std::byte* out) noexcept;

// out[i] = (or +=) the value of the 16-bit encoding at in[2i], for i < n. Returns false if some
// encoding is an infinity or NaN (outputs are then unspecified).
[[nodiscard]] bool cast_from_16(CastFormat format, const std::byte* in, std::size_t n, float* out,
                                bool overwrite) noexcept;

}  // namespace thinwire::codec::kernels
