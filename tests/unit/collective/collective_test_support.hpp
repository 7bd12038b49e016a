// Helpers for the collective tests. Test bodies run through test::run_world (tests/support), so
// the same file runs on the threads world and under mpiexec: every check happens inside the body,
// on the rank that has the data, and facts about other ranks travel over the raw transport (never
// through the collectives under test).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <span>
#include <vector>

#include "support/world.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/comm/threads.hpp"
#include "thinwire/comm/transport.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::collective {

// Readable parameters in GoogleTest's output (found by argument-dependent lookup).
inline void PrintTo(AllreduceAlgorithm algorithm, std::ostream* os) {
  *os << allreduce_algorithm_name(algorithm);
}

}  // namespace thinwire::collective

namespace thinwire::collective::testing {

inline constexpr int kWorldSizes[] = {1, 2, 3, 4, 7};
inline constexpr std::size_t kLengths[] = {0, 1, 5, 1000};

// Rank r contributes r + i at element i (integers, so sums are exact in float).
inline std::vector<float> ramp(int rank, std::size_t d) {
  std::vector<float> v(d);
  for (std::size_t i = 0; i < d; ++i) v[i] = static_cast<float>(rank) + static_cast<float>(i);
  return v;
}

// Standard normal entries, a pure function of (seed, rank).
inline std::vector<float> gaussian(std::uint64_t seed, int rank, std::size_t d) {
  RngStream rng(RngKey::make(seed, static_cast<std::uint64_t>(rank), 0, RngPurpose::kTest));
  std::vector<float> v(d);
  for (float& x : v) x = static_cast<float>(rng.next_normal());
  return v;
}

inline double norm(std::span<const float> v) {
  double s = 0;
  for (const float x : v) s += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(s);
}

inline double distance(std::span<const float> a, std::span<const double> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = static_cast<double>(a[i]) - b[i];
    s += e * e;
  }
  return std::sqrt(s);
}

// FNV-1a over the float bit patterns: equal hashes mean bit-identical vectors.
inline std::uint64_t hash_floats(std::span<const float> v) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const float x : v) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    for (int b = 0; b < 4; ++b) {
      h ^= (bits >> (8 * b)) & 0xFFu;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

// Every rank gets every rank's bytes (ring of raw exchanges on a test-only tag).
inline std::vector<comm::Bytes> gather_bytes(comm::Transport& t, std::span<const std::byte> mine) {
  constexpr int kTag = 0x7E57;
  const int m = t.size();
  const int r = t.rank();
  std::vector<comm::Bytes> all(static_cast<std::size_t>(m));
  all[static_cast<std::size_t>(r)].assign(mine.begin(), mine.end());
  for (int s = 1; s < m; ++s) {
    const int from = (r - s + m) % m;
    all[static_cast<std::size_t>(from)] = t.exchange((r + s) % m, mine, from, kTag);
  }
  return all;
}

// Every rank gets every rank's vector.
inline std::vector<std::vector<float>> gather_all(comm::Transport& t, std::span<const float> mine) {
  const std::vector<comm::Bytes> bytes = gather_bytes(t, std::as_bytes(mine));
  std::vector<std::vector<float>> all(bytes.size());
  for (std::size_t j = 0; j < bytes.size(); ++j) {
    all[j].resize(bytes[j].size() / sizeof(float));
    if (!bytes[j].empty()) std::memcpy(all[j].data(), bytes[j].data(), bytes[j].size());
  }
  return all;
}

// Expects every rank to hold the same floats, bit for bit.
inline void expect_same_on_all_ranks(comm::Transport& t, std::span<const float> mine) {
  const std::uint64_t mine_hash = hash_floats(mine);
  const std::vector<comm::Bytes> all = gather_bytes(t, std::as_bytes(std::span(&mine_hash, 1)));
  for (std::size_t j = 0; j < all.size(); ++j) {
    std::uint64_t other = 0;
    ASSERT_EQ(all[j].size(), sizeof other);
    std::memcpy(&other, all[j].data(), sizeof other);
    EXPECT_EQ(other, mine_hash) << "rank " << t.rank() << " differs from rank " << j;
  }
}

// Runs fn on a threads world of `size` ranks and returns what each rank returned; for reference
// results computed inside an MPI test binary.
inline std::vector<std::vector<float>> run_threads(
    int size, const std::function<std::vector<float>(comm::Transport&)>& fn) {
  std::vector<std::vector<float>> out(static_cast<std::size_t>(size));
  comm::ThreadsWorldOptions options;
  options.size = size;
  comm::run_threads_world(
      options, [&](comm::Transport& t) { out[static_cast<std::size_t>(t.rank())] = fn(t); });
  return out;
}

}  // namespace thinwire::collective::testing
