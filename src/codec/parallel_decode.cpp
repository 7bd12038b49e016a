#include "parallel_decode.hpp"

#include <algorithm>
#include <string>

#include "qsgd_kernels.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::codec::parallel {
namespace {

using kernels::kScaleBits;

std::size_t bucket_count(const BucketLayout& layout) noexcept {
  return (layout.d - 1) / layout.bucket + 1;
}

// Bits of every bucket's scale and fields when no scale is zero, and of the whole stream.
struct DenseLayout {
  std::uint64_t stride = 0;
  std::uint64_t total = 0;
};

DenseLayout dense_layout(const BucketLayout& layout) noexcept {
  const std::size_t buckets = bucket_count(layout);
  const std::uint64_t stride = kScaleBits + std::uint64_t{layout.bucket} * layout.field_bits;
  const std::size_t last = layout.d - (buckets - 1) * layout.bucket;
  return {stride, (buckets - 1) * stride + kScaleBits + std::uint64_t{last} * layout.field_bits};
}

bool valid_nonzero_scale(std::uint32_t bits) noexcept {
  return bits != 0 && kernels::valid_scale_bits(bits);
}

// The common case, a payload whose every bucket has a non-zero scale, without the one-thread
// walk: then bucket b starts at b·stride, which the payload's length (exactly the dense stream's,
// zero padding) and every scale read at those positions (all valid and non-zero) confirm, the
// scales checked by the parts themselves, concurrently. True and the part starts if that holds;
// false if any check fails (zero buckets, or a damaged payload), for scan_buckets to sort out.
bool dense_starts(std::span<const std::byte> payload, const BucketLayout& layout, std::size_t parts,
                  std::vector<std::uint64_t>& starts) {
  const DenseLayout dense = dense_layout(layout);
  if (payload.size() != (dense.total + 7) / 8) return false;
  BitReader padding(payload);
  padding.skip(dense.total);
  if (padding.get(static_cast<unsigned>(padding.remaining())) != 0) return false;
  const std::size_t buckets = bucket_count(layout);
  std::vector<unsigned char> ok(parts, 0);  // not vector<bool>: the parts write their own bytes
  run_parts(parts, [&](std::size_t p) {
    const std::size_t b0 = first_bucket(p, parts, buckets);
    const std::size_t b1 = first_bucket(p + 1, parts, buckets);
    BitReader r(payload);
    r.skip(b0 * dense.stride);
    for (std::size_t b = b0; b < b1; ++b) {
      if (b > b0) r.skip(dense.stride - kScaleBits);
      if (!valid_nonzero_scale(static_cast<std::uint32_t>(r.get(kScaleBits)))) return;
    }
    ok[p] = 1;
  });
  if (std::find(ok.begin(), ok.end(), 0) != ok.end()) return false;
  starts.resize(parts + 1);
  for (std::size_t p = 0; p < parts; ++p)
    starts[p] = first_bucket(p, parts, buckets) * dense.stride;
  starts[parts] = dense.total;
  return true;
}

}  // namespace

std::size_t bucket_parts(const BucketLayout& layout, unsigned threads) noexcept {
  return layout.d == 0 ? 1 : part_count(threads, layout.d, bucket_count(layout));
}

std::optional<std::vector<std::uint64_t>> scan_buckets(std::span<const std::byte> payload,
                                                       const BucketLayout& layout,
                                                       std::size_t parts) {
  const std::size_t buckets = bucket_count(layout);
  std::vector<std::uint64_t> starts(parts + 1);
  BitReader r(payload);
  std::size_t part = 0;
  std::size_t next_start = 0;  // first bucket of `part`
  const std::uint64_t full_bits = std::uint64_t{layout.bucket} * layout.field_bits;
  for (std::size_t b = 0; b < buckets; ++b) {
    while (b == next_start) {  // once per part (parts <= buckets for part_count's counts)
      starts[part++] = r.position();
      next_start = part < parts ? first_bucket(part, parts, buckets) : buckets;
    }
    if (r.remaining() < kScaleBits) return std::nullopt;
    const auto bits = static_cast<std::uint32_t>(r.get(kScaleBits));
    if (!kernels::valid_scale_bits(bits)) return std::nullopt;  // as kernels::read_bucket_scale
    // A branch on purpose: predicted "non-zero", the next scales' loads can start before this one
    // arrives (a select would make each wait for the previous one).
    if (bits != 0) {
      const std::uint64_t fields =
          b + 1 < buckets ? full_bits
                          : std::uint64_t{layout.d - b * layout.bucket} * layout.field_bits;
      if (r.remaining() < fields) return std::nullopt;
      r.skip(fields);
    }
  }
  starts[parts] = r.position();
  const std::uint64_t left = r.remaining();
  if (left >= 8 || r.get(static_cast<unsigned>(left)) != 0) return std::nullopt;
  return starts;
}

void run_parts(std::size_t parts, const std::function<void(std::size_t)>& f) {
  if (parts > 1 && try_run_parts(parts, f)) return;
  for (std::size_t p = 0; p < parts; ++p) f(p);
}

bool decode_bucket_parts(
    std::span<const std::byte> payload, const BucketLayout& layout, unsigned threads,
    const std::function<void(BitReader& r, std::size_t first, std::size_t last)>& decode_part) {
  const std::size_t parts = bucket_parts(layout, threads);
  if (parts == 1) return false;
  std::optional<std::vector<std::uint64_t>> starts(std::in_place);
  if (!dense_starts(payload, layout, parts, *starts)) starts = scan_buckets(payload, layout, parts);
  if (!starts) return false;
  const std::size_t buckets = bucket_count(layout);
  run_parts(parts, [&](std::size_t p) {
    const std::size_t first = first_bucket(p, parts, buckets) * layout.bucket;
    const std::size_t last =
        std::min(layout.d, first_bucket(p + 1, parts, buckets) * layout.bucket);
    BitReader r(payload);
    r.skip((*starts)[p]);
    decode_part(r, first, last);
    // The part's decoder reads the layout checked above; anything else is a bug here.
    if (r.position() != (*starts)[p + 1]) {
      throw Error("internal: a decode part of elements [" + std::to_string(first) + ", " +
                  std::to_string(last) + ") did not end where the next one starts");
    }
  });
  return true;
}

}  // namespace thinwire::codec::parallel
