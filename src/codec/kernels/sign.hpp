// The sign codec's one-pass kernels on Highway (issue 7, ported in issue 20; internal): the codec
// keeps its BitWriter / BitReader loops over the qsgd_kernels.hpp helpers as the oracle.
//
// Encode is one pass per bucket: the sign bits do not depend on the bucket's scale, so the kernel
// writes them straight into the message while it sums |u_i| for the scale, and the codec fills in
// the scale in front of them afterwards. Decode turns a vector's worth of message bits at a time
// into a lane mask and stores ±scale (or adds it) directly into the output.
#pragma once

#include <cstddef>
#include <cstdint>

namespace thinwire::codec::kernels {

// A bit stream written into memory 64 bits at a time, least significant bit first (the layout of
// BitWriter): whole words go to `next` (unaligned stores); `acc` holds the `used` (< 64) bits not
// yet stored, with every bit above them zero.
struct SignBits {
  std::byte* next = nullptr;
  std::uint64_t acc = 0;
  unsigned used = 0;
};

// Appends the sign bits of u[0..n) to `bits` (1 = negative: u_i < 0, so -0 and +0 both give 0)
// and returns Σ|u_i| in double, the same value kernels::sum_abs returns: 8 partial sums (element
// i goes to sum i mod 8, added in element order) combined as ((s0+s4)+(s2+s6))+((s1+s5)+(s3+s7)).
// Stores at most the words the appended bits complete.
double sign_bits_sum(const float* u, std::size_t n, SignBits& bits) noexcept;

// The same sum alone (no bits): lets tests compare the fused kernel's order with sum_abs.
[[nodiscard]] double sign_sum_abs(const float* u, std::size_t n) noexcept;

// out[i] = (or +=) scale with its sign bit flipped where bit `bit + i` of bytes[0..size) is set,
// for i < n; the caller guarantees bit + n <= 8·size (no byte past `size` is read).
void sign_values_at(const std::byte* bytes, std::size_t size, std::uint64_t bit, std::size_t n,
                    float scale, float* out, bool overwrite) noexcept;

}  // namespace thinwire::codec::kernels
