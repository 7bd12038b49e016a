#include "thinwire/codec/terngrad.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "kernel_path.hpp"
#include "kernels/decode.hpp"
#include "parallel.hpp"
#include "parallel_decode.hpp"
#include "qsgd_kernels.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {
namespace {

constexpr std::string_view kName = "terngrad";
using kernels::kScaleBits;
constexpr std::uint64_t kCodeZero = 0;
constexpr std::uint64_t kCodePlus = 1;
constexpr std::uint64_t kCodeMinus = 2;

[[noreturn]] void corrupt(const std::string& what) {
  throw CorruptMessage(std::string(kName) + ": " + what);
}

std::size_t bucket_length(std::size_t d, std::uint32_t bucket) noexcept {
  return bucket == 0 || bucket > d ? d : static_cast<std::size_t>(bucket);
}

template <bool kOverwrite>
void decode_bucket_reference(BitReader& r, float scale, std::span<float> u, bool& bad) {
  for (float& dst : u) {
    const std::uint64_t code = r.get(2);
    bad |= code > kCodeMinus;
    const float x = code == kCodePlus ? scale : (code == kCodeMinus ? -scale : 0.0f);
    if constexpr (kOverwrite) {
      dst = x;
    } else {
      dst += x;
    }
  }
}

// 1/scale in fp32 when it fits with room to spare (else the double branch, for subnormal scales).
bool terngrad_float_inverse(float scale) noexcept {
  return 1.0 / static_cast<double>(scale) <= 0x1.0p100;
}

// The multi-bucket decoder (kernels/decode.hpp); out and base as in decode_buckets. Returns the
// index in out where the per-bucket loop goes on: out.size(), or the first of a bucket the kernel
// leaves to it (an invalid scale, which that loop reports, or the stream's end).
template <bool kOverwrite>
std::size_t decode_runs(BitReader& r, std::size_t bucket, std::span<float> out, std::size_t base) {
  const std::size_t d = out.size();
  // Odd buckets end inside a byte and would stop the kernel at every bucket: those stay below.
  if (bucket % 4 != 0 && bucket < d) return 0;
  kernels::PackedCursor c;
  const kernels::PackedStop stop =
      kernels::decode_packed_stream(r, {d, bucket, 2, 0}, c, out.data(), kOverwrite);
  if (stop == kernels::PackedStop::kBadField) {
    corrupt("the bucket starting at element " + std::to_string(base + c.first) +
            " holds the invalid 2-bit code 3");
  }
  return stop == kernels::PackedStop::kDone ? d : c.next;
}

// Decodes the buckets of out, which is elements [base, base + out.size()) of the vector: whole
// buckets of `bucket` elements from base (a bucket boundary) on, the last one possibly shorter.
// base is 0 for the whole payload and a part's first element in a multi-threaded decode (errors
// name elements of the whole vector either way).
template <bool kOverwrite>
void decode_buckets(BitReader& r, std::size_t bucket, std::span<float> out, std::size_t base,
                    KernelPath path) {
  const std::size_t d = out.size();
  const std::size_t start =
      path == KernelPath::kFast ? decode_runs<kOverwrite>(r, bucket, out, base) : 0;
  for (std::size_t at = start; at < d; at += bucket) {
    const std::span<float> u = out.subspan(at, std::min(bucket, d - at));
    const std::size_t first = base + at;
    const float scale = kernels::read_bucket_scale(r, first, kName);
    if (scale == 0.0f) {
      if constexpr (kOverwrite) std::fill(u.begin(), u.end(), 0.0f);
      continue;
    }
    bool bad = false;
    if (path == KernelPath::kFast) {
      // Whole bytes (4 codes each) straight to values, then the last codes as fields.
      std::uint8_t bytes[kernels::kQsgdChunk];
      std::size_t off = 0;
      while (u.size() - off >= 4) {
        const std::size_t nb = std::min(kernels::kQsgdChunk, (u.size() - off) / 4);
        kernels::get_bytes(r, bytes, nb);
        bad |= kernels::terngrad_values_bytes(bytes, nb, scale, u.data() + off, kOverwrite);
        off += 4 * nb;
      }
      if (off < u.size()) {
        std::uint32_t fields[3];
        kernels::get_fields(r, fields, u.size() - off, 2);
        bad |= kernels::terngrad_values(fields, u.size() - off, scale, u.data() + off, kOverwrite);
      }
    } else {
      decode_bucket_reference<kOverwrite>(r, scale, u, bad);
    }
    if (bad) {
      corrupt("the bucket starting at element " + std::to_string(first) +
              " holds the invalid 2-bit code 3");
    }
  }
}

}  // namespace

float terngrad_scale(std::span<const float> u, double clip) {
  const float m = kernels::max_abs(u.data(), u.size());
  if (clip == 0.0 || u.empty()) return m;
  double sum = 0.0;
  for (float x : u) sum += static_cast<double>(x) * static_cast<double>(x);
  const double threshold = clip * std::sqrt(sum / static_cast<double>(u.size()));
  // min(max|u_i|, c·σ) = max_i min(|u_i|, c·σ); the float result is what the decoder sees, and
  // the encoder clips against it, so every probability |u_i|/s_t stays in [0, 1].
  return threshold < static_cast<double>(m) ? static_cast<float>(threshold) : m;
}

namespace {

void encode_bucket_reference(std::span<const float> u, std::size_t first, float scale,
                             const RoundingKey& key, BitWriter& w) {
  // b_i ~ Bernoulli(min(|u_i|, s_t)/s_t) from the element's 24 rounding bits (counter = element
  // index): the probability is computed in fp32 (as kernels::terngrad_fields does) when 1/s_t
  // fits, and rounded up to a multiple of 2^-24 by round_up24.
  const double inv = 1.0 / static_cast<double>(scale);
  const bool use_float = terngrad_float_inverse(scale);
  const auto inv_f = static_cast<float>(std::min(inv, 0x1.0p100));
  RoundingCursor rounding(key);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const std::uint32_t r = rounding.bits24(first + i);
    const float m = std::min(std::fabs(u[i]), scale);
    const bool keep = use_float ? round_up24(r, m * inv_f * 0x1.0p24f) != 0
                                : round_up24(r, static_cast<double>(m) * inv * 0x1.0p24) != 0;
    w.put(keep ? (u[i] < 0.0f ? kCodeMinus : kCodePlus) : kCodeZero, 2);
  }
}

// The fast path of one bucket with 1/scale in fp32: the fused packing kernel from the first
// element on a 16-element rounding group where the CPU has it, the field kernel elsewhere.
void encode_bucket_fast(std::span<const float> u, std::size_t first, float scale,
                        const RoundingKey& key, BitWriter& w) {
  const auto inv = static_cast<float>(1.0 / static_cast<double>(scale));
  std::uint32_t fields[kernels::kQsgdChunk];
  const auto put_fields = [&](std::size_t off, std::size_t n) {
    kernels::terngrad_fields(u.data() + off, n, first + off, scale, inv, key, fields);
    kernels::put_fields(w, fields, n, 2);
  };
  std::size_t off = 0;
  if (kernels::has_fused_pack()) {
    off = std::min(u.size(), (16 - first % 16) % 16);
    if (off > 0) put_fields(0, off);
    alignas(64) std::uint64_t words[kernels::kQsgdChunk / 32];
    while (u.size() - off >= 16) {
      const std::size_t n = std::min(kernels::kQsgdChunk, (u.size() - off) / 16 * 16);
      kernels::terngrad_pack(u.data() + off, n, first + off, scale, inv, key,
                             reinterpret_cast<std::uint8_t*>(words));
      w.put_words(words, n / 32);
      if (n % 32 != 0) w.put(words[n / 32], 32);
      off += n;
    }
  }
  for (; off < u.size(); off += kernels::kQsgdChunk) {
    put_fields(off, std::min(kernels::kQsgdChunk, u.size() - off));
  }
}

}  // namespace

void terngrad_encode_bucket(std::span<const float> u, std::size_t first, float scale, RngKey key,
                            BitWriter& w) {
  encode_bucket_reference(u, first, scale, RoundingKey(key), w);
}

namespace {

void encode_buckets(std::span<const float> v, const TernGradParams& p, std::size_t bucket,
                    std::size_t b0, std::size_t b1, RngKey rng, BitWriter& w, KernelPath path) {
  const RoundingKey key(rng);
  const std::size_t d = v.size();
  const auto encode_one = [&](std::size_t first) {
    const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
    const float scale = terngrad_scale(u, p.clip);
    // Without clipping the scale is the bit-pattern maximum, an infinity or NaN pattern iff the
    // bucket holds one (TernGradCodec::encode_into relies on this instead of a separate pass).
    if (std::bit_cast<std::uint32_t>(scale) >= 0x7F800000U) require_finite(v, kName);
    w.put(std::bit_cast<std::uint32_t>(scale), kScaleBits);
    if (scale == 0.0f) return;
    if (path == KernelPath::kReference || !terngrad_float_inverse(scale)) {
      encode_bucket_reference(u, first, scale, key, w);
    } else {
      encode_bucket_fast(u, first, scale, key, w);
    }
  };
  // Runs of whole buckets straight into the output (kernels::terngrad_pack_buckets) without
  // clipping, when buckets are whole 16-element rounding groups.
  const bool runs =
      path == KernelPath::kFast && p.clip == 0.0 && bucket % 16 == 0 && kernels::has_fused_pack();
  kernels::encode_in_runs(
      w, b0 * bucket, std::min(d, b1 * bucket), bucket, 4 + bucket / 4, runs,
      [&](std::size_t first, std::size_t whole, std::uint8_t* dst) {
        return kernels::terngrad_pack_buckets(v.data() + first, whole, bucket, first, key, dst);
      },
      encode_one);
}

}  // namespace

void terngrad_encode_payload(std::span<const float> v, const TernGradParams& p, RngKey key,
                             BitWriter& w, KernelPath path, unsigned threads) {
  const std::size_t d = v.size();
  if (d == 0) return;
  const std::size_t bucket = bucket_length(d, p.bucket);
  const std::size_t buckets = (d - 1) / bucket + 1;
  const std::size_t parts = parallel::part_count(threads, d, buckets);
  if (parts == 1) return encode_buckets(v, p, bucket, 0, buckets, key, w, path);
  const auto range = [&](std::size_t q) {
    return std::pair{parallel::first_bucket(q, parts, buckets),
                     parallel::first_bucket(q + 1, parts, buckets)};
  };
  parallel::encode_parts(
      parts, w,
      [&](std::size_t q) -> std::uint64_t {
        // A 32-bit scale per bucket and 2 bits per element.
        const auto [b0, b1] = range(q);
        return (b1 - b0) * kScaleBits + 2 * (std::min(d, b1 * bucket) - b0 * bucket);
      },
      [&](std::size_t q, BitWriter& pw) {
        const auto [b0, b1] = range(q);
        encode_buckets(v, p, bucket, b0, b1, key, pw, path);
      });
}

namespace {

void decode_range(BitReader& r, std::size_t bucket, std::span<float> out, std::size_t base,
                  DecodeMode mode, KernelPath path) {
  if (mode == DecodeMode::kOverwrite) {
    decode_buckets<true>(r, bucket, out, base, path);
  } else {
    decode_buckets<false>(r, bucket, out, base, path);
  }
}

// The payload's shape for the multi-threaded decoder (parallel_decode.hpp): 2-bit codes.
parallel::BucketLayout payload_layout(std::size_t d, std::uint32_t bucket) noexcept {
  return {.d = d, .bucket = bucket_length(d, bucket), .field_bits = 2};
}

}  // namespace

void terngrad_decode_payload(BitReader& r, std::uint32_t bucket, std::span<float> out,
                             DecodeMode mode, KernelPath path) {
  if (out.empty()) return;
  decode_range(r, bucket_length(out.size(), bucket), out, 0, mode, path);
}

double terngrad_variance(std::span<const float> v, const TernGradParams& p) {
  const std::size_t d = v.size();
  if (d == 0) return 0.0;
  const std::size_t bucket = bucket_length(d, p.bucket);
  double total = 0.0;
  for (std::size_t first = 0; first < d; first += bucket) {
    const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
    const float scale = terngrad_scale(u, p.clip);
    // Var of s_t·b_i with P(b_i) = a_i/s_t is a_i·s_t − a_i² (a_i the clipped magnitude).
    for (float x : u) {
      const double a = std::min(std::fabs(x), scale);
      total += a * (static_cast<double>(scale) - a);
    }
  }
  return total;
}

TernGradCodec::TernGradCodec(const TernGradParams& params, unsigned threads)
    : params_(params), threads_(threads) {
  if (!std::isfinite(params_.clip) || params_.clip < 0.0) {
    throw InvalidArgument("terngrad: clip must be a finite number >= 0 (0 = off), got " +
                          format_shortest(params_.clip));
  }
  params_.clip = params_.clip == 0.0 ? 0.0 : params_.clip;  // no -0 in specs
}

std::string TernGradCodec::spec() const {
  return std::string(kName) + ":bucket=" + std::to_string(params_.bucket) +
         ",clip=" + format_shortest(params_.clip) + threads_spec_suffix(threads_);
}

std::size_t TernGradCodec::max_encoded_bytes(std::size_t d) const {
  std::uint64_t bits = 0;
  if (d > 0) {
    const std::uint64_t bucket = bucket_length(d, params_.bucket);
    const std::uint64_t buckets = (d + bucket - 1) / bucket;
    bits = buckets * kScaleBits + 2 * std::uint64_t{d};
  }
  return kHeaderBytes + kParamsBytes + static_cast<std::size_t>((bits + 7) / 8);
}

std::size_t TernGradCodec::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                       std::span<std::byte> out) const {
  // Without clipping, the per-bucket maximum pass detects non-finite input (saves a pass).
  if (params_.clip != 0.0) require_finite(v, kName);
  MessageWriter msg(out, id(), v.size());
  write_params(msg.params());
  BitWriter w(msg.payload_area());
  terngrad_encode_payload(v, params_, ctx.key(RngPurpose::kQuantize), w, KernelPath::kFast,
                          threads_);
  return msg.finish(w.finish());
}

void TernGradCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                                   DecodeMode mode) const {
  BitReader r(payload);
  terngrad_decode_payload(r, params_.bucket, out, mode);
  const std::uint64_t left = r.remaining();
  if (left >= 8 || r.get(static_cast<unsigned>(left)) != 0) {
    corrupt("payload of " + std::to_string(payload.size()) + " bytes has " + std::to_string(left) +
            " bits after the last bucket (at most 7 zero padding bits allowed)");
  }
}

void TernGradCodec::decode_payload_parallel(std::span<const std::byte> payload,
                                            std::span<float> out, DecodeMode mode,
                                            unsigned threads) const {
  const std::size_t d = out.size();
  const bool split =
      d > 0 && parallel::decode_bucket_parts(
                   payload, payload_layout(d, params_.bucket), threads,
                   [&](BitReader& r, std::size_t first, std::size_t last) {
                     decode_range(r, bucket_length(d, params_.bucket),
                                  out.subspan(first, last - first), first, mode, KernelPath::kFast);
                   });
  if (!split) decode_payload(payload, out, mode);
}

unsigned TernGradCodec::max_decode_threads(std::size_t d, unsigned threads) const {
  return static_cast<unsigned>(parallel::bucket_parts(payload_layout(d, params_.bucket), threads));
}

void TernGradCodec::write_params(ParamWriter& w) const {
  w.put_u32(params_.bucket);
  w.put_f64(params_.clip);
}

std::unique_ptr<Codec> TernGradCodec::at_level(const Level& level) const {
  if (!(level.value >= 0 && level.value <= std::numeric_limits<std::uint32_t>::max()) ||
      level.value != std::floor(level.value)) {
    throw InvalidArgument("terngrad: bucket must be an integer in [0, 2^32 - 1], got " +
                          std::to_string(level.value));
  }
  TernGradParams p = params_;
  p.bucket = static_cast<std::uint32_t>(level.value);
  return std::make_unique<TernGradCodec>(p, threads_);
}

std::unique_ptr<Codec> TernGradCodec::from_spec(Spec& spec) {
  TernGradParams p;
  const std::uint64_t bucket = spec.get_uint("bucket", p.bucket);
  if (bucket > std::numeric_limits<std::uint32_t>::max()) {
    throw InvalidArgument(spec.name() + ": bucket must be in [0, 2^32 - 1] (0 = whole vector), " +
                          "got " + std::to_string(bucket));
  }
  p.bucket = static_cast<std::uint32_t>(bucket);
  p.clip = spec.get_double("clip", p.clip);
  return std::make_unique<TernGradCodec>(p, parse_threads_param(spec));
}

std::unique_ptr<Codec> TernGradCodec::from_params(ParamReader& params) {
  TernGradParams p;
  p.bucket = params.get_u32();
  p.clip = params.get_f64();
  if (!std::isfinite(p.clip) || std::signbit(p.clip)) {
    corrupt("message has invalid clip " + format_shortest(p.clip));
  }
  return std::make_unique<TernGradCodec>(p);
}

void terngrad_encode_payload(std::span<const float> v, const TernGradParams& p, RngKey key,
                             BitWriter& w, unsigned threads) {
  terngrad_encode_payload(v, p, key, w, KernelPath::kFast, threads);
}

void terngrad_decode_payload(BitReader& r, std::uint32_t bucket, std::span<float> out,
                             DecodeMode mode) {
  terngrad_decode_payload(r, bucket, out, mode, KernelPath::kFast);
}

}  // namespace thinwire::codec
