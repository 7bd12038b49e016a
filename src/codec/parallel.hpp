// Multi-threaded encode for large vectors (issue 7): a vector is cut at bucket boundaries into
// parts, each part is encoded on its own thread into its own bit stream, and the streams are
// concatenated in order. Because every random number is a pure function of (key, element index)
// (core/rng.hpp), the message is byte-identical to the one-thread encode for any thread count.
//
// Threads come from one small process-wide pool that is created on first use and kept: handing a
// part to a waiting worker costs a few microseconds, about 10x less than starting and joining a
// std::jthread per call (measured by bench/kernel_bench.cpp --spawn; docs/results.md). Only one
// parallel region runs at a time; a caller that finds the pool busy (e.g. several workers of the
// threads backend encoding at once) runs all its parts itself, which gives the same bytes.
// Internal to the codec library, not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "thinwire/core/bit_io.hpp"

namespace thinwire::codec::parallel {

// Most threads one encode may use (the thread count a spec may ask for).
inline constexpr unsigned kMaxThreads = 64;
// Below this many elements per part, threads cost more than they save.
inline constexpr std::size_t kMinElementsPerPart = std::size_t{1} << 15;

// Returns threads if it is in [1, kMaxThreads]; otherwise throws InvalidArgument
// ("<who>: threads must be in [1, 64], got N").
unsigned require_thread_count(std::string_view who, std::uint64_t threads);

// How many parts a d-element vector of `buckets` buckets is cut into with `threads` threads:
// at most one per thread, at least kMinElementsPerPart elements each, whole buckets only.
[[nodiscard]] std::size_t part_count(unsigned threads, std::size_t d, std::size_t buckets) noexcept;

// Buckets [first_bucket(p), first_bucket(p + 1)) form part p of `parts` (an even split).
[[nodiscard]] constexpr std::size_t first_bucket(std::size_t p, std::size_t parts,
                                                 std::size_t buckets) noexcept {
  // buckets·p < 2^64 for any vector that fits in memory (p < parts <= 64, buckets < 2^58).
  return buckets * p / parts;
}

// Runs f(p) for every p in [0, parts): part 0 on the calling thread, the others on pool workers,
// and returns when all are done. Returns false without running anything if the pool is busy with
// another caller's region. If any part threw, rethrows the exception of the lowest-numbered part
// that threw (the one a serial loop would have hit first).
bool try_run_parts(std::size_t parts, const std::function<void(std::size_t)>& f);

// The same with a std::jthread started and joined per part (never busy); kept to measure the
// pool against (bench/kernel_bench.cpp --spawn).
void run_parts_spawned(std::size_t parts, const std::function<void(std::size_t)>& f);

// Appends what encode_part(p, writer) writes for p = 0, 1, ..., parts - 1 to w, in that order;
// max_bits(p) bounds part p's bits. With the pool free and w on a byte boundary with room for
// every part's bound: each part is written concurrently into its own stretch of w's buffer, and a
// part is moved down only if the one before it ended short of its bound (nothing is copied when
// every part but the last fills its bound to the byte, as bucketed fixed-width payloads without
// zero buckets do). Otherwise with the pool free: part 0 straight into w, parts 1.. into
// pool-owned scratch streams, then appended to w. With the pool busy: every part straight into w,
// one after the other. The bits are the same in every case.
void encode_parts(std::size_t parts, BitWriter& w,
                  const std::function<std::uint64_t(std::size_t)>& max_bits,
                  const std::function<void(std::size_t, BitWriter&)>& encode_part);

}  // namespace thinwire::codec::parallel
