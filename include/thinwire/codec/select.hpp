// Top-k selection: which k elements of a vector have the largest magnitudes.
//
// Used by the top-k codec and by the tuner (which evaluates ||top_k(g)||^2 for candidate k). The
// order is total and deterministic: larger |v_i| first, equal magnitudes broken by the LOWER
// index, so every implementation (and the full-sort oracle in the tests) selects the same set.
// Magnitudes compare as the IEEE bit patterns with the sign cleared, which orders finite values
// and infinities by |v| and treats -0 like +0; NaNs rank above infinity (codecs reject them
// before selecting).
//
// Cost: O(d) expected (introselect over packed 64-bit keys, no full sort) plus O(k log k) to
// return the indices ascending.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace thinwire::codec {

// Replaces indices_out with the indices of the min(k, v.size()) largest |v_i|, in ascending
// index order. Throws InvalidArgument if v has more than 2^32 - 1 elements.
void select_top_k(std::span<const float> v, std::size_t k, std::vector<std::uint32_t>& indices_out);

}  // namespace thinwire::codec
