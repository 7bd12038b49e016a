// Multi-threaded decode for large vectors (codec::decode with threads > 1) of the payloads that
// are a run of scaled buckets: per bucket a 32-bit fp32 scale and, unless it is zero, one field of
// a fixed width per element (qsgd with coding=packed, terngrad, sign).
//
// A zero bucket sends only its scale, so where bucket b starts depends on the scales before it.
// Before any part decodes, the stream's structure is checked and the parts' first bits found:
// where the payload is exactly as long as if no scale were zero, the parts check concurrently that
// every scale at those positions is valid and non-zero (then that is the layout); otherwise, or if
// one is not, one pass over the scales alone on the calling thread (a 32-bit read per bucket)
// walks the stream: every scale non-negative and finite, the stream exactly as long as the scales
// say, zero padding. Only a payload that passes is cut; any other goes to the codec's one-thread
// decoder, which then throws the error it always throws, and no part has written anything. The
// parts (whole buckets, as parallel::part_count cuts encode) then decode concurrently into disjoint
// ranges of the output, each with the one-thread decoder of a range of buckets, so the floats are
// the same bit for bit; a field error (a level above s, a TernGrad code 3) comes from the
// lowest-numbered part that hit one, which is the first bucket the one-thread decoder would have
// reported. Internal to the codec library, not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "parallel.hpp"
#include "thinwire/core/bit_io.hpp"

namespace thinwire::codec::parallel {

struct BucketLayout {
  std::size_t d = 0;        // elements (> 0)
  std::size_t bucket = 0;   // elements per bucket, the last one shorter (1 <= bucket <= d)
  unsigned field_bits = 0;  // bits per element of a bucket with a non-zero scale
};

// part_count for the layout's buckets: how many parts decode_bucket_parts cuts a payload into.
[[nodiscard]] std::size_t bucket_parts(const BucketLayout& layout, unsigned threads) noexcept;

// The bit where bucket first_bucket(p, parts, buckets) starts, for p in [0, parts) (parts >= 1),
// and the end of the stream as entry `parts`; nothing if the payload is not exactly such a stream
// (a scale negative or not finite, the stream ending before a scale or inside a bucket's fields,
// 8 or more bits after it, or a non-zero padding bit). One 32-bit read per bucket.
[[nodiscard]] std::optional<std::vector<std::uint64_t>> scan_buckets(
    std::span<const std::byte> payload, const BucketLayout& layout, std::size_t parts);

// Runs f(p) for every p in [0, parts) on the pool, or, when another caller holds it, one part
// after the other on this thread; either way an exception of the lowest-numbered part that threw
// propagates.
void run_parts(std::size_t parts, const std::function<void(std::size_t)>& f);

// Decodes a payload of `layout` in bucket_parts(layout, threads) parts: part p covers elements
// [first, last) (buckets first_bucket(p) .. first_bucket(p + 1) - 1) and is decoded by
// decode_part(r, first, last), r a reader over the whole payload positioned at the part's first
// scale. Returns false, having called nothing, when that is one part or the payload's structure
// is not valid (see the top of this file): the caller then decodes on its own thread (and reports
// the error).
bool decode_bucket_parts(
    std::span<const std::byte> payload, const BucketLayout& layout, unsigned threads,
    const std::function<void(BitReader& r, std::size_t first, std::size_t last)>& decode_part);

}  // namespace thinwire::codec::parallel
