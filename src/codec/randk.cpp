#include "thinwire/codec/randk.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>

#include "sparse_coding.hpp"

namespace thinwire::codec {
namespace {

constexpr std::string_view kName = "randk";

// An open-addressing set of indices for Floyd's algorithm: capacity a power of two >= 2k, so the
// load factor stays <= 1/2 and a probe sequence is O(1) expected.
class IndexSet {
 public:
  explicit IndexSet(std::size_t k)
      : slots_(std::max<std::size_t>(16, std::bit_ceil(2 * k)), kEmpty),
        shift_(64 - static_cast<unsigned>(std::countr_zero(slots_.size()))) {}

  // Inserts x; returns false if it was already present.
  bool insert(std::uint32_t x) noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t s = static_cast<std::size_t>((x * kGolden64) >> shift_);; s = (s + 1) & mask) {
      if (slots_[s] == x) return false;
      if (slots_[s] == kEmpty) {
        slots_[s] = x;
        return true;
      }
    }
  }

 private:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFU;  // never an index (d <= 2^32 - 1)
  std::vector<std::uint32_t> slots_;
  unsigned shift_;
};

}  // namespace

void sample_without_replacement(RngKey key, std::size_t d, std::size_t k,
                                std::vector<std::uint32_t>& out) {
  sparse::require_indexable(d, kName);
  k = std::min(k, d);
  out.clear();
  if (k == d) {
    out.resize(d);
    std::iota(out.begin(), out.end(), std::uint32_t{0});
    return;
  }
  if (k == 0) return;
  out.reserve(k);
  if (k > d / 8) {
    // Selection sampling: element i is taken with probability (still needed)/(still left),
    // which makes every k-subset equally likely and yields the indices in order.
    std::size_t need = k;
    for (std::size_t i = 0; need > 0; ++i) {
      if (key.below(i, d - i) < need) {
        out.push_back(static_cast<std::uint32_t>(i));
        --need;
      }
    }
    return;
  }
  // Floyd's algorithm: for j = d-k .. d-1 draw t uniform in [0, j] and take t, or j if t was
  // already taken; every k-subset is equally likely and only k draws are needed.
  IndexSet taken(k);
  RngStream rng(key);
  for (std::size_t j = d - k; j < d; ++j) {
    const auto t = static_cast<std::uint32_t>(rng.next_below(j + 1));
    const std::uint32_t pick = taken.insert(t) ? t : static_cast<std::uint32_t>(j);
    if (pick != t) taken.insert(pick);
    out.push_back(pick);
  }
  std::sort(out.begin(), out.end());
}

RandKCodec::RandKCodec(double k, std::optional<std::uint64_t> shared_seed, std::uint64_t iteration)
    : k_(k), shared_seed_(shared_seed), iteration_(iteration) {
  if (std::string problem = sparse::count_param_problem(k); !problem.empty()) {
    throw InvalidArgument("randk: k " + problem);
  }
}

std::size_t RandKCodec::kept(std::size_t d) const noexcept { return sparse::kept_count(k_, d); }

double RandKCodec::scale(std::size_t d) const noexcept {
  const std::size_t k = kept(d);
  return k == 0 ? 1.0 : static_cast<double>(d) / static_cast<double>(k);
}

RngKey RandKCodec::shared_key(std::uint64_t iteration) const noexcept {
  return RngKey::make(*shared_seed_, 0, iteration, RngPurpose::kSharedIndex);
}

void RandKCodec::indices(std::size_t d, const EncodeContext& ctx,
                         std::vector<std::uint32_t>& out) const {
  const RngKey key = shared_seed_ ? shared_key(ctx.iteration) : ctx.key(RngPurpose::kSparsify);
  sample_without_replacement(key, d, kept(d), out);
}

std::string RandKCodec::spec() const {
  std::string s = "randk:k=" + sparse::format_number(k_);
  if (shared_seed_) s += ",shared_seed=" + std::to_string(*shared_seed_);
  return s;
}

std::size_t RandKCodec::max_encoded_bytes(std::size_t d) const {
  const std::size_t k = kept(d);
  const std::size_t params = 8 + 1 + (shared_seed_ ? 16 : 0);
  const std::uint64_t index_bits = shared_seed_ ? 0 : sparse::index_bits_bound(false, k, d);
  return sparse::message_bytes(params, index_bits + 32 * std::uint64_t{k});
}

std::size_t RandKCodec::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                    std::span<std::byte> out) const {
  require_finite(v, kName);
  const std::size_t d = v.size();
  std::vector<std::uint32_t> kept_indices;
  indices(d, ctx, kept_indices);  // also rejects d >= 2^32

  MessageWriter w(out, id(), d);
  write_params_for(w.params(), ctx.iteration);
  BitWriter bits(w.payload_area());
  if (!shared_seed_) {
    sparse::IndexWriter index_writer(/*fixed_width=*/false, d);
    for (const std::uint32_t i : kept_indices) index_writer.put(bits, i);
  }
  const double factor = scale(d);
  for (const std::uint32_t i : kept_indices) {
    if (std::isinf(static_cast<float>(static_cast<double>(v[i]) * factor))) {
      throw InvalidArgument("randk: element " + std::to_string(i) + " (" + std::to_string(v[i]) +
                            ") scaled by d/k = " + sparse::format_number(factor) +
                            " exceeds the fp32 range");
    }
    sparse::put_f32(bits, v[i]);
  }
  return w.finish(bits.finish());
}

void RandKCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                                DecodeMode mode) const {
  const std::size_t d = out.size();
  if (d > sparse::kMaxElements) {
    throw CorruptMessage("randk: message announces " + std::to_string(d) + " elements (> 2^32-1)");
  }
  const std::size_t k = kept(d);
  BitReader r(payload);
  std::vector<std::uint32_t> kept_indices;
  if (shared_seed_) {
    if (payload.size() != 4 * k) {
      throw CorruptMessage("randk: shared-seed payload of " + std::to_string(payload.size()) +
                           " bytes for " + std::to_string(k) + " values");
    }
    sample_without_replacement(shared_key(iteration_), d, k, kept_indices);
  } else {
    kept_indices.resize(k);
    sparse::IndexReader index_reader(/*fixed_width=*/false, d, kName);
    for (std::size_t j = 0; j < k; ++j) {
      kept_indices[j] = static_cast<std::uint32_t>(index_reader.get(r));
    }
  }
  // Unbiasedness: each index is kept with probability k/d, so the kept value is scaled by d/k.
  const double factor = scale(d);
  std::vector<float> values(k);
  for (float& x : values) {
    x = static_cast<float>(static_cast<double>(sparse::get_finite_f32(r, kName)) * factor);
    if (std::isinf(x)) throw CorruptMessage("randk: scaled value exceeds the fp32 range");
  }
  sparse::finish_payload(r, kName);

  sparse::scatter<std::uint32_t>(kept_indices, values, out, mode);
}

void RandKCodec::write_params(ParamWriter& w) const { write_params_for(w, iteration_); }

void RandKCodec::write_params_for(ParamWriter& w, std::uint64_t iteration) const {
  w.put_f64(k_);
  w.put_u8(shared_seed_ ? 1 : 0);
  if (shared_seed_) {
    w.put_u64(*shared_seed_);
    w.put_u64(iteration);
  }
}

std::unique_ptr<Codec> RandKCodec::from_spec(Spec& spec) {
  const double k = sparse::parse_count_param(spec, kName);
  std::optional<std::uint64_t> shared_seed;
  if (spec.has("shared_seed")) shared_seed = spec.get_uint("shared_seed", 0);
  return std::make_unique<RandKCodec>(k, shared_seed);
}

std::unique_ptr<Codec> RandKCodec::from_params(ParamReader& params) {
  const double k = sparse::read_count_param(params, kName);
  const std::uint8_t shared = params.get_u8();
  if (shared > 1) {
    throw CorruptMessage("randk: shared-seed flag " + std::to_string(shared) + " in message");
  }
  if (shared == 0) return std::make_unique<RandKCodec>(k);
  const std::uint64_t seed = params.get_u64();
  const std::uint64_t iteration = params.get_u64();
  return std::make_unique<RandKCodec>(k, seed, iteration);
}

}  // namespace thinwire::codec
