#include "thinwire/codec/sign.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "parallel.hpp"
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

template <bool kOverwrite>
void decode_all(BitReader& r, std::uint32_t bucket_param, std::span<float> out) {
  const std::size_t d = out.size();
  if (d == 0) return;
  const std::size_t bucket = bucket_length(d, bucket_param);
  for (std::size_t first = 0; first < d; first += bucket) {
    const std::span<float> u = out.subspan(first, std::min(bucket, d - first));
    const float scale = kernels::read_bucket_scale(r, first, kName);
    if (scale == 0.0f) {
      if constexpr (kOverwrite) std::fill(u.begin(), u.end(), 0.0f);
      continue;
    }
    sign_decode_bucket(r, scale, u, kOverwrite ? DecodeMode::kOverwrite : DecodeMode::kAccumulate);
  }
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

std::string SignCodec::spec() const {
  return std::string(kName) + ":bucket=" + std::to_string(bucket_) + threads_spec_suffix(threads_);
}

std::size_t SignCodec::max_encoded_bytes(std::size_t d) const {
  std::uint64_t bits = 0;
  if (d > 0) {
    const std::uint64_t bucket = bucket_length(d, bucket_);
    bits = (d + bucket - 1) / bucket * kScaleBits + std::uint64_t{d};
  }
  return kHeaderBytes + kParamsBytes + static_cast<std::size_t>((bits + 7) / 8);
}

std::size_t SignCodec::encode_into(std::span<const float> v, const EncodeContext& /*ctx*/,
                                   std::span<std::byte> out) const {
  // No separate finiteness pass: the scale is finite iff its bucket is (a double sum of |finite|
  // floats cannot overflow), so a non-finite scale sends us to require_finite for the error.
  MessageWriter msg(out, id(), v.size());
  write_params(msg.params());
  BitWriter w(msg.payload_area());
  const std::size_t d = v.size();
  if (d == 0) return msg.finish(w.finish());
  const std::size_t bucket = bucket_length(d, bucket_);
  const std::size_t buckets = (d - 1) / bucket + 1;
  const std::size_t parts = parallel::part_count(threads_, d, buckets);
  const auto range = [&](std::size_t q) {
    return std::pair{parallel::first_bucket(q, parts, buckets),
                     parallel::first_bucket(q + 1, parts, buckets)};
  };
  const auto encode_part = [&](std::size_t q, BitWriter& pw) {
    const auto [b0, b1] = range(q);
    for (std::size_t first = b0 * bucket; first < std::min(d, b1 * bucket); first += bucket) {
      const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
      const float scale = sign_scale(u);
      if (!std::isfinite(scale)) require_finite(v, kName);
      pw.put(std::bit_cast<std::uint32_t>(scale), kScaleBits);
      if (scale != 0.0f) sign_encode_bucket(u, pw);
    }
  };
  if (parts == 1) {
    encode_part(0, w);
  } else {
    parallel::encode_parts(
        parts, w,
        [&](std::size_t q) -> std::uint64_t {
          const auto [b0, b1] = range(q);  // a 32-bit scale per bucket and 1 bit per element
          return (b1 - b0) * kScaleBits + (std::min(d, b1 * bucket) - b0 * bucket);
        },
        encode_part);
  }
  return msg.finish(w.finish());
}

void SignCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode) const {
  BitReader r(payload);
  if (mode == DecodeMode::kOverwrite) {
    decode_all<true>(r, bucket_, out);
  } else {
    decode_all<false>(r, bucket_, out);
  }
  const std::uint64_t left = r.remaining();
  if (left >= 8 || r.get(static_cast<unsigned>(left)) != 0) {
    corrupt("payload of " + std::to_string(payload.size()) + " bytes has " + std::to_string(left) +
            " bits after the last bucket (at most 7 zero padding bits allowed)");
  }
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

}  // namespace thinwire::codec
