// The bulk of XXH3-64 on Highway (internal to checksum.cpp): the accumulation of 64-byte stripes
// into the eight 64-bit lanes of the hash state, with the scramble after every 1024-byte block.
// The same arithmetic as xxhash's own loop (XXH3_accumulate_512 / XXH3_scrambleAcc), so the
// digests are XXH3-64's, on whichever target Highway dispatches to: xxhash itself is compiled for
// the build's baseline (SSE2 without -march), which limits a checksum to ~17 GB/s, slower than
// the codecs whose messages it covers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace thinwire::detail {

// The length of XXH3's default secret, of a stripe, and the stripes in a block (secret size
// minus one stripe, over the 8-byte step between the stripes' keys).
inline constexpr std::size_t kXxh3SecretBytes = 192;
inline constexpr std::size_t kXxh3StripeBytes = 64;
inline constexpr std::uint32_t kXxh3StripesPerBlock = (kXxh3SecretBytes - kXxh3StripeBytes) / 8;

// Accumulates the n stripes at `stripes` into acc, the first being stripe *stripe_in_block of its
// block (< kXxh3StripesPerBlock); scrambles acc after each block's last stripe and advances
// *stripe_in_block. `secret`: the kXxh3SecretBytes-byte default secret.
void xxh3_accumulate(std::uint64_t acc[8], const unsigned char* stripes, std::size_t n,
                     std::uint32_t* stripe_in_block, const unsigned char* secret) noexcept;

}  // namespace thinwire::detail
