// Top-k's filtering pass on Highway (internal; src/codec/select.cpp): the keys of v (|v_i| as the
// IEEE pattern with the sign cleared) sorted into "above hi" and "in [lo, hi]", a whole vector of
// keys per step, the selected lanes' indices (and keys) packed to the outputs by compression.
#pragma once

#include <cstddef>
#include <cstdint>

namespace thinwire::codec::kernels {

struct FilterProgress {
  std::size_t done = 0;     // elements of v filtered: a whole number of vectors
  std::size_t above = 0;    // keys > hi written to `above`
  std::size_t between = 0;  // keys in [lo, hi] written to index/key_out
  bool stopped = false;     // a capacity would have run out in the vector at `done`
};

// Filters v[0..d) up to its last whole vector (the caller filters the rest): i goes to above[] if
// its key > hi, else to index[] (and the key to key_out[]) if its key >= lo, in order of i. Stops
// before a vector whose selected lanes would not fit above_cap / between_cap. Indices are below
// 2^32.
[[nodiscard]] FilterProgress filter_keys(const float* v, std::size_t d, std::uint32_t lo,
                                         std::uint32_t hi, std::uint32_t* above,
                                         std::size_t above_cap, std::uint32_t* index,
                                         std::uint32_t* key_out, std::size_t between_cap) noexcept;

}  // namespace thinwire::codec::kernels
