// Kernels of the sparsifying codecs on Highway (internal; src/codec/randk.cpp and
// src/codec/sparse_coding.cpp hold the scalar oracles and the code around them): random-k's batch
// of Floyd draws, the Elias-delta codes of index gaps, and the listing of a sparse bitmap's set
// bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace thinwire::codec::kernels {

// Draws per draw_below_batch call.
inline constexpr std::size_t kDrawBatch = 64;

// out[s] = RngKey{key}.below(counter + s, bound + s) for s < kDrawBatch: mix64(key ^ (counter +
// s)·kGolden64) times bound + s, the high 64 bits of the product. Exact where bound + s < 2^32
// (the caller uses only those draws; the others are unspecified).
void draw_below_batch(std::uint64_t key, std::uint64_t counter, std::uint64_t bound,
                      std::uint32_t* out) noexcept;

// codes[j] and widths[j] = EliasDelta::word of the gap indices[j] - indices[j - 1], for j in
// [1, n): the gaps of a strictly increasing run, so each in [1, 2^32). codes[0] and widths[0]
// are left alone.
void delta_codes(const std::uint32_t* indices, std::size_t n, std::uint64_t* codes,
                 std::uint64_t* widths) noexcept;

// sparse::list_set_bits (base + the positions of the set bits of words[0, n), ascending; returns
// their number) for a sparse bitmap: a vector of words per step where the target has a fast
// compression (AVX-512), else that function itself. out needs room for the number + 16.
std::size_t list_sparse_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                                 std::uint32_t* out) noexcept;

}  // namespace thinwire::codec::kernels
