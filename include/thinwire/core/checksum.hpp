// 64-bit checksums (XXH3-64) for everything thinwire puts on a wire or on disk: messages,
// saved residuals, checkpoints. One place includes xxhash, so every format uses the same hash.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace thinwire {

// Incremental XXH3-64 with seed 0: update() any number of times, then digest().
class Checksum64 {
 public:
  Checksum64() noexcept;
  void update(const void* data, std::size_t size) noexcept;
  void update(std::span<const std::byte> bytes) noexcept { update(bytes.data(), bytes.size()); }
  [[nodiscard]] std::uint64_t digest() const noexcept;

 private:
  // Opaque storage for XXH3_state_t (size and alignment checked in checksum.cpp).
  alignas(64) std::array<std::byte, 640> state_;
};

// One-shot XXH3-64 of a byte range.
[[nodiscard]] std::uint64_t checksum64(std::span<const std::byte> bytes) noexcept;

}  // namespace thinwire
