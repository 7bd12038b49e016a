// Kernels of the sparsifying codecs on Highway (internal; src/codec/randk.cpp and
// src/codec/sparse_coding.cpp hold the scalar oracles and the code around them): random-k's batch
// of Floyd draws and its one-pass encoder, the Elias-delta codes of index gaps, and the listing of
// a sparse bitmap's set bits.
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

// What random-k's one pass over v (pass_over_bitmap) collects beside the values: the length of
// the gap stream, the largest kept magnitude as float bits, and whether v is finite.
struct BitmapPass {
  std::uint64_t gap_bits = 0;
  std::uint32_t max_magnitude = 0;
  bool finite = true;
};

// Random-k's encode in one pass over v[0..d) a group of elements at a time: the group's
// finiteness test, then the set bits of `bitmap` (bit b of word w is element 64w + b) in the
// group listed, their Elias-delta gap codes appended to `gaps` (as sparse::GapCodeStream; unless
// null: shared indices) and their values' raw bits gathered into `values` (4 bytes each) from the
// lines just read. The listing and coding then cost little beside the stream of v from memory.
BitmapPass pass_over_bitmap(const float* v, std::size_t d, const std::uint64_t* bitmap,
                            std::uint64_t* gaps, std::byte* values) noexcept;

}  // namespace thinwire::codec::kernels
