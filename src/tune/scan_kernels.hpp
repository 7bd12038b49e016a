// The passes over the vector that a dynamic decision makes (selector.cpp, docs/tuning.md "Cost of
// a decision"): Highway kernels dispatched at run time like the codec's (src/codec/kernels/), each
// giving the same floats on every target: no fused multiply-add, and the partial sums below
// whatever the vector width. Internal to the tune library, not installed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace thinwire::tune::scan {

// The vector is read in blocks of 64 elements (the last one may be shorter).
inline constexpr std::size_t kBlock = 64;

[[nodiscard]] constexpr std::size_t block_count(std::size_t d) noexcept {
  return (d + kBlock - 1) / kBlock;
}

// |x| as its IEEE bit pattern with the sign cleared: the order of these keys is the magnitude
// order of finite floats.
[[nodiscard]] inline std::uint32_t magnitude_key_of(std::uint32_t bits) noexcept {
  return bits & 0x7FFFFFFFU;
}

// For each block b of v: sumsq[b] = Σ x² in double (16 interleaved partial sums, element i to sum
// i mod 16, combined in a fixed tree, acc[t] += acc[t + w] for t < w, w = 8, 4, 2, 1) and
// max_key[b] = the largest magnitude key; with `l1` not null, l1[b] = Σ|x| in fp32 (the same
// partial sums and tree).
void block_stats(const float* v, std::size_t d, double* sumsq, std::uint32_t* max_key,
                 float* l1 = nullptr) noexcept;

// The same with Σx² and Σ|x| in fp32 (the partial sums and tree; relative error about 1e-7): the
// statistics of the QSGD scan, which needs no exact sum.
void block_stats_fp32(const float* v, std::size_t d, float* sumsq, std::uint32_t* max_key,
                      float* l1) noexcept;

// Σ_b sumsq[b] in block order, the same doubles block_stats computes (tune::squared_norm).
[[nodiscard]] double blocked_squared_norm(const float* v, std::size_t d) noexcept;

// The QSGD levels the packed search scores: s_j = 2^(j+1) − 1 for j = 0..8 (1, 3, 7, ..., 511).
// Each fills its packed field (sign + ⌈log2(s + 1)⌉ bits) exactly: s = 2^j would cost the bits
// of 2^(j+1) − 1 with about four times its variance.
inline constexpr std::size_t kLevelSteps = 9;
[[nodiscard]] constexpr std::uint32_t scan_level(std::size_t j) noexcept {
  return (std::uint32_t{2} << j) - 1;
}

// For n <= 64 elements u and inv = 1/scale: out[j] += Σ_i f(1 − f) for j = 0..8, where
// f = t − ⌊t⌋, t = min(|u_i|·(inv·s_j), s_j) with s_j = scan_level(j) and inv·s_j rounded to fp32
// (QSGD's rounding probabilities at s_j), in float: 16 partial sums over the block zero-padded to
// 64 elements, added in lane order.
void level_sums(const float* u, std::size_t n, float inv, double* out) noexcept;

// out[i] = fp32 of √x[i] computed in double, for x[i] >= 0 (the 2-norm scales of 64-element
// buckets).
void square_roots(const float* x, std::size_t n, float* out) noexcept;

// For every bucket k of v[0..n) (`bucket` elements, the last may be shorter): out[k] = Σ f(1 − f),
// f = t − ⌊t⌋, t = min(|v_i|·inv[k], s), computed in fp32 and summed in fp32 over 16 interleaved
// partial sums per run of 1024 elements combined in the tree, the runs in double (relative error
// below 1e-6).
void bucket_variance_sums(const float* v, std::size_t n, std::size_t bucket, const float* inv,
                          float s, double* out) noexcept;

}  // namespace thinwire::tune::scan
