// QSGD's decoding pieces shared by qsgd.cpp and qsgd_elias.cpp: the error, the store of a decoded
// value, its magnitude, and the table-driven Elias-gamma bucket decoder (qsgd_elias.cpp), which
// reads the same bits and reports the same errors as qsgd.cpp's reference decode_bucket_elias
// with gamma gaps. Internal to the codec library, not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "thinwire/core/bit_io.hpp"

namespace thinwire::codec::qsgd_detail {

// Throws CorruptMessage("qsgd: " + what).
[[noreturn]] void corrupt(const std::string& what);

// dst = value (overwrite) or dst += value (accumulate).
template <bool kOverwrite>
inline void store(float& dst, float value) noexcept {
  if constexpr (kOverwrite) {
    dst = value;
  } else {
    dst += value;
  }
}

// Magnitude of a level: scale·level/s, with the step in double so that subnormal scales and
// large s keep their precision.
inline float magnitude(double step, std::uint64_t level) noexcept {
  return static_cast<float>(step * static_cast<double>(level));
}

// Decodes one Elias-gamma bucket (elements first .. first + out.size() - 1 of the vector) with
// scale `scale` and s levels from reader, as decode_bucket_elias<EliasGamma, kOverwrite> in
// qsgd.cpp: short (gap, sign, level) triples through a lookup table (several lookups per 57-bit
// load), the others from one 64-bit window each, and an element whose codes do not fit the window
// through the reference's bit-by-bit reads, so errors and consumed bits are identical. Overwriting,
// it zeroes the output a block at a time just ahead of its stores.
template <bool kOverwrite>
void decode_bucket_elias_gamma_fast(BitReader& reader, float scale, std::uint32_t s,
                                    std::span<float> out, std::size_t first);

extern template void decode_bucket_elias_gamma_fast<true>(BitReader&, float, std::uint32_t,
                                                          std::span<float>, std::size_t);
extern template void decode_bucket_elias_gamma_fast<false>(BitReader&, float, std::uint32_t,
                                                           std::span<float>, std::size_t);

}  // namespace thinwire::codec::qsgd_detail
