// Fast codec kernels for QSGD, TernGrad and sign: free functions over plain arrays. The
// element-wise kernels are Highway code (src/codec/kernels/fields.cpp: one implementation,
// compiled for every SIMD target, chosen once per process); field packing is specialised per field
// width here (qsgd_kernels.cpp), the fused packing in kernels/pack.cpp.
//
// Every kernel computes what the scalar reference loops in qsgd.cpp / terngrad.cpp / sign.cpp
// compute, operation for operation in the same precision and with the same counter-based
// rounding values (core/rounding.hpp), so messages are byte-identical for the same seed on every
// target and decoded floats are identical; tests/unit/codec/qsgd_kernels_test.cpp checks both
// over many sizes (multiples and non-multiples of the vector width, chunk, rounding block and
// bucket), and kernel_targets_test.cpp runs the kernels on every target the CPU has.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/rounding.hpp"

namespace thinwire::codec::kernels {

// Every bucket of a qsgd, terngrad or sign payload opens with its scale as a raw float32.
inline constexpr unsigned kScaleBits = 32;

// Whether a bucket scale's bit pattern is one every encoder can write: non-negative (no -0) and
// finite (not an infinity or NaN pattern).
[[nodiscard]] constexpr bool valid_scale_bits(std::uint32_t bits) noexcept {
  return (bits >> 31) == 0 && (bits & 0x7F800000U) != 0x7F800000U;
}

// Reads a bucket's scale; throws CorruptMessage ("<codec>: the bucket starting at element N has
// an invalid scale (x)") unless valid_scale_bits.
[[nodiscard]] inline float read_bucket_scale(BitReader& r, std::size_t first,
                                             std::string_view codec) {
  const auto bits = static_cast<std::uint32_t>(r.get(kScaleBits));
  const float scale = std::bit_cast<float>(bits);
  if (!valid_scale_bits(bits)) {
    throw CorruptMessage(std::string(codec) + ": the bucket starting at element " +
                         std::to_string(first) + " has an invalid scale (" + std::to_string(scale) +
                         ")");
  }
  return scale;
}

// Elements processed per inner call (the field buffer lives on the stack).
inline constexpr std::size_t kQsgdChunk = 1024;

// True if no element of u is an infinity or NaN (exponent field all ones).
[[nodiscard]] bool all_finite(const float* u, std::size_t n) noexcept;

// max_i |u_i| for finite u (compares the IEEE bit patterns with the sign cleared, which order
// finite magnitudes exactly, so the result equals the std::max/std::fabs reduction).
[[nodiscard]] float max_abs(const float* u, std::size_t n) noexcept;

// out[k] = key.bits24(first + k) for k < n: the rounding stream, two AES rounds per four
// elements on every target (Highway's AESRound; the same values as the software RoundingCursor).
void rounding_bits(const RoundingKey& key, std::uint64_t first, std::size_t n,
                   std::uint32_t* out) noexcept;

// fields[i] = level_i | (negative_i << width) for i < n, where level_i is the stochastic level of
// u[i] computed in fp32 with inv = s/scale and the rounding bits key.bits24(first + i) (the fp32
// branch of stochastic_level in qsgd.cpp).
void qsgd_fields(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
                 unsigned width, const RoundingKey& key, std::uint32_t* fields) noexcept;

// Elias-gamma QSGD (qsgd.cpp's encode_bucket_elias<EliasGamma>) of u[0..n), elements first ..
// first + n - 1 of the vector, levels as qsgd_fields: for every non-zero level, in index order,
// the gamma code of its gap from `next` (one past the previous non-zero, a bucket index), its
// sign bit and the gamma code of the level, appended at cur with BitCursor::put_unchecked. Works a
// group of 256 elements at a time (quantizing the next group before coding this one, so that its
// loads overlap the scalar coding loop) while `room` (the bytes after cur.dst) leaves space for a
// group's worst case; returns how many elements it coded (a multiple of 256, or n) and updates
// next. Needs s <= kEliasKernelMaxLevels (a sign and level code in 32 bits); the terminator is the
// caller's.
inline constexpr std::uint32_t kEliasKernelMaxLevels = 65535;
std::size_t qsgd_elias_gamma(const float* u, std::size_t n, std::uint64_t first, float inv,
                             std::uint32_t s, const RoundingKey& key, std::uint64_t& next,
                             BitCursor& cur, std::size_t room) noexcept;

// out[i] = (or +=) ±step·level for the n fields; returns true if any field is invalid (level > s
// or a signed zero level).
bool qsgd_values(const std::uint32_t* fields, std::size_t n, double step, std::uint32_t s,
                 unsigned width, float* out, bool overwrite) noexcept;

// bytes[j] bit t = [(fields[8j+t] & mask) != 0] for nb bytes: which levels are non-zero, so that a
// sparse coder can walk the set bits instead of branching on every element.
void nonzero_bytes(const std::uint32_t* fields, std::size_t nb, std::uint32_t mask,
                   std::uint8_t* bytes) noexcept;

// The same from nb whole bytes of fw-bit fields (fw in {2, 4, 8}: 8/fw fields per byte, least
// significant first), without unpacking to a field array first.
bool qsgd_values_bytes(const std::uint8_t* bytes, std::size_t nb, unsigned fw, double step,
                       std::uint32_t s, float* out, bool overwrite) noexcept;

// TernGrad (2-bit codes 0 = zero, 1 = +scale, 2 = -scale): fields[i] = keep_i << negative_i with
// keep_i = round_up24(key.bits24(first + i), min(|u_i|, scale)·inv·2^24) != 0 in fp32
// (inv = 1/scale): kept with probability ⌈p·2^24⌉/2^24 for p = |u_i|/scale.
void terngrad_fields(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                     const RoundingKey& key, std::uint32_t* fields) noexcept;

// The same from nb whole bytes of 2-bit codes (4 per byte, least significant first).
bool terngrad_values_bytes(const std::uint8_t* bytes, std::size_t nb, float scale, float* out,
                           bool overwrite) noexcept;

// out[i] = (or +=) the value of code fields[i]; returns true if any code is 3 (invalid).
bool terngrad_values(const std::uint32_t* fields, std::size_t n, float scale, float* out,
                     bool overwrite) noexcept;

// Σ|u_i| in double over 8 interleaved partial sums (element i goes to sum i mod 8), combined as
// ((s0+s4)+(s2+s6))+((s1+s5)+(s3+s7)): a fixed order, so every build gives the same value.
[[nodiscard]] double sum_abs(const float* u, std::size_t n) noexcept;
// Σ u_i² in double, in sum_abs's fixed order. Each u_i² is exact in double (24-bit significands),
// so contracting the multiply and add into an FMA gives the same double on every machine.
[[nodiscard]] double sum_squares(const float* u, std::size_t n) noexcept;
// Σ f_i(1 − f_i) in sum_abs's fixed order, f_i = sr − ⌊sr⌋ with sr = min(|u_i|·inv, s) in double
// (qsgd_variance's per-bucket sum; inv = s/scale, s <= 2^20).
[[nodiscard]] double rounding_variance_sum(const float* u, std::size_t n, double inv,
                                           double s) noexcept;
// The same two sums for every bucket of u[0..n) (buckets of `bucket` elements, the last may be
// shorter) in one call: out[k] = sum_squares of bucket k, and out[k] = rounding_variance_sum of
// bucket k at inv[k].
void bucket_sum_squares(const float* u, std::size_t n, std::size_t bucket, double* out) noexcept;
void bucket_rounding_variance_sums(const float* u, std::size_t n, std::size_t bucket,
                                   const double* inv, double s, double* out) noexcept;

// Sign bits, 1 = negative (x < 0; -0 is not negative): bytes[j] bit t = [u[8j+t] < 0], nb bytes.
void sign_bytes(const float* u, std::size_t nb, std::uint8_t* bytes) noexcept;

// out[i] = (or +=) bit i of bytes ? -scale : scale, for i < n.
void sign_values(const std::uint8_t* bytes, std::size_t n, float scale, float* out,
                 bool overwrite) noexcept;

// Fused packing (kernels/pack.cpp, one Highway implementation for QSGD and TernGrad): available
// on every target.
[[nodiscard]] bool has_fused_pack() noexcept;

// The fields qsgd_fields computes for u[0..n) (n a multiple of 16), width in {1, 3, 7}, packed
// least significant first as width + 1 = 2, 4 or 8-bit fields into n·(width + 1)/8 bytes.
// first is a multiple of 16.
void qsgd_pack(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
               unsigned width, const RoundingKey& key, std::uint8_t* out) noexcept;

// The codes terngrad_fields computes for u[0..n) (n and first multiples of 16) as 2-bit fields,
// n/4 bytes.
void terngrad_pack(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                   const RoundingKey& key, std::uint8_t* out) noexcept;

// What qsgd_pack_buckets wrote: whole buckets, and their bytes.
struct PackedRun {
  std::size_t buckets;
  std::size_t bytes;
};

// QSGD norm=max packed encoding of `buckets` whole buckets of `bucket` floats each (bucket and
// first multiples of 16; width in {1, 3, 7}) starting at u (element `first` of the vector): per
// bucket its scale (the bit-pattern maximum of |u_i|, 4 bytes little-endian) and, unless the scale
// is 0, bucket·(width + 1)/8 bytes of fields, exactly the bytes encode_buckets in qsgd.cpp writes
// from a byte-aligned position. Stops before a bucket with a non-finite element or with s/scale
// above 2^100 (the double path), which the caller takes.
[[nodiscard]] PackedRun qsgd_pack_buckets(const float* u, std::size_t buckets, std::size_t bucket,
                                          std::uint64_t first, std::uint32_t s, unsigned width,
                                          const RoundingKey& key, std::uint8_t* out) noexcept;

// The same for TernGrad without clipping (scale = the bit-pattern maximum, 2-bit codes): the
// bytes encode_buckets in terngrad.cpp writes from a byte-aligned position.
[[nodiscard]] PackedRun terngrad_pack_buckets(const float* u, std::size_t buckets,
                                              std::size_t bucket, std::uint64_t first,
                                              const RoundingKey& key, std::uint8_t* out) noexcept;

// Encodes buckets [first, end) (element indices, `bucket` elements each) into w: runs of whole
// buckets through run(first, buckets, dst) -> PackedRun, written straight into w's buffer
// (bucket_bytes each at most) while w stands on a byte boundary and `runs` is set, and every other
// bucket (where a run stopped, a partial last one) through one(first).
template <typename Run, typename One>
void encode_in_runs(BitWriter& w, std::size_t first, std::size_t end, std::size_t bucket,
                    std::size_t bucket_bytes, bool runs, Run run, One one) {
  while (first < end) {
    // At most 256 buckets per call, so that the reserved span stays a small multiple of a run.
    const std::size_t whole = runs ? std::min<std::size_t>((end - first) / bucket, 256) : 0;
    std::byte* dst = whole > 0 ? w.reserve_bytes(whole * bucket_bytes) : nullptr;
    if (dst != nullptr) {
      const PackedRun done = run(first, whole, reinterpret_cast<std::uint8_t*>(dst));
      w.commit_bytes(done.bytes);
      first += done.buckets * bucket;
      if (done.buckets == whole) continue;
    }
    one(first);
    first += bucket;
  }
}

// Appends / reads nb whole bytes (8 bits each, least significant first), 64 bits per call.
void put_bytes(BitWriter& w, const std::uint8_t* bytes, std::size_t nb);
void get_bytes(BitReader& r, std::uint8_t* bytes, std::size_t nb);

// Appends n fields of field_bits bits each (field_bits in [2, 21]) to w, least significant
// first, as BitWriter::put would one at a time.
void put_fields(BitWriter& w, const std::uint32_t* fields, std::size_t n, unsigned field_bits);

// Reads n fields of field_bits bits each from r into fields.
void get_fields(BitReader& r, std::uint32_t* fields, std::size_t n, unsigned field_bits);

}  // namespace thinwire::codec::kernels
