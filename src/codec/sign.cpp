#include "thinwire/codec/sign.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernel_path.hpp"
#include "kernels/sign.hpp"
#include "parallel.hpp"
#include "parallel_decode.hpp"
#include "qsgd_kernels.hpp"
#include "thinwire/codec/qsgd.hpp"

namespace thinwire::codec {
namespace {

constexpr std::string_view kName = "sign";
using kernels::kScaleBits;
constexpr std::size_t kParamsBytes = 4;  // u32 bucket

[[noreturn]] void corrupt(const std::string& what) {
  throw CorruptMessage(std::string(kName) + ": " + what);
}

std::size_t bucket_length(std::size_t d, std::uint32_t bucket) noexcept {
  return bucket == 0 || bucket > d ? d : static_cast<std::size_t>(bucket);
}

// Payload bits of a d-element vector (d > 0) in buckets of `bucket`: a scale per bucket, a bit
// per element (the most: a zero bucket sends only its scale).
std::uint64_t max_bits_total(std::size_t d, std::size_t bucket) noexcept {
  return std::uint64_t{(d + bucket - 1) / bucket} * kScaleBits + std::uint64_t{d};
}

// The payload bits written straight into the message buffer for the fused kernel
// (kernels::SignBits), with the bucket scale put in front of a bucket's bits after them.
class DirectBits {
 public:
  // `base` receives bit 0; the caller has checked that the buffer holds the largest payload.
  explicit DirectBits(std::byte* base) noexcept : base_(base), bits_{base, 0, 0} {}

  [[nodiscard]] kernels::SignBits& bits() noexcept { return bits_; }
  [[nodiscard]] std::uint64_t position() const noexcept {
    return static_cast<std::uint64_t>(bits_.next - base_) * 8 + bits_.used;
  }

  void put32(std::uint32_t value) noexcept {
    const unsigned used = bits_.used;
    bits_.acc |= std::uint64_t{value} << used;
    if (used >= 32) {
      store_word();
      bits_.acc = (std::uint64_t{value} >> 1) >> (63 - used);
      bits_.used = used - 32;
    } else {
      bits_.used = used + 32;
    }
  }

  // ORs `value` into the 32 bits at `pos` (written as zeros before): into the stored words or,
  // for the word not stored yet, into the pending bits.
  void or32_at(std::uint64_t pos, std::uint32_t value) noexcept {
    const std::size_t stored = static_cast<std::size_t>(bits_.next - base_) / 8;
    const auto word = static_cast<std::size_t>(pos / 64);
    const auto offset = static_cast<unsigned>(pos % 64);
    or_word(stored, word, std::uint64_t{value} << offset);
    if (offset > 32) or_word(stored, word + 1, std::uint64_t{value} >> (64 - offset));
  }

  // Stores the pending bits (zero-padded to a whole byte); returns the payload bytes.
  std::size_t finish() noexcept {
    const std::size_t tail = (bits_.used + 7) / 8;
    std::memcpy(bits_.next, &bits_.acc, tail);
    return static_cast<std::size_t>(bits_.next - base_) + tail;
  }

 private:
  void store_word() noexcept {
    std::memcpy(bits_.next, &bits_.acc, 8);
    bits_.next += 8;
  }
  void or_word(std::size_t stored, std::size_t word, std::uint64_t part) noexcept {
    if (word < stored) {
      std::uint64_t x = 0;
      std::memcpy(&x, base_ + 8 * word, 8);
      x |= part;
      std::memcpy(base_ + 8 * word, &x, 8);
    } else {
      bits_.acc |= part;  // word == stored: the word still pending
    }
  }

  std::byte* base_;
  kernels::SignBits bits_;
};

// Encodes the buckets of u (d elements from element `first` of the vector v, cut into buckets of
// `bucket`) with the fused kernel: one pass over each bucket computes its bits and its |u| sum.
// The scale goes in front of the bits once known; a zero scale rewinds the bucket to the scale
// alone (the format sends no bits then).
void encode_direct(std::span<const float> v, std::size_t first, std::size_t last,
                   std::size_t bucket, DirectBits& out) {
  for (; first < last; first += bucket) {
    const std::span<const float> u = v.subspan(first, std::min(bucket, last - first));
    const kernels::SignBits start = out.bits();
    const std::uint64_t at = out.position();
    out.put32(0);
    const double sum = kernels::sign_bits_sum(u.data(), u.size(), out.bits());
    // As sign_scale: the kernel's sum is kernels::sum_abs's value.
    const auto scale = static_cast<float>(sum / static_cast<double>(u.size()));
    if (!std::isfinite(scale)) require_finite(v, kName);
    if (scale == 0.0f) {
      out.bits() = start;
      out.put32(0);
    } else {
      out.or32_at(at, std::bit_cast<std::uint32_t>(scale));
    }
  }
}

// Decodes u, a run of one bucket's bits (all of them, or a part's share) after its non-zero
// scale: straight from r's bytes with kernels::sign_values_at on the fast path (the same checks:
// the skip throws where the reader would, if the message ends inside the bits).
void decode_bits(BitReader& r, float scale, std::span<float> u, DecodeMode mode, KernelPath path) {
  if (path == KernelPath::kFast) {
    const std::span<const std::byte> bytes = r.bytes();
    const std::uint64_t at = r.position();
    r.skip(u.size());
    kernels::sign_values_at(bytes.data(), bytes.size(), at, u.size(), scale, u.data(),
                            mode == DecodeMode::kOverwrite);
  } else {
    sign_decode_bucket(r, scale, u, mode, path);
  }
}

// Decodes the buckets of out, which is elements [base, base + out.size()) of the vector: whole
// buckets of `bucket` elements from base (a bucket boundary) on, the last one possibly shorter.
// base is 0 for the whole payload and a part's first element in a multi-threaded decode (errors
// name elements of the whole vector either way). A zero-scale bucket sends no bits: zero-filled
// (overwrite) or skipped.
void decode_buckets(BitReader& r, std::size_t bucket, std::span<float> out, std::size_t base,
                    DecodeMode mode, KernelPath path) {
  for (std::size_t at = 0; at < out.size(); at += bucket) {
    const std::span<float> u = out.subspan(at, std::min(bucket, out.size() - at));
    const float scale = kernels::read_bucket_scale(r, base + at, kName);
    if (scale != 0.0f) {
      decode_bits(r, scale, u, mode, path);
    } else if (mode == DecodeMode::kOverwrite) {
      std::fill(u.begin(), u.end(), 0.0f);
    }
  }
}

// A single bucket (the default, bucket=0) is one scale and then a bit per element, so unlike the
// other bucketed codecs it can be cut anywhere: into runs of kSplitChunk elements, each part's
// bits starting on a whole byte after the 32-bit scale.
constexpr std::size_t kSplitChunk = 512;

std::size_t chunk_count(std::size_t d) noexcept { return (d - 1) / kSplitChunk + 1; }

// Decodes a one-bucket payload of out.size() > 0 elements on up to `threads` threads; false,
// having decoded nothing, if that is one part, the bucket is zero (only a scale to read), or the
// payload is not exactly one valid scale, the bits and zero padding (the one-thread decoder then
// reports the error).
bool decode_one_bucket_parts(std::span<const std::byte> payload, std::span<float> out,
                             DecodeMode mode, unsigned threads) {
  const std::size_t d = out.size();
  const std::size_t chunks = chunk_count(d);
  const std::size_t parts = parallel::part_count(threads, d, chunks);
  if (parts == 1 || !parallel::scan_buckets(payload, {.d = d, .bucket = d, .field_bits = 1}, 1)) {
    return false;
  }
  BitReader r(payload);
  const float scale = kernels::read_bucket_scale(r, 0, kName);
  if (scale == 0.0f) return false;
  parallel::run_parts(parts, [&](std::size_t p) {
    const std::size_t first = parallel::first_bucket(p, parts, chunks) * kSplitChunk;
    const std::size_t last =
        std::min(d, parallel::first_bucket(p + 1, parts, chunks) * kSplitChunk);
    BitReader part(payload);
    part.skip(kScaleBits + first);
    decode_bits(part, scale, out.subspan(first, last - first), mode, KernelPath::kFast);
  });
  return true;
}

}  // namespace

float sign_scale(std::span<const float> u) {
  if (u.empty()) return 0.0f;
  const double sum = kernels::sum_abs(u.data(), u.size());
  // The mean of |u_i| is at most max|u_i|, so it stays within the fp32 range.
  return static_cast<float>(sum / static_cast<double>(u.size()));
}

void sign_encode_bucket(std::span<const float> u, BitWriter& w, KernelPath path) {
  std::size_t i = 0;
  if (path == KernelPath::kFast) {
    std::uint8_t bytes[kernels::kQsgdChunk];
    for (; u.size() - i >= 8;) {
      const std::size_t nb = std::min(kernels::kQsgdChunk, (u.size() - i) / 8);
      kernels::sign_bytes(u.data() + i, nb, bytes);
      kernels::put_bytes(w, bytes, nb);
      i += 8 * nb;
    }
  }
  for (; i < u.size(); ++i) w.put_bit(u[i] < 0.0f);  // sgn(0) = sgn(-0) = +1
}

void sign_decode_bucket(BitReader& r, float scale, std::span<float> out, DecodeMode mode,
                        KernelPath path) {
  const bool overwrite = mode == DecodeMode::kOverwrite;
  std::size_t i = 0;
  if (path == KernelPath::kFast) {
    std::uint8_t bytes[kernels::kQsgdChunk];
    for (; out.size() - i >= 8;) {
      const std::size_t nb = std::min(kernels::kQsgdChunk, (out.size() - i) / 8);
      kernels::get_bytes(r, bytes, nb);
      kernels::sign_values(bytes, 8 * nb, scale, out.data() + i, overwrite);
      i += 8 * nb;
    }
  }
  for (; i < out.size(); ++i) {
    const float x = r.get_bit() ? -scale : scale;
    if (overwrite) {
      out[i] = x;
    } else {
      out[i] += x;
    }
  }
}

double sign_abs_sum(std::span<const float> u, KernelPath path) {
  if (path == KernelPath::kFast) {
    return kernels::sign_sum_abs(u.data(), u.size());
  }
  return kernels::sum_abs(u.data(), u.size());
}

std::size_t sign_payload_max_bytes(std::size_t d, std::uint32_t bucket) noexcept {
  return d == 0 ? 0
                : static_cast<std::size_t>((max_bits_total(d, bucket_length(d, bucket)) + 7) / 8);
}

std::size_t sign_encode_payload(std::span<const float> v, std::uint32_t bucket_param,
                                std::span<std::byte> out, KernelPath path, unsigned threads) {
  // No separate finiteness pass: the scale is finite iff its bucket is (a double sum of |finite|
  // floats cannot overflow), so a non-finite scale sends us to require_finite for the error.
  const std::size_t d = v.size();
  BitWriter w(out);
  if (d == 0) return w.finish();
  const std::size_t bucket = bucket_length(d, bucket_param);
  const std::size_t buckets = (d - 1) / bucket + 1;
  const std::size_t parts = parallel::part_count(threads, d, buckets);
  const auto range = [&](std::size_t q) {
    return std::pair{parallel::first_bucket(q, parts, buckets),
                     parallel::first_bucket(q + 1, parts, buckets)};
  };
  const auto max_bits = [&](std::size_t q) -> std::uint64_t {
    const auto [b0, b1] = range(q);  // a 32-bit scale per bucket and 1 bit per element
    return (b1 - b0) * kScaleBits + (std::min(d, b1 * bucket) - b0 * bucket);
  };
  // The fused kernel writes whole words without BitWriter's bounds checks: only into a buffer
  // known to hold the largest payload (a smaller one takes the checked path, which throws).
  if (path == KernelPath::kFast && out.size() >= sign_payload_max_bytes(d, bucket_param)) {
    if (parts == 1) {
      DirectBits direct(out.data());
      encode_direct(v, 0, d, bucket, direct);
      return direct.finish();
    }
    // Each part into its own buffer, then appended: the same bits as one part.
    parallel::encode_parts(parts, w, max_bits, [&](std::size_t q, BitWriter& pw) {
      const auto [b0, b1] = range(q);
      std::vector<std::byte> buf((max_bits(q) + 7) / 8);
      DirectBits direct(buf.data());
      encode_direct(v, b0 * bucket, std::min(d, b1 * bucket), bucket, direct);
      const std::uint64_t bits = direct.position();
      direct.finish();
      pw.put_stream(buf, bits);
    });
    return w.finish();
  }
  const auto encode_part = [&](std::size_t q, BitWriter& pw) {
    const auto [b0, b1] = range(q);
    for (std::size_t first = b0 * bucket; first < std::min(d, b1 * bucket); first += bucket) {
      const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
      const float scale = sign_scale(u);
      if (!std::isfinite(scale)) require_finite(v, kName);
      pw.put(std::bit_cast<std::uint32_t>(scale), kScaleBits);
      if (scale != 0.0f) sign_encode_bucket(u, pw, path);
    }
  };
  if (parts == 1) {
    encode_part(0, w);
  } else {
    parallel::encode_parts(parts, w, max_bits, encode_part);
  }
  return w.finish();
}

void sign_decode_payload(std::span<const std::byte> payload, std::uint32_t bucket,
                         std::span<float> out, DecodeMode mode, KernelPath path) {
  BitReader r(payload);
  if (!out.empty()) decode_buckets(r, bucket_length(out.size(), bucket), out, 0, mode, path);
  const std::uint64_t left = r.remaining();
  if (left >= 8 || r.get(static_cast<unsigned>(left)) != 0) {
    corrupt("payload of " + std::to_string(payload.size()) + " bytes has " + std::to_string(left) +
            " bits after the last bucket (at most 7 zero padding bits allowed)");
  }
}

std::string SignCodec::spec() const {
  return std::string(kName) + ":bucket=" + std::to_string(bucket_) + threads_spec_suffix(threads_);
}

std::size_t SignCodec::max_encoded_bytes(std::size_t d) const {
  return kHeaderBytes + kParamsBytes + sign_payload_max_bytes(d, bucket_);
}

std::size_t SignCodec::encode_into(std::span<const float> v, const EncodeContext& /*ctx*/,
                                   std::span<std::byte> out) const {
  MessageWriter msg(out, id(), v.size());
  write_params(msg.params());
  return msg.finish(
      sign_encode_payload(v, bucket_, msg.payload_area(), KernelPath::kFast, threads_));
}

void SignCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode) const {
  sign_decode_payload(payload, bucket_, out, mode);
}

void SignCodec::decode_payload_parallel(std::span<const std::byte> payload, std::span<float> out,
                                        DecodeMode mode, unsigned threads) const {
  const std::size_t d = out.size();
  const std::size_t bucket = d == 0 ? 0 : bucket_length(d, bucket_);
  const auto decode_part = [&](BitReader& r, std::size_t first, std::size_t last) {
    decode_buckets(r, bucket, out.subspan(first, last - first), first, mode, KernelPath::kFast);
  };
  const bool split =
      d > 0 && (bucket == d ? decode_one_bucket_parts(payload, out, mode, threads)
                            : parallel::decode_bucket_parts(
                                  payload, {.d = d, .bucket = bucket, .field_bits = 1}, threads,
                                  decode_part));
  if (!split) decode_payload(payload, out, mode);
}

unsigned SignCodec::max_decode_threads(std::size_t d, unsigned threads) const {
  if (d == 0) return 1;
  const std::size_t bucket = bucket_length(d, bucket_);
  const std::size_t parts =
      bucket == d ? parallel::part_count(threads, d, chunk_count(d))
                  : parallel::bucket_parts({.d = d, .bucket = bucket, .field_bits = 1}, threads);
  return static_cast<unsigned>(parts);
}

void SignCodec::write_params(ParamWriter& w) const { w.put_u32(bucket_); }

std::unique_ptr<Codec> SignCodec::from_spec(Spec& spec) {
  const std::uint64_t bucket = spec.get_uint("bucket", 0);
  if (bucket > std::numeric_limits<std::uint32_t>::max()) {
    throw InvalidArgument(spec.name() + ": bucket must be in [0, 2^32 - 1] (0 = whole vector), " +
                          "got " + std::to_string(bucket));
  }
  return std::make_unique<SignCodec>(static_cast<std::uint32_t>(bucket), parse_threads_param(spec));
}

std::unique_ptr<Codec> SignCodec::from_params(ParamReader& params) {
  return std::make_unique<SignCodec>(params.get_u32());
}

double sign_abs_sum(std::span<const float> u) { return sign_abs_sum(u, KernelPath::kFast); }

void sign_encode_bucket(std::span<const float> u, BitWriter& w) {
  sign_encode_bucket(u, w, KernelPath::kFast);
}

void sign_decode_bucket(BitReader& r, float scale, std::span<float> out, DecodeMode mode) {
  sign_decode_bucket(r, scale, out, mode, KernelPath::kFast);
}

std::size_t sign_encode_payload(std::span<const float> v, std::uint32_t bucket,
                                std::span<std::byte> out, unsigned threads) {
  return sign_encode_payload(v, bucket, out, KernelPath::kFast, threads);
}

void sign_decode_payload(std::span<const std::byte> payload, std::uint32_t bucket,
                         std::span<float> out, DecodeMode mode) {
  sign_decode_payload(payload, bucket, out, mode, KernelPath::kFast);
}

}  // namespace thinwire::codec
