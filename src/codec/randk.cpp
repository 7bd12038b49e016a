#include "thinwire/codec/randk.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

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

// Floyd steps per batch: a batch's draws are computed first, in a loop without dependencies
// (each draw is a pure function of its counter) that the compiler can vectorize, then applied.
constexpr std::size_t kFloydBatch = 64;

// The draws of steps counter .. counter + kFloydBatch - 1 with bounds bound, bound + 1, ...:
// key.below(counter + s, bound + s), with the 64x64 -> 128-bit product split into two 32x64-bit
// ones (exact for bounds below 2^32, as every bound of a step that is used is) so that it
// vectorizes.
void draw_batch(RngKey key, std::uint64_t counter, std::uint64_t bound,
                std::uint32_t* out) noexcept {
  for (std::size_t s = 0; s < kFloydBatch; ++s) {
    const std::uint64_t bits = key.bits(counter + s);
    const std::uint64_t n = bound + s;
    const std::uint64_t high = (bits >> 32) * n;
    const std::uint64_t low = (bits & 0xFFFFFFFFU) * n;
    out[s] = static_cast<std::uint32_t>((high + (low >> 32)) >> 32);
  }
}

// Runs Floyd's algorithm on `bitmap`, ceil(d/64) zeroed words (bit b of word w is index 64w + b).
void floyd_bitmap(RngKey key, std::size_t d, std::size_t k, std::uint64_t* bitmap) noexcept {
  const std::size_t first = d - k;
  for (std::size_t done = 0; done < k; done += kFloydBatch) {
    std::uint32_t draws[kFloydBatch];
    draw_batch(key, done, first + done + 1, draws);
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

// Writes base + the positions of the set bits of words[0 .. n) to out, ascending, and returns
// their number; out needs room for that number + 2. Most words hold few bits (64·k/d on
// average), so a loop per bit would mispredict on most words; instead two candidates per word
// are written unconditionally (one past the word's last bit is garbage that the next word
// overwrites) and the count advances by the popcount, with a loop only for the rarer words that
// hold more. Bit 63 is forced on for the candidates: that moves no real position, and keeps the
// compiler from branching on an empty word (where countr_zero would be 64).
std::size_t list_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                          std::uint32_t* out) noexcept {
  constexpr std::uint64_t kTop = std::uint64_t{1} << 63;
  std::size_t m = 0;
  for (std::size_t w = 0; w < n; ++w, base += 64) {
    std::uint64_t bits = words[w];
    const auto count = static_cast<std::size_t>(std::popcount(bits));
    out[m] = base + static_cast<std::uint32_t>(std::countr_zero(bits | kTop));
    bits &= bits - 1;
    out[m + 1] = base + static_cast<std::uint32_t>(std::countr_zero(bits | kTop));
    if (count > 2) [[unlikely]] {
      bits &= bits - 1;
      for (std::size_t r = m + 2; bits != 0; bits &= bits - 1, ++r) {
        out[r] = base + static_cast<std::uint32_t>(std::countr_zero(bits));
      }
    }
    m += count;
  }
  return m;
}

// Writes the Elias-delta codes of the gaps of kept (ascending) indices, the same bits as
// sparse::IndexWriter, as a bit stream into `words` (room for 42·kept.size() bits + 1 word) and
// returns its length in bits. Branch-free: each code is or-ed into a 64-bit accumulator that is
// stored every time, and the store position advances by a word when it fills; so the loop's only
// dependency chain is a few cycles per code.
std::uint64_t gap_stream(std::span<const std::uint32_t> kept, std::uint64_t* words) noexcept {
  std::uint64_t acc = 0;
  unsigned used = 0;  // bits of acc in use, < 64
  std::size_t w = 0;
  std::uint64_t next = 0;  // one past the previous index
  for (const std::uint32_t i : kept) {
    unsigned width = 0;
    const std::uint64_t code = EliasDelta::word(i + 1 - next, width);
    next = std::uint64_t{i} + 1;
    acc |= code << used;
    words[w] = acc;
    const unsigned total = used + width;
    // When the word is full (full = 1), what is left of the code starts the next one; width <= 42
    // means used >= 22 then, so the shift is in range. Masks rather than a condition, which the
    // compiler would turn into an unpredictable branch.
    const std::uint64_t full = total >> 6;
    const std::uint64_t stay = full - 1;  // all ones unless full
    acc = (acc & stay) | ((code >> ((64 - used) & 63)) & ~stay);
    w += full;
    used = total & 63;
  }
  words[w] = acc;
  return 64 * std::uint64_t{w} + used;
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
  out.resize(k + 2);
  out.resize(list_set_bits(bitmap.data(), bitmap.size(), 0, out.data()));
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
  const std::size_t d = v.size();
  // Non-finite input is rejected before anything else (the finiteness check itself runs with
  // the gathers below, where v is read anyway).
  if (d > sparse::kMaxElements) require_finite(v, kName);
  const std::size_t k = kept(d);
  std::vector<std::uint32_t> kept_indices;
  indices(d, ctx, kept_indices);  // also rejects d >= 2^32

  MessageWriter w(out, id(), d);
  write_params_for(w.params(), ctx.iteration);
  BitWriter bits(w.payload_area());
  // The raw values go two to a word, the first in the low half (as two 32-bit puts would write
  // them), appended after the indices in one go.
  std::vector<std::uint64_t> packed((k + 1) / 2, 0);
  auto* const values = reinterpret_cast<std::byte*>(packed.data());
  if (!shared_seed_) {
    std::vector<std::uint64_t> stream((42 * kept_indices.size() + 63) / 64 + 1);
    const std::uint64_t n = gap_stream(kept_indices, stream.data());
    bits.put_words(stream.data(), n / 64);
    bits.put(stream[n / 64], static_cast<unsigned>(n % 64));
  }
  const std::optional<std::uint32_t> kept_max = check_and_gather(v, kept_indices, values);
  if (!kept_max) require_finite(v, kName);  // throws, naming the first non-finite element
  const std::uint32_t max_magnitude = kept_max.value_or(0);
  // Scaling is monotone in the magnitude: if the largest kept value fits once scaled, all do;
  // if not, name the first that does not.
  const double factor = scale(d);
  if (std::isinf(
          static_cast<float>(static_cast<double>(std::bit_cast<float>(max_magnitude)) * factor))) {
    for (const std::uint32_t i : kept_indices) {
      if (std::isinf(static_cast<float>(static_cast<double>(v[i]) * factor))) {
        throw InvalidArgument("randk: element " + std::to_string(i) + " (" + std::to_string(v[i]) +
                              ") scaled by d/k = " + sparse::format_number(factor) +
                              " exceeds the fp32 range");
      }
    }
  }
  bits.put_words(packed.data(), k / 2);
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
