#include "thinwire/codec/randk.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>

#include "kernels/sparse.hpp"
#include "qsgd_kernels.hpp"
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

// Floyd's algorithm (for j = d-k .. d-1 draw t uniform in [0, j] and take t, or j if t was
// already taken; every k-subset is equally likely and only k draws are needed) with the hash set,
// then a sort: time and memory O(k) whatever d is.
void floyd_hashed(RngKey key, std::size_t d, std::size_t k, std::vector<std::uint32_t>& out) {
  out.reserve(k);
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

// The same draws and decisions on a bitmap of d bits give the same set, and listing the set bits
// in order gives it sorted, with no sort. That costs d/8 bytes and a pass over d/64 words
// against the hash set's O(k log k) sort: it pays unless d/k is very large.
constexpr std::size_t kBitmapMaxRatio = 4096;

[[nodiscard]] bool use_bitmap(std::size_t d, std::size_t k) noexcept {
  return d / kBitmapMaxRatio <= k;
}

// Floyd steps per batch: a batch's draws are computed first, a vector of them at a time
// (kernels::draw_below_batch: each draw is a pure function of its counter), then applied.
constexpr std::size_t kFloydBatch = kernels::kDrawBatch;

// Runs Floyd's algorithm on `bitmap`, ceil(d/64) zeroed words (bit b of word w is index 64w + b).
void floyd_bitmap(RngKey key, std::size_t d, std::size_t k, std::uint64_t* bitmap) noexcept {
  const std::size_t first = d - k;
  for (std::size_t done = 0; done < k; done += kFloydBatch) {
    std::uint32_t draws[kFloydBatch];
    // Bounds first + done + s + 1 <= d < 2^32 for the steps used: the draws are exact.
    kernels::draw_below_batch(key.value, done, first + done + 1, draws);
    const std::size_t n = std::min(kFloydBatch, k - done);
    for (std::size_t s = 0; s < n; ++s) {
      // Take t, or j if t is taken; j itself never is, as every earlier pick is an earlier j or
      // below it.
      const std::uint64_t t = draws[s];
      const std::uint64_t j = first + done + s;
      const std::uint64_t pick = ((bitmap[t >> 6] >> (t & 63)) & 1) != 0 ? j : t;
      bitmap[pick >> 6] |= std::uint64_t{1} << (pick & 63);
    }
  }
}

// Checks that v is finite and gathers the raw values of the kept (ascending) elements into
// `values` (4 bytes each), in one pass over v a chunk at a time, so that every gather finds its
// element in cache; returns their largest magnitude as float bits, or nullopt if v is not
// finite.
std::optional<std::uint32_t> check_and_gather(std::span<const float> v,
                                              std::span<const std::uint32_t> kept,
                                              std::byte* values) noexcept {
  constexpr std::size_t kChunk = 4096;
  bool finite = true;
  std::uint32_t max_magnitude = 0;
  std::size_t j = 0;
  for (std::size_t e0 = 0; e0 < v.size(); e0 += kChunk) {
    const std::size_t e1 = std::min(v.size(), e0 + kChunk);
    finite &= kernels::all_finite(v.data() + e0, e1 - e0);
    for (; j < kept.size() && kept[j] < e1; ++j) {
      const auto raw = std::bit_cast<std::uint32_t>(v[kept[j]]);
      max_magnitude = std::max(max_magnitude, raw & 0x7FFFFFFFU);
      std::memcpy(values + 4 * j, &raw, 4);
    }
  }
  if (!finite) return std::nullopt;
  return max_magnitude;
}

// What one pass over v collects beside the values (kernels::pass_over_bitmap).
using PassResult = kernels::BitmapPass;

// Whether sample_without_replacement(key, d, k) runs Floyd's algorithm on a bitmap.
[[nodiscard]] bool bitmap_case(std::size_t d, std::size_t k) noexcept {
  return k > 0 && k < d && k <= d / 8 && use_bitmap(d, k);
}

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
  if (k > d / 8) {
    // Selection sampling: element i is taken with probability (still needed)/(still left),
    // which makes every k-subset equally likely and yields the indices in order.
    out.reserve(k);
    std::size_t need = k;
    for (std::size_t i = 0; need > 0; ++i) {
      if (key.below(i, d - i) < need) {
        out.push_back(static_cast<std::uint32_t>(i));
        --need;
      }
    }
    return;
  }
  if (!use_bitmap(d, k)) {
    floyd_hashed(key, d, k, out);
    return;
  }
  std::vector<std::uint64_t> bitmap((d + 63) / 64, 0);
  floyd_bitmap(key, d, k, bitmap.data());
  out.resize(k + sparse::kListSlack);
  out.resize(sparse::list_sparse_set_bits(bitmap.data(), bitmap.size(), 0, out.data(), k));
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

RngKey RandKCodec::index_key(const EncodeContext& ctx) const noexcept {
  return shared_seed_ ? shared_key(ctx.iteration) : ctx.key(RngPurpose::kSparsify);
}

void RandKCodec::indices(std::size_t d, const EncodeContext& ctx,
                         std::vector<std::uint32_t>& out) const {
  sample_without_replacement(index_key(ctx), d, kept(d), out);
}

std::string RandKCodec::spec() const {
  std::string s = "randk:k=" + sparse::format_number(k_);
  if (shared_seed_) s += ",shared_seed=" + std::to_string(*shared_seed_);
  return s;
}

std::size_t RandKCodec::max_encoded_bytes(std::size_t d) const {
  const std::size_t k = kept(d);
  const std::size_t params = kParamsBytes + (shared_seed_ ? kSharedSeedParamsBytes : 0);
  const std::uint64_t index_bits = shared_seed_ ? 0 : sparse::index_bits_bound(false, k, d);
  return sparse::message_bytes(params, index_bits + 32 * std::uint64_t{k});
}

std::size_t RandKCodec::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                    std::span<std::byte> out) const {
  const std::size_t d = v.size();
  // Non-finite input is rejected before the message is finished (the finiteness check itself
  // runs with the gathers below, where v is read anyway).
  if (d > sparse::kMaxElements) require_finite(v, kName);
  sparse::require_indexable(d, kName);
  const std::size_t k = kept(d);
  // The raw values go two to a word, the first in the low half (as two 32-bit puts would write
  // them), appended after the indices in one go. The gather fills every word but the high half
  // of the last when k is odd, so only that word is zeroed.
  const auto packed = std::make_unique_for_overwrite<std::uint64_t[]>((k + 1) / 2);
  if (k % 2 != 0) packed[k / 2] = 0;
  auto* const values = reinterpret_cast<std::byte*>(packed.get());

  MessageWriter w(out, id(), d);
  write_params_for(w.params(), ctx.iteration);
  BitWriter bits(w.payload_area());
  PassResult pass;
  if (bitmap_case(d, k)) {
    std::vector<std::uint64_t> bitmap((d + 63) / 64, 0);
    floyd_bitmap(index_key(ctx), d, k, bitmap.data());
    // (Not zeroed: the gap stream only writes it.)
    const auto gaps = std::make_unique_for_overwrite<std::uint64_t[]>(
        shared_seed_ ? 1 : EliasDelta::kMaxWordBits * k / 64 + 1);
    pass = kernels::pass_over_bitmap(v.data(), d, bitmap.data(),
                                     shared_seed_ ? nullptr : gaps.get(), values);
    bits.put_words(gaps.get(), pass.gap_bits / 64);
    if (pass.gap_bits % 64 != 0) {
      bits.put(gaps[pass.gap_bits / 64], static_cast<unsigned>(pass.gap_bits % 64));
    }
  } else {
    std::vector<std::uint32_t> kept_indices;
    indices(d, ctx, kept_indices);
    if (!shared_seed_) sparse::IndexWriter(/*fixed_width=*/false, d).put_all(bits, kept_indices);
    const std::optional<std::uint32_t> kept_max = check_and_gather(v, kept_indices, values);
    pass.finite = kept_max.has_value();
    pass.max_magnitude = kept_max.value_or(0);
  }
  if (!pass.finite) require_finite(v, kName);  // throws, naming the first non-finite element
  // Scaling is monotone in the magnitude: if the largest kept value fits once scaled, all do;
  // if not, name the first that does not.
  const double factor = scale(d);
  if (std::isinf(static_cast<float>(static_cast<double>(std::bit_cast<float>(pass.max_magnitude)) *
                                    factor))) {
    std::vector<std::uint32_t> kept_indices;
    indices(d, ctx, kept_indices);
    for (const std::uint32_t i : kept_indices) {
      if (std::isinf(static_cast<float>(static_cast<double>(v[i]) * factor))) {
        throw InvalidArgument("randk: element " + std::to_string(i) + " (" + std::to_string(v[i]) +
                              ") scaled by d/k = " + sparse::format_number(factor) +
                              " exceeds the fp32 range");
      }
    }
  }
  bits.put_words(packed.get(), k / 2);
  if (k % 2 != 0) bits.put(packed[k / 2], 32);
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
    sparse::IndexReader(/*fixed_width=*/false, d, kName).get_all(r, kept_indices);
  }
  // Unbiasedness: each index is kept with probability k/d, so the kept value is scaled by d/k.
  const double factor = scale(d);
  std::vector<float> values(k);
  sparse::get_finite_f32s(r, values, kName);
  bool overflow = false;
  for (float& x : values) {
    x = static_cast<float>(static_cast<double>(x) * factor);
    overflow |= std::isinf(x);
  }
  if (overflow) throw CorruptMessage("randk: scaled value exceeds the fp32 range");
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
