// Counter-based random numbers: the value for element i is a pure function of a key and i, so
// results never depend on thread scheduling, any slice of a vector can be generated independently
// (multi-threaded and SIMD encoders draw exactly the same numbers as the scalar reference), and
// a run is reproduced from (seed, rank, iteration, purpose) alone.
//
// The mixer is the SplitMix64 finalizer (Steele, Lea, Flood: "Fast splittable pseudorandom number
// generators", 2014) applied to key ^ (counter · golden ratio). Distinct keys give unrelated
// streams because the key enters before the avalanche; the 64-bit multiplies vectorize on
// AVX-512DQ and cost a few cycles per element otherwise.
#pragma once

#include <cstdint>

namespace thinwire {

// What a random stream is used for; part of the key so that two uses on the same
// (seed, rank, iteration) never share numbers.
enum class RngPurpose : std::uint32_t {
  kQuantize = 1,     // stochastic rounding in QSGD / TernGrad
  kSparsify = 2,     // random-k indices, Wangni's Bernoulli draws
  kSharedIndex = 3,  // random-k indices shared by all ranks (rank is ignored)
  kData = 4,         // minibatch sampling, shuffles
  kInit = 5,         // model initialization
  kTopology = 6,     // random regular graphs
  kTest = 7,         // tests and synthetic data
};

[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

__extension__ using Uint128 = unsigned __int128;

inline constexpr std::uint64_t kGolden64 = 0x9E3779B97F4A7C15ULL;

// A stream key: a 64-bit value derived from (seed, rank, iteration, purpose).
struct RngKey {
  std::uint64_t value = 0;

  [[nodiscard]] static constexpr RngKey make(std::uint64_t seed, std::uint64_t rank,
                                             std::uint64_t iteration, RngPurpose purpose) noexcept {
    std::uint64_t k = mix64(seed + kGolden64);
    k = mix64(k ^ (rank + 0x632BE59BD9B4E019ULL));
    k = mix64(k ^ (iteration + 0x8CB92BA72F3D8DD7ULL));
    k = mix64(k ^ (static_cast<std::uint64_t>(purpose) + 0xD1B54A32D192ED03ULL));
    return RngKey{k};
  }

  // A derived key for a sub-stream (e.g. one bucket, one chunk, one peer).
  [[nodiscard]] constexpr RngKey derive(std::uint64_t salt) const noexcept {
    return RngKey{mix64(value ^ mix64(salt + kGolden64))};
  }

  // 64 random bits for counter i.
  [[nodiscard]] constexpr std::uint64_t bits(std::uint64_t i) const noexcept {
    return mix64(value ^ (i * kGolden64));
  }

  // Uniform float in [0, 1) with 24 random bits for counter i.
  [[nodiscard]] constexpr float uniform(std::uint64_t i) const noexcept {
    return static_cast<float>(bits(i) >> 40) * 0x1.0p-24f;
  }

  // Uniform double in [0, 1) with 53 random bits for counter i.
  [[nodiscard]] constexpr double uniform_double(std::uint64_t i) const noexcept {
    return static_cast<double>(bits(i) >> 11) * 0x1.0p-53;
  }

  // Uniform integer in [0, n) for counter i (Lemire's multiply-shift; bias < n / 2^64).
  [[nodiscard]] constexpr std::uint64_t below(std::uint64_t i, std::uint64_t n) const noexcept {
    return static_cast<std::uint64_t>((static_cast<Uint128>(bits(i)) * n) >> 64);
  }
};

// Sequential draws from one key, for code that consumes an unknown number of values
// (sampling without replacement, shuffles). Still counter-based: state is (key, counter).
class RngStream {
 public:
  constexpr explicit RngStream(RngKey key, std::uint64_t counter = 0) noexcept
      : key_(key), counter_(counter) {}

  [[nodiscard]] constexpr std::uint64_t next_bits() noexcept { return key_.bits(counter_++); }
  [[nodiscard]] constexpr float next_uniform() noexcept { return key_.uniform(counter_++); }
  [[nodiscard]] constexpr double next_uniform_double() noexcept {
    return key_.uniform_double(counter_++);
  }
  [[nodiscard]] constexpr std::uint64_t next_below(std::uint64_t n) noexcept {
    return key_.below(counter_++, n);
  }
  // Standard normal by Box–Muller (one value per call; the second is discarded for simplicity).
  [[nodiscard]] double next_normal() noexcept;

  [[nodiscard]] constexpr std::uint64_t counter() const noexcept { return counter_; }
  [[nodiscard]] constexpr RngKey key() const noexcept { return key_; }

 private:
  RngKey key_;
  std::uint64_t counter_;
};

}  // namespace thinwire
