#include "thinwire/core/checksum.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "src/core/xxh3_kernel.hpp"

// GCC 12 reports false "may be used uninitialized" warnings inside its own AVX-512 intrinsics
// when xxhash's vector code is inlined with -march=native (the intrinsics' undefined-vector
// idiom). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

// XXH3-64 as xxhash's streaming state computes it, with the bulk of a long input (every 64-byte
// stripe but the last) accumulated by the Highway kernel of xxh3_kernel.hpp, and the rest (inputs
// of at most 240 bytes, the last stripe, the final merge) as xxhash does it. The stripes are
// consumed as soon as at least one byte follows them (the last stripe is hashed differently), so
// the digest does not depend on how the input is split into update() calls.
namespace thinwire {
namespace {

using detail::kXxh3SecretBytes;
using detail::kXxh3StripeBytes;
constexpr std::size_t kBufferBytes = 256;  // whole stripes, and more than XXH3's 240-byte limit
constexpr std::size_t kMidSizeMax = 240;   // up to here XXH3 hashes without stripes
constexpr std::size_t kLastStripeKey = kXxh3SecretBytes - kXxh3StripeBytes - 7;
constexpr std::size_t kMergeKey = 11;

struct State {
  std::uint64_t acc[8];
  // The bytes not yet consumed at [0, buffered); once stripes have been consumed, its last 64
  // bytes hold the last 64 consumed bytes (the digest's last stripe may reach back into them).
  alignas(64) unsigned char buffer[kBufferBytes];
  std::uint64_t total = 0;
  std::uint32_t buffered = 0;
  std::uint32_t stripe_in_block = 0;
};

static_assert(sizeof(State) <= 640 && alignof(State) <= 64,
              "Checksum64::state_ is too small for State");

State* as_state(std::array<std::byte, 640>& storage) noexcept {
  return std::launder(reinterpret_cast<State*>(storage.data()));
}

const State* as_state(const std::array<std::byte, 640>& storage) noexcept {
  return std::launder(reinterpret_cast<const State*>(storage.data()));
}

void consume(State& s, const unsigned char* stripes, std::size_t n) noexcept {
  detail::xxh3_accumulate(s.acc, stripes, n, &s.stripe_in_block, XXH3_kSecret);
}

}  // namespace

Checksum64::Checksum64() noexcept : state_{} {
  State* s = new (state_.data()) State;
  const std::uint64_t init[8] = XXH3_INIT_ACC;
  std::memcpy(s->acc, init, sizeof(init));
}

void Checksum64::update(const void* data, std::size_t size) noexcept {
  State& s = *as_state(state_);
  const auto* p = static_cast<const unsigned char*>(data);
  s.total += size;
  if (s.buffered + size <= kBufferBytes) {
    if (size > 0) std::memcpy(s.buffer + s.buffered, p, size);
    s.buffered += static_cast<std::uint32_t>(size);
    return;
  }
  if (s.buffered > 0) {
    // Fill the buffer and consume it: more bytes follow.
    const std::size_t fill = kBufferBytes - s.buffered;
    std::memcpy(s.buffer + s.buffered, p, fill);
    p += fill;
    size -= fill;
    consume(s, s.buffer, kBufferBytes / kXxh3StripeBytes);
    s.buffered = 0;
  }
  if (size > kBufferBytes) {
    // Every whole stripe but one that ends before the last byte, straight from the input.
    const std::size_t n = (size - 1) / kXxh3StripeBytes;
    consume(s, p, n);
    p += n * kXxh3StripeBytes;
    size -= n * kXxh3StripeBytes;
    std::memcpy(s.buffer + kBufferBytes - kXxh3StripeBytes, p - kXxh3StripeBytes, kXxh3StripeBytes);
  }
  std::memcpy(s.buffer, p, size);
  s.buffered = static_cast<std::uint32_t>(size);
}

std::uint64_t Checksum64::digest() const noexcept {
  const State& s = *as_state(state_);
  if (s.total <= kMidSizeMax) return XXH3_64bits(s.buffer, static_cast<std::size_t>(s.total));
  std::uint64_t acc[8];
  std::memcpy(acc, s.acc, sizeof(acc));
  std::uint32_t stripe_in_block = s.stripe_in_block;
  unsigned char last[kXxh3StripeBytes];
  if (s.buffered >= kXxh3StripeBytes) {
    const std::size_t n = (s.buffered - 1) / kXxh3StripeBytes;
    detail::xxh3_accumulate(acc, s.buffer, n, &stripe_in_block, XXH3_kSecret);
    std::memcpy(last, s.buffer + s.buffered - kXxh3StripeBytes, kXxh3StripeBytes);
  } else {
    const std::size_t before = kXxh3StripeBytes - s.buffered;
    std::memcpy(last, s.buffer + kBufferBytes - before, before);
    std::memcpy(last + before, s.buffer, s.buffered);
  }
  XXH3_accumulate_512_scalar(acc, last, XXH3_kSecret + kLastStripeKey);
  return XXH3_mergeAccs(acc, XXH3_kSecret + kMergeKey, s.total * XXH_PRIME64_1);
}

std::uint64_t checksum64(std::span<const std::byte> bytes) noexcept {
  Checksum64 sum;
  sum.update(bytes);
  return sum.digest();
}

}  // namespace thinwire
