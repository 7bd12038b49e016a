#include "thinwire/core/checksum.hpp"

#include <new>

// GCC 12 reports false "may be used uninitialized" warnings inside its own AVX-512 intrinsics
// when xxhash's vector code is inlined with -march=native (the intrinsics' undefined-vector
// idiom). Silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace thinwire {
namespace {

static_assert(sizeof(XXH3_state_t) <= 640 && alignof(XXH3_state_t) <= 64,
              "Checksum64::state_ is too small for XXH3_state_t");

XXH3_state_t* as_state(std::array<std::byte, 640>& storage) noexcept {
  return std::launder(reinterpret_cast<XXH3_state_t*>(storage.data()));
}

}  // namespace

Checksum64::Checksum64() noexcept : state_{} {
  XXH3_state_t* state = new (state_.data()) XXH3_state_t;
  XXH3_64bits_reset(state);
}

void Checksum64::update(const void* data, std::size_t size) noexcept {
  XXH3_64bits_update(as_state(state_), data, size);
}

std::uint64_t Checksum64::digest() const noexcept {
  auto copy = state_;
  return XXH3_64bits_digest(as_state(copy));
}

std::uint64_t checksum64(std::span<const std::byte> bytes) noexcept {
  return XXH3_64bits(bytes.data(), bytes.size());
}

}  // namespace thinwire
