#include "thinwire/codec/qsgd.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "kernel_path.hpp"
#include "kernels/decode.hpp"
#include "parallel.hpp"
#include "parallel_decode.hpp"
#include "qsgd_elias.hpp"
#include "qsgd_kernels.hpp"

namespace thinwire::codec {

namespace qsgd_detail {

void corrupt(const std::string& what) { throw CorruptMessage("qsgd: " + what); }

}  // namespace qsgd_detail

namespace {

using qsgd_detail::corrupt;
using qsgd_detail::magnitude;
using qsgd_detail::store;

constexpr std::string_view kName = "qsgd";
using kernels::kScaleBits;

// The bucket length for a d-element vector (d > 0).
std::size_t bucket_length(std::size_t d, const QsgdParams& p) noexcept {
  return p.bucket == 0 || p.bucket > d ? d : static_cast<std::size_t>(p.bucket);
}

// Bits of the level field: ⌈log2(s+1)⌉.
unsigned level_width(std::uint32_t s) noexcept { return qsgd_level_bits(s); }

bool sparse_bucket(std::uint64_t b, std::uint32_t s) noexcept { return qsgd_delta_gaps(b, s); }

void check_levels(std::uint32_t s) {
  if (s < 1 || s > kQsgdMaxLevels) {
    throw InvalidArgument("qsgd: levels must be in [1, 2^20], got " + std::to_string(s));
  }
}

// The fp32 scale of a bucket. The 2-norm is accumulated in double (kernels::sum_squares: a fixed
// order on every path, and each square is exact in double, so a fused multiply-add changes
// nothing); a float rounded to nearest from it is still >= every |u_i| (rounding is monotone and
// ‖u‖₂ >= max|u_i|), so r_i <= 1. The squares of finite floats and their sum stay finite in
// double, so a non-finite sum means a non-finite element: require_finite names the first in v,
// the whole vector (the encoder needs no separate finiteness pass).
float l2_scale(double sum, std::size_t first, std::span<const float> v);

float bucket_scale(std::span<const float> u, QsgdParams::Norm norm, std::size_t first,
                   std::span<const float> v) {
  if (norm == QsgdParams::Norm::kMax) {
    float m = 0.0f;
    for (float x : u) m = std::max(m, std::fabs(x));
    return m;
  }
  return l2_scale(kernels::sum_squares(u.data(), u.size()), first, v);
}

// The 2-norm scale of the bucket starting at `first` from its sum of squares (bucket_scale).
float l2_scale(double sum, std::size_t first, std::span<const float> v) {
  if (!std::isfinite(sum)) require_finite(v, kName);
  const double n = std::sqrt(sum);
  if (!(n <= static_cast<double>(std::numeric_limits<float>::max()))) {
    throw InvalidArgument("qsgd: the bucket starting at element " + std::to_string(first) +
                          " has 2-norm " + std::to_string(n) +
                          ", beyond the fp32 range of its scale (use norm=max)");
  }
  return static_cast<float>(n);
}

// 1/step = s/scale. s·r_i is computed in fp32 (the rounding probability then carries a relative
// error of about 2^-23, far below anything a test or a training run can see) whenever s/scale
// fits fp32 with room to spare, and in double otherwise (tiny, subnormal scales).
struct InverseStep {
  double inv_d;
  float inv_f;
  bool use_float;
};

InverseStep inverse_step(float scale, std::uint32_t s) noexcept {
  const double inv = static_cast<double>(s) / static_cast<double>(scale);
  return {inv, static_cast<float>(std::min(inv, 0x1.0p100)), inv <= 0x1.0p100};
}

// Stochastic level of one element: ⌊s·r⌋, plus one with probability s·r − ⌊s·r⌋ (SPEC §2), from
// the element's 24 rounding bits (core/rounding.hpp: the probability is that fraction rounded up
// to a multiple of 2^-24); s·r is clamped to s against the last rounding of the product. The fp32
// branch is what kernels::qsgd_fields computes, operation for operation.
inline std::uint32_t stochastic_level(float x, const InverseStep& inv, std::uint32_t s,
                                      std::uint32_t bits24) noexcept {
  if (inv.use_float) {
    const float sr = std::min(std::fabs(x) * inv.inv_f, static_cast<float>(s));
    const float floor_sr = std::floor(sr);
    return static_cast<std::uint32_t>(floor_sr) + round_up24(bits24, (sr - floor_sr) * 0x1.0p24f);
  }
  const double sr = std::min(static_cast<double>(std::fabs(x)) * inv.inv_d, static_cast<double>(s));
  const double floor_sr = std::floor(sr);
  return static_cast<std::uint32_t>(floor_sr) + round_up24(bits24, (sr - floor_sr) * 0x1.0p24);
}

void encode_bucket_packed(std::span<const float> u, std::size_t first, float scale, std::uint32_t s,
                          const RoundingKey& key, BitWriter& w) {
  const InverseStep inv = inverse_step(scale, s);
  const unsigned width = level_width(s);
  RoundingCursor rounding(key);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const std::uint32_t level = stochastic_level(u[i], inv, s, rounding.bits24(first + i));
    const std::uint64_t negative = (u[i] < 0.0f && level != 0) ? 1 : 0;
    w.put(level | (negative << width), width + 1);
  }
}

// The same bits as encode_bucket_packed, a chunk at a time through the vectorized kernels: the
// fused packing kernel from the first element whose index is a multiple of 16 (its rounding
// groups), the field kernel before and after.
void encode_bucket_packed_fast(std::span<const float> u, std::size_t first, float scale,
                               std::uint32_t s, const RoundingKey& key, BitWriter& w) {
  const InverseStep inv = inverse_step(scale, s);
  if (!inv.use_float) return encode_bucket_packed(u, first, scale, s, key, w);
  const unsigned width = level_width(s);
  std::uint32_t fields[kernels::kQsgdChunk];
  const auto put_fields = [&](std::size_t off, std::size_t n) {
    kernels::qsgd_fields(u.data() + off, n, first + off, inv.inv_f, s, width, key, fields);
    kernels::put_fields(w, fields, n, width + 1);
  };
  std::size_t off = 0;
  if ((width == 1 || width == 3 || width == 7) && kernels::has_fused_pack()) {
    off = std::min(u.size(), (16 - first % 16) % 16);
    if (off > 0) put_fields(0, off);
    // 2, 4 or 8-bit fields: the fused kernel writes packed bytes, handed on 64 bits at a time.
    alignas(64) std::uint64_t words[kernels::kQsgdChunk / 8];
    while (u.size() - off >= 16) {
      const std::size_t n = std::min(kernels::kQsgdChunk, (u.size() - off) / 16 * 16);
      kernels::qsgd_pack(u.data() + off, n, first + off, inv.inv_f, s, width, key,
                         reinterpret_cast<std::uint8_t*>(words));
      const std::size_t bits = n * (width + 1);
      w.put_words(words, bits / 64);
      if (bits % 64 != 0) w.put(words[bits / 64], static_cast<unsigned>(bits % 64));
      off += n;
    }
  }
  for (; off < u.size(); off += kernels::kQsgdChunk) {
    put_fields(off, std::min(kernels::kQsgdChunk, u.size() - off));
  }
}

template <IntegerCode GapCode>
void encode_bucket_elias(std::span<const float> u, std::size_t first, float scale, std::uint32_t s,
                         const RoundingKey& key, BitWriter& w) {
  const InverseStep inv = inverse_step(scale, s);
  RoundingCursor rounding(key);
  std::uint64_t next = 0;  // one past the previous non-zero index
  for (std::size_t i = 0; i < u.size(); ++i) {
    const std::uint32_t level = stochastic_level(u[i], inv, s, rounding.bits24(first + i));
    if (level == 0) continue;
    GapCode::put(w, i + 1 - next);
    w.put_bit(u[i] < 0.0f);
    EliasGamma::put(w, level);
    next = i + 1;
  }
  GapCode::put(w, u.size() + 1 - next);  // terminator: lands exactly on the bucket end
}

// The same bits as encode_bucket_elias<EliasGamma>: levels from the vectorized kernel, then per
// non-zero level one combined write of gap code, sign and level code when they fit 64 bits.
void encode_bucket_elias_gamma_fast(std::span<const float> u, std::size_t first, float inv,
                                    std::uint32_t s, const RoundingKey& key, BitWriter& writer) {
  const unsigned width = level_width(s);
  const std::uint32_t mask = (std::uint32_t{1} << width) - 1;
  std::uint32_t fields[kernels::kQsgdChunk];
  // Non-zero flags, 64 per word; the chunk is a multiple of 64, so only the last word of the last
  // chunk can be partial (its unused bits stay zero).
  static_assert(kernels::kQsgdChunk % 64 == 0);
  std::uint64_t nonzero[kernels::kQsgdChunk / 64];
  std::uint64_t next = 0;  // one past the previous non-zero index
  // One unconditional store per code and no flush branch (core/bit_io.hpp), until the terminator.
  std::optional<BitAppender> appender(std::in_place, writer);
  BitAppender& w = *appender;
  // The per-target kernel codes whole chunks while the buffer has room for their worst case; the
  // loop below the rest (the same bits).
  const std::size_t done = s <= kernels::kEliasKernelMaxLevels
                               ? kernels::qsgd_elias_gamma(u.data(), u.size(), first, inv, s, key,
                                                           next, w.cursor(), w.room())
                               : 0;
  for (std::size_t off = done; off < u.size(); off += kernels::kQsgdChunk) {
    const std::size_t n = std::min(kernels::kQsgdChunk, u.size() - off);
    kernels::qsgd_fields(u.data() + off, n, first + off, inv, s, width, key, fields);
    std::uint8_t bytes[kernels::kQsgdChunk / 8] = {};
    kernels::nonzero_bytes(fields, n / 8, mask, bytes);
    for (std::size_t t = n / 8 * 8; t < n; ++t) {
      bytes[t / 8] = static_cast<std::uint8_t>(bytes[t / 8] | ((fields[t] & mask) != 0) << (t % 8));
    }
    std::memcpy(nonzero, bytes, sizeof bytes);
    for (std::size_t wi = 0; wi < (n + 63) / 64; ++wi) {
      // Walk the set bits: no per-element branch on an (unpredictable) zero level.
      for (std::uint64_t bits = nonzero[wi]; bits != 0; bits &= bits - 1) {
        const std::size_t j = 64 * wi + static_cast<std::size_t>(std::countr_zero(bits));
        const std::uint32_t level = fields[j] & mask;
        const std::uint64_t i = off + j;
        unsigned gap_bits = 0;
        unsigned level_bits = 0;
        const std::uint64_t gap = EliasGamma::word(i + 1 - next, gap_bits);
        const std::uint64_t lev = EliasGamma::word(level, level_bits);
        const std::uint64_t sign = fields[j] >> width;
        if (gap_bits + 1 + level_bits <= 56) {
          w.put(gap | (sign << gap_bits) | (lev << (gap_bits + 1)), gap_bits + 1 + level_bits);
        } else {
          w.put_checked(gap, gap_bits);
          w.put_checked(sign | (lev << 1), 1 + level_bits);
        }
        next = i + 1;
      }
    }
  }
  appender.reset();
  EliasGamma::put(writer, u.size() + 1 - next);  // terminator: lands exactly on the bucket end
}

template <bool kOverwrite>
void decode_bucket_packed(BitReader& r, float scale, std::uint32_t s, std::span<float> out,
                          std::size_t first) {
  const double step = static_cast<double>(scale) / static_cast<double>(s);
  const unsigned width = level_width(s);
  const std::uint64_t mask = (std::uint64_t{1} << width) - 1;
  bool bad = false;
  for (float& dst : out) {
    const std::uint64_t field = r.get(width + 1);
    const std::uint64_t level = field & mask;
    const bool negative = (field >> width) != 0;
    bad |= level > s || (negative && level == 0);
    const float m = magnitude(step, level);
    store<kOverwrite>(dst, negative ? -m : m);
  }
  if (bad) {
    corrupt("the bucket starting at element " + std::to_string(first) +
            " holds a level above s = " + std::to_string(s) + " or a signed zero level");
  }
}

template <bool kOverwrite>
void decode_bucket_packed_fast(BitReader& r, float scale, std::uint32_t s, std::span<float> out,
                               std::size_t first) {
  const double step = static_cast<double>(scale) / static_cast<double>(s);
  const unsigned width = level_width(s);
  std::uint32_t fields[kernels::kQsgdChunk];
  bool bad = false;
  std::size_t done = 0;
  if (8 % (width + 1) == 0) {
    // Fields of 2, 4 or 8 bits: whole bytes straight to values.
    const std::size_t per_byte = 8 / (width + 1);
    std::uint8_t bytes[kernels::kQsgdChunk];
    while (out.size() - done >= per_byte) {
      const std::size_t nb = std::min(kernels::kQsgdChunk, (out.size() - done) / per_byte);
      kernels::get_bytes(r, bytes, nb);
      bad |=
          kernels::qsgd_values_bytes(bytes, nb, width + 1, step, s, out.data() + done, kOverwrite);
      done += nb * per_byte;
    }
  }
  for (std::size_t off = done; off < out.size(); off += kernels::kQsgdChunk) {
    const std::size_t n = std::min(kernels::kQsgdChunk, out.size() - off);
    kernels::get_fields(r, fields, n, width + 1);
    bad |= kernels::qsgd_values(fields, n, step, s, width, out.data() + off, kOverwrite);
  }
  if (bad) {
    corrupt("the bucket starting at element " + std::to_string(first) +
            " holds a level above s = " + std::to_string(s) + " or a signed zero level");
  }
}

template <IntegerCode GapCode, bool kOverwrite>
void decode_bucket_elias(BitReader& r, float scale, std::uint32_t s, std::span<float> out,
                         std::size_t first) {
  const double step = static_cast<double>(scale) / static_cast<double>(s);
  const std::uint64_t b = out.size();
  std::uint64_t next = 0;  // one past the previous non-zero index
  for (;;) {
    const std::uint64_t gap = GapCode::get(r);  // >= 1
    if (gap > b + 1 - next) {
      corrupt("an index gap runs past the end of the bucket starting at element " +
              std::to_string(first));
    }
    const std::uint64_t index = next + gap - 1;  // <= b
    if constexpr (kOverwrite) {
      std::fill(out.begin() + static_cast<std::ptrdiff_t>(next),
                out.begin() + static_cast<std::ptrdiff_t>(index), 0.0f);
    }
    if (index == b) return;
    const bool negative = r.get_bit();
    const std::uint64_t level = EliasGamma::get(r);
    if (level > s) {
      corrupt("level " + std::to_string(level) + " above s = " + std::to_string(s) +
              " at element " + std::to_string(first + index));
    }
    const float m = magnitude(step, level);
    store<kOverwrite>(out[index], negative ? -m : m);
    next = index + 1;
  }
}

// Packed 2, 4 or 8-bit fields through the multi-bucket decoder (kernels/decode.hpp); out and base
// as in decode_buckets. Returns the index in out where the per-bucket
// loop goes on: out.size(), or the first of a bucket the kernel leaves to it (an invalid scale,
// which that loop reports, or the stream's end).
template <bool kOverwrite>
std::size_t decode_packed_runs(BitReader& r, const QsgdParams& p, std::size_t bucket,
                               std::span<float> out, std::size_t base) {
  const std::size_t d = out.size();
  const unsigned fw = level_width(p.levels) + 1;
  // Buckets that end inside a byte would stop the kernel at every bucket: those stay below.
  if ((fw != 2 && fw != 4 && fw != 8) || (bucket * fw % 8 != 0 && bucket < d)) return 0;
  kernels::PackedCursor c;
  const kernels::PackedStop stop =
      kernels::decode_packed_stream(r, {d, bucket, fw, p.levels}, c, out.data(), kOverwrite);
  if (stop == kernels::PackedStop::kBadField) {
    corrupt("the bucket starting at element " + std::to_string(base + c.first) +
            " holds a level above s = " + std::to_string(p.levels) + " or a signed zero level");
  }
  return stop == kernels::PackedStop::kDone ? d : c.next;
}

// Decodes the buckets of out, which is elements [base, base + out.size()) of the vector: whole
// buckets of `bucket` elements from base (a bucket boundary) on, the last one possibly shorter.
// The whole payload is base 0; a part of a multi-threaded decode is a range of buckets, and its
// errors name elements of the whole vector, as the one-thread decoder does.
template <bool kOverwrite>
void decode_buckets(BitReader& r, const QsgdParams& p, std::size_t bucket, std::span<float> out,
                    std::size_t base, KernelPath path) {
  const std::size_t d = out.size();
  const std::size_t start = p.coding == QsgdParams::Coding::kPacked && path == KernelPath::kFast
                                ? decode_packed_runs<kOverwrite>(r, p, bucket, out, base)
                                : 0;
  for (std::size_t at = start; at < d; at += bucket) {
    const std::span<float> u = out.subspan(at, std::min(bucket, d - at));
    const std::size_t first = base + at;
    const float scale = kernels::read_bucket_scale(r, first, kName);
    if (scale == 0.0f) {
      if constexpr (kOverwrite) std::fill(u.begin(), u.end(), 0.0f);
      continue;
    }
    if (p.coding == QsgdParams::Coding::kPacked && path == KernelPath::kFast) {
      decode_bucket_packed_fast<kOverwrite>(r, scale, p.levels, u, first);
    } else if (p.coding == QsgdParams::Coding::kPacked) {
      decode_bucket_packed<kOverwrite>(r, scale, p.levels, u, first);
    } else if (sparse_bucket(u.size(), p.levels)) {
      decode_bucket_elias<EliasDelta, kOverwrite>(r, scale, p.levels, u, first);
    } else if (path == KernelPath::kFast) {
      qsgd_detail::decode_bucket_elias_gamma_fast<kOverwrite>(r, scale, p.levels, u, first);
    } else {
      decode_bucket_elias<EliasGamma, kOverwrite>(r, scale, p.levels, u, first);
    }
  }
}

void decode_range(BitReader& r, const QsgdParams& p, std::size_t bucket, std::span<float> out,
                  std::size_t base, DecodeMode mode, KernelPath path) {
  if (mode == DecodeMode::kOverwrite) {
    decode_buckets<true>(r, p, bucket, out, base, path);
  } else {
    decode_buckets<false>(r, p, bucket, out, base, path);
  }
}

// The packed payload's shape for the multi-threaded decoder (parallel_decode.hpp).
parallel::BucketLayout packed_layout(std::size_t d, const QsgdParams& p) noexcept {
  return {.d = d, .bucket = bucket_length(d, p), .field_bits = level_width(p.levels) + 1};
}

}  // namespace

std::unique_ptr<Codec> QsgdCodec::at_level(const Level& level) const {
  if (!(level.value >= 1 && level.value <= kQsgdMaxLevels) ||
      level.value != std::floor(level.value)) {
    throw InvalidArgument("qsgd: levels must be an integer in [1, 2^20], got " +
                          std::to_string(level.value));
  }
  QsgdParams p = params_;
  p.levels = static_cast<std::uint32_t>(level.value);
  p.bucket = level.second;
  return std::make_unique<QsgdCodec>(p, threads_);
}

QsgdParams parse_qsgd_params(Spec& spec) {
  QsgdParams p;
  const std::uint64_t s = spec.get_uint("s", p.levels);
  if (s < 1 || s > kQsgdMaxLevels) {
    throw InvalidArgument(spec.name() + ": levels must be in [1, 2^20], got " + std::to_string(s));
  }
  p.levels = static_cast<std::uint32_t>(s);
  const std::uint64_t bucket = spec.get_uint("bucket", p.bucket);
  if (bucket > std::numeric_limits<std::uint32_t>::max()) {
    throw InvalidArgument(spec.name() +
                          ": bucket must be in [0, 2^32 - 1] (0 = whole vector), got " +
                          std::to_string(bucket));
  }
  p.bucket = static_cast<std::uint32_t>(bucket);
  p.norm = spec.get_choice("norm", "l2", {"l2", "max"}) == "max" ? QsgdParams::Norm::kMax
                                                                 : QsgdParams::Norm::kL2;
  p.coding = spec.get_choice("coding", "packed", {"packed", "elias"}) == "elias"
                 ? QsgdParams::Coding::kElias
                 : QsgdParams::Coding::kPacked;
  return p;
}

std::string qsgd_params_spec(const QsgdParams& p) {
  return "s=" + std::to_string(p.levels) + ",bucket=" + std::to_string(p.bucket) +
         ",norm=" + (p.norm == QsgdParams::Norm::kMax ? "max" : "l2") +
         ",coding=" + (p.coding == QsgdParams::Coding::kElias ? "elias" : "packed");
}

void write_qsgd_params(ParamWriter& w, const QsgdParams& p) {
  w.put_u32(p.levels);
  w.put_u32(p.bucket);
  w.put_u8(static_cast<std::uint8_t>(p.norm));
  w.put_u8(static_cast<std::uint8_t>(p.coding));
}

QsgdParams read_qsgd_params(ParamReader& r) {
  QsgdParams p;
  p.levels = r.get_u32();
  p.bucket = r.get_u32();
  const std::uint8_t norm = r.get_u8();
  const std::uint8_t coding = r.get_u8();
  if (p.levels < 1 || p.levels > kQsgdMaxLevels) {
    corrupt("message has levels " + std::to_string(p.levels) + ", outside [1, 2^20]");
  }
  if (norm > static_cast<std::uint8_t>(QsgdParams::Norm::kMax)) {
    corrupt("message has unknown norm " + std::to_string(norm));
  }
  if (coding > static_cast<std::uint8_t>(QsgdParams::Coding::kElias)) {
    corrupt("message has unknown coding " + std::to_string(coding));
  }
  p.norm = static_cast<QsgdParams::Norm>(norm);
  p.coding = static_cast<QsgdParams::Coding>(coding);
  return p;
}

// Per bucket of b elements: the 32-bit scale, then
//   packed: b fields of 1 + ⌈log2(s+1)⌉ bits;
//   elias:  n <= b non-zeros cost a sign bit and at most gamma_bits(s) each, plus n + 1 gap codes
//           whose gaps g_j sum to b. Both gamma (2·log2 g + 1 bits) and delta (<= 3·log2 g + 1
//           bits, since 2⌊log2(k+1)⌋ <= 2k for k = ⌊log2 g⌋) are below 3·log2 g + 1, and by
//           Jensen Σ_j log2 g_j <= m·log2(b/m) <= b/(e·ln 2) for any count m, so the gaps take at
//           most (b + 1) + 3b/(e·ln 2) <= (b + 1) + 1.6·b bits.
std::uint64_t qsgd_payload_max_bits(std::size_t d, const QsgdParams& p) {
  check_levels(p.levels);
  if (d == 0) return 0;
  const std::uint64_t bucket = bucket_length(d, p);
  const auto bucket_bits = [&](std::uint64_t b) -> std::uint64_t {
    if (p.coding == QsgdParams::Coding::kPacked)
      return kScaleBits + b * (1 + level_width(p.levels));
    return kScaleBits + (b + 1) + b * (1 + EliasGamma::bits(p.levels)) + (8 * b + 4) / 5;
  };
  const std::uint64_t full = d / bucket;
  const std::uint64_t tail = d % bucket;
  return full * bucket_bits(bucket) + (tail == 0 ? 0 : bucket_bits(tail));
}

std::size_t qsgd_payload_max_bytes(std::size_t d, const QsgdParams& p) {
  return static_cast<std::size_t>((qsgd_payload_max_bits(d, p) + 7) / 8);
}

namespace {

// One bucket of encode_buckets.
void encode_one_bucket(std::span<const float> v, std::size_t first, std::size_t bucket,
                       const QsgdParams& p, const RoundingKey& key, BitWriter& w, KernelPath path) {
  const std::span<const float> u = v.subspan(first, std::min(bucket, v.size() - first));
  const bool fast_max = path == KernelPath::kFast && p.norm == QsgdParams::Norm::kMax;
  const float scale =
      fast_max ? kernels::max_abs(u.data(), u.size()) : bucket_scale(u, p.norm, first, v);
  // The bit-pattern maximum is an infinity or NaN pattern iff the bucket holds one.
  if (fast_max && std::bit_cast<std::uint32_t>(scale) >= 0x7F800000U) require_finite(v, kName);
  w.put(std::bit_cast<std::uint32_t>(scale), kScaleBits);
  if (scale == 0.0f) return;  // a zero bucket sends only its scale
  if (p.coding == QsgdParams::Coding::kPacked && path == KernelPath::kFast) {
    encode_bucket_packed_fast(u, first, scale, p.levels, key, w);
  } else if (p.coding == QsgdParams::Coding::kPacked) {
    encode_bucket_packed(u, first, scale, p.levels, key, w);
  } else if (sparse_bucket(u.size(), p.levels)) {
    encode_bucket_elias<EliasDelta>(u, first, scale, p.levels, key, w);
  } else if (path == KernelPath::kFast && inverse_step(scale, p.levels).use_float) {
    encode_bucket_elias_gamma_fast(u, first, inverse_step(scale, p.levels).inv_f, p.levels, key, w);
  } else {
    encode_bucket_elias<EliasGamma>(u, first, scale, p.levels, key, w);
  }
}

// Appends the payload bits of buckets [b0, b1) of v (bucket length `bucket`) to w.
void encode_buckets(std::span<const float> v, std::size_t bucket, std::size_t b0, std::size_t b1,
                    const QsgdParams& p, RngKey rng, BitWriter& w, KernelPath path) {
  const RoundingKey key(rng);
  const std::size_t d = v.size();
  const std::size_t end = std::min(d, b1 * bucket);
  const unsigned width = level_width(p.levels);
  // Runs of whole buckets in one kernel call, written straight into the output, where the fields
  // are 2, 4 or 8 bits, the scale the maximum, and every bucket a whole number of 16-element
  // rounding groups (so that each starts on one and on a byte boundary).
  const bool runs = path == KernelPath::kFast && p.coding == QsgdParams::Coding::kPacked &&
                    p.norm == QsgdParams::Norm::kMax && (width == 1 || width == 3 || width == 7) &&
                    bucket % 16 == 0 && kernels::has_fused_pack();
  kernels::encode_in_runs(
      w, b0 * bucket, end, bucket, 4 + bucket * (width + 1) / 8, runs,
      [&](std::size_t first, std::size_t whole, std::uint8_t* dst) {
        return kernels::qsgd_pack_buckets(v.data() + first, whole, bucket, first, p.levels, width,
                                          key, dst);
      },
      [&](std::size_t first) { encode_one_bucket(v, first, bucket, p, key, w, path); });
}

}  // namespace

void qsgd_encode_payload(std::span<const float> v, const QsgdParams& p, RngKey key, BitWriter& w,
                         KernelPath path, unsigned threads) {
  check_levels(p.levels);
  const std::size_t d = v.size();
  if (d == 0) return;
  const std::size_t bucket = bucket_length(d, p);
  const std::size_t buckets = (d - 1) / bucket + 1;
  const std::size_t parts = parallel::part_count(threads, d, buckets);
  if (parts == 1) return encode_buckets(v, bucket, 0, buckets, p, key, w, path);
  // Part q: buckets [first_bucket(q), first_bucket(q + 1)); its elements start at a bucket
  // boundary, so qsgd_payload_max_bits of its length bounds its bits.
  const auto part_range = [&](std::size_t q) {
    return std::pair{parallel::first_bucket(q, parts, buckets),
                     parallel::first_bucket(q + 1, parts, buckets)};
  };
  parallel::encode_parts(
      parts, w,
      [&](std::size_t q) {
        const auto [b0, b1] = part_range(q);
        return qsgd_payload_max_bits(std::min(d, b1 * bucket) - b0 * bucket, p);
      },
      [&](std::size_t q, BitWriter& pw) {
        const auto [b0, b1] = part_range(q);
        encode_buckets(v, bucket, b0, b1, p, key, pw, path);
      });
}

void qsgd_decode_payload(BitReader& r, const QsgdParams& p, std::span<float> out, DecodeMode mode,
                         KernelPath path) {
  check_levels(p.levels);
  if (out.empty()) return;
  decode_range(r, p, bucket_length(out.size(), p), out, 0, mode, path);
}

void qsgd_variances(std::span<const float> v, const QsgdParams& p,
                    std::span<const std::uint32_t> levels, std::span<double> out) {
  for (const std::uint32_t s : levels) check_levels(s);
  std::fill(out.begin(), out.end(), 0.0);
  const std::size_t d = v.size();
  if (d == 0) return;
  const std::size_t bucket = bucket_length(d, p);
  const std::size_t n_levels = std::min(levels.size(), out.size());
  // (r − ℓ/s)((ℓ+1)/s − r) = f(1 − f)/s² with f = s·r − ℓ, the rounding probability; summed
  // vectorized in a fixed order (the tuner evaluates this once or twice per decision). Small
  // 2-norm buckets go 64 at a time through the batched kernels (the same sums, fewer calls).
  constexpr std::size_t kBatch = 64;
  if (p.norm == QsgdParams::Norm::kL2 && bucket <= 1024) {
    std::array<double, kBatch> sums{};
    std::array<double, kBatch> inv{};
    std::array<float, kBatch> scale{};
    for (std::size_t first = 0; first < d; first += kBatch * bucket) {
      const std::size_t n = std::min(kBatch * bucket, d - first);
      const std::size_t nb = (n + bucket - 1) / bucket;
      kernels::bucket_sum_squares(v.data() + first, n, bucket, sums.data());
      for (std::size_t k = 0; k < nb; ++k) scale[k] = l2_scale(sums[k], first + k * bucket, v);
      for (std::size_t l = 0; l < n_levels; ++l) {
        const double s = levels[l];
        for (std::size_t k = 0; k < nb; ++k) {
          inv[k] = scale[k] == 0.0f ? 0.0 : s / static_cast<double>(scale[k]);
        }
        kernels::bucket_rounding_variance_sums(v.data() + first, n, bucket, inv.data(), s,
                                               sums.data());
        for (std::size_t k = 0; k < nb; ++k) {
          if (scale[k] == 0.0f) continue;
          const double step = static_cast<double>(scale[k]) / s;
          out[l] += step * step * sums[k];
        }
      }
    }
    return;
  }
  for (std::size_t first = 0; first < d; first += bucket) {
    const std::span<const float> u = v.subspan(first, std::min(bucket, d - first));
    const float scale = bucket_scale(u, p.norm, first, v);
    if (scale == 0.0f) continue;
    for (std::size_t l = 0; l < n_levels; ++l) {
      const double s = levels[l];
      const double sum =
          kernels::rounding_variance_sum(u.data(), u.size(), s / static_cast<double>(scale), s);
      const double step = static_cast<double>(scale) / s;
      out[l] += step * step * sum;
    }
  }
}

double qsgd_variance(std::span<const float> v, const QsgdParams& p) {
  double out = 0.0;
  qsgd_variances(v, p, std::span<const std::uint32_t>(&p.levels, 1), std::span<double>(&out, 1));
  return out;
}

std::string QsgdCodec::spec() const {
  return std::string(kName) + ":" + qsgd_params_spec(params_) + threads_spec_suffix(threads_);
}

std::size_t QsgdCodec::max_encoded_bytes(std::size_t d) const {
  return kHeaderBytes + kQsgdParamsBytes + qsgd_payload_max_bytes(d, params_);
}

std::size_t QsgdCodec::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                   std::span<std::byte> out) const {
  // The encoder's per-bucket scale pass (maximum or sum of squares) also detects non-finite input
  // and then throws require_finite's error, saving a separate pass over memory.
  MessageWriter msg(out, id(), v.size());
  write_params(msg.params());
  BitWriter w(msg.payload_area());
  qsgd_encode_payload(v, params_, ctx.key(RngPurpose::kQuantize), w, KernelPath::kFast, threads_);
  return msg.finish(w.finish());
}

void QsgdCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode) const {
  BitReader r(payload);
  qsgd_decode_payload(r, params_, out, mode);
  // The payload is exactly the bit stream padded with zero bits to a whole byte.
  const std::uint64_t left = r.remaining();
  if (left >= 8 || r.get(static_cast<unsigned>(left)) != 0) {
    corrupt("payload of " + std::to_string(payload.size()) + " bytes has " + std::to_string(left) +
            " bits after the last bucket (at most 7 zero padding bits allowed)");
  }
}

void QsgdCodec::decode_payload_parallel(std::span<const std::byte> payload, std::span<float> out,
                                        DecodeMode mode, unsigned threads) const {
  check_levels(params_.levels);
  const std::size_t d = out.size();
  // Elias-coded buckets have data-dependent lengths that only decoding them finds: one thread.
  const bool split =
      params_.coding == QsgdParams::Coding::kPacked && d > 0 &&
      parallel::decode_bucket_parts(payload, packed_layout(d, params_), threads,
                                    [&](BitReader& r, std::size_t first, std::size_t last) {
                                      decode_range(r, params_, bucket_length(d, params_),
                                                   out.subspan(first, last - first), first, mode,
                                                   KernelPath::kFast);
                                    });
  if (!split) decode_payload(payload, out, mode);
}

unsigned QsgdCodec::max_decode_threads(std::size_t d, unsigned threads) const {
  if (params_.coding != QsgdParams::Coding::kPacked || d == 0) return 1;
  return static_cast<unsigned>(parallel::bucket_parts(packed_layout(d, params_), threads));
}

void QsgdCodec::write_params(ParamWriter& w) const { write_qsgd_params(w, params_); }

std::unique_ptr<Codec> QsgdCodec::from_spec(Spec& spec) {
  const QsgdParams p = parse_qsgd_params(spec);
  return std::make_unique<QsgdCodec>(p, parse_threads_param(spec));
}

std::unique_ptr<Codec> QsgdCodec::from_params(ParamReader& params) {
  return std::make_unique<QsgdCodec>(read_qsgd_params(params));
}

void qsgd_encode_payload(std::span<const float> v, const QsgdParams& p, RngKey key, BitWriter& w,
                         unsigned threads) {
  qsgd_encode_payload(v, p, key, w, KernelPath::kFast, threads);
}

void qsgd_decode_payload(BitReader& r, const QsgdParams& p, std::span<float> out, DecodeMode mode) {
  qsgd_decode_payload(r, p, out, mode, KernelPath::kFast);
}

}  // namespace thinwire::codec
