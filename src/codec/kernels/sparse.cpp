// The sparse codecs' kernels on Highway (kernels/sparse.hpp): compiled for every target by
// foreach_target.h, dispatched by HWY_DYNAMIC_DISPATCH. Highway 1.0 has neither a leading-zero
// count nor (below AVX-512) a 64-bit multiply, so bit lengths come from the exponent of the exact
// conversion to double, and 64-bit products from three 32x32-bit ones.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/sparse.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "src/codec/kernels/sparse.hpp"
#include "src/codec/sparse_coding.hpp"
#include "thinwire/core/rng.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D64 = hn::ScalableTag<std::uint64_t>;
using V64 = hn::Vec<D64>;

// The low 32 bits of a times those of b, as 64-bit lanes.
HWY_INLINE V64 MulLow32(V64 a, V64 b) {
#if HWY_TARGET == HWY_SCALAR
  const auto low = hn::Set(D64(), 0xFFFFFFFFU);
  return hn::Mul(hn::And(a, low), hn::And(b, low));
#else
  const hn::Repartition<std::uint32_t, D64> d32;
  return hn::MulEven(hn::BitCast(d32, a), hn::BitCast(d32, b));
#endif
}

// a·b mod 2^64.
HWY_INLINE V64 Mul64(V64 a, V64 b) {
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  return hn::Mul(a, b);  // one instruction on AVX-512 (vpmullq)
#else
  const V64 cross = hn::Add(MulLow32(hn::ShiftRight<32>(a), b), MulLow32(a, hn::ShiftRight<32>(b)));
  return hn::Add(MulLow32(a, b), hn::ShiftLeft<32>(cross));
#endif
}

// The lanes' low 32 bits to out[0..lanes).
HWY_INLINE void StoreLow32(V64 v, std::uint32_t* out) {
#if HWY_TARGET == HWY_SCALAR
  *out = static_cast<std::uint32_t>(hn::GetLane(v));
#else
  const hn::Rebind<std::uint32_t, D64> d32;
  hn::StoreU(hn::TruncateTo(d32, v), d32, out);
#endif
}

// The biased exponent of each lane (< 2^53) converted to double, exactly: 1023 + floor(log2 x)
// for x >= 1, 0 for x = 0, whatever the sign bit of the lane.
HWY_INLINE V64 Exponent(V64 x) {
  const D64 d64;
  const hn::RebindToSigned<D64> di;
  const hn::Rebind<double, D64> dd;
  const V64 bits = hn::BitCast(d64, hn::ConvertTo(dd, hn::BitCast(di, x)));
  return hn::And(hn::ShiftRight<52>(bits), hn::Set(d64, 0x7FFU));
}

void DrawBelowBatch(std::uint64_t key, std::uint64_t counter, std::uint64_t bound,
                    std::uint32_t* out) {
#if HWY_TARGET != HWY_AVX3 && HWY_TARGET != HWY_AVX3_DL
  // Without a vector 64-bit multiply the three-product emulation of mix64's two products costs
  // more than the scalar multiplier (measured on SSE4 and AVX2): the scalar loop, the same
  // formula lane by lane.
  for (std::size_t s = 0; s < kDrawBatch; ++s) {
    const std::uint64_t z = RngKey{key}.bits(counter + s);
    const std::uint64_t n = bound + s;
    out[s] = static_cast<std::uint32_t>((((z >> 32) * n) + (((z & 0xFFFFFFFFU) * n) >> 32)) >> 32);
  }
#else
  const D64 d64;
  const std::size_t lanes = hn::Lanes(d64);
  // (counter + s)·kGolden64 for the lanes' s, advanced by lanes·kGolden64 per step: additions
  // instead of a product per step.
  const V64 iota = hn::Iota(d64, 0);
  V64 scrambled = Mul64(hn::Add(hn::Set(d64, counter), iota), hn::Set(d64, kGolden64));
  const V64 step = hn::Set(d64, lanes * kGolden64);
  const V64 value = hn::Set(d64, key);
  const V64 m1 = hn::Set(d64, 0xBF58476D1CE4E5B9ULL);
  const V64 m2 = hn::Set(d64, 0x94D049BB133111EBULL);
  V64 n = hn::Add(hn::Set(d64, bound), iota);
  const V64 n_step = hn::Set(d64, lanes);
  for (std::size_t s = 0; s < kDrawBatch; s += lanes) {
    // mix64(value ^ (counter + s)·kGolden64), as RngKey::bits.
    V64 z = hn::Xor(value, scrambled);
    z = Mul64(hn::Xor(z, hn::ShiftRight<30>(z)), m1);
    z = Mul64(hn::Xor(z, hn::ShiftRight<27>(z)), m2);
    z = hn::Xor(z, hn::ShiftRight<31>(z));
    // The high 64 bits of z·n for n < 2^32, from the two 32x32-bit halves of the product.
    const V64 high = MulLow32(hn::ShiftRight<32>(z), n);
    const V64 low = MulLow32(z, n);
    StoreLow32(hn::ShiftRight<32>(hn::Add(high, hn::ShiftRight<32>(low))), out + s);
    scrambled = hn::Add(scrambled, step);
    n = hn::Add(n, n_step);
  }
#endif
}

void DeltaCodes(const std::uint32_t* indices, std::size_t n, std::uint64_t* codes,
                std::uint64_t* widths) {
  const D64 d64;
  const hn::Rebind<std::uint32_t, D64> d32;
  const std::size_t lanes = hn::Lanes(d64);
  const V64 one = hn::Set(d64, 1);
  const V64 bias = hn::Set(d64, 1023);
  std::size_t j = 1;
  for (; j + lanes <= n; j += lanes) {
    const V64 gap = hn::Sub(hn::PromoteTo(d64, hn::LoadU(d32, indices + j)),
                            hn::PromoteTo(d64, hn::LoadU(d32, indices + j - 1)));
    // len = bit_width(gap) in [1, 32]; the gamma code of len has len_low = bit_width(len) - 1
    // zeros, a one, and len's low len_low bits; then gap's low len - 1 bits.
    const V64 len_m1 = hn::Sub(Exponent(gap), bias);
    const V64 len = hn::Add(len_m1, one);
    const V64 len_low = hn::Sub(Exponent(len), bias);
    const V64 top = hn::Shl(one, len_low);
    const V64 gamma = hn::Or(top, hn::Shl(hn::And(len, hn::Sub(top, one)), hn::Add(len_low, one)));
    const V64 gamma_width = hn::Add(hn::Add(len_low, len_low), one);
    const V64 low = hn::And(gap, hn::Sub(hn::Shl(one, len_m1), one));
    hn::StoreU(hn::Or(gamma, hn::Shl(low, gamma_width)), d64, codes + j);
    hn::StoreU(hn::Add(gamma_width, len_m1), d64, widths + j);
  }
  for (; j < n; ++j) {
    unsigned width = 0;
    codes[j] = EliasDelta::word(std::uint64_t{indices[j]} - indices[j - 1], width);
    widths[j] = width;
  }
}

std::size_t ListSparseSetBits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                              std::uint32_t* out) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // A vector of words per step: the lowest four set bits of each word as candidates (position
  // + 1, 0 where the word has no such bit), put into word order by a lane permutation and packed
  // by compression (vpcompressd). A vector with a word of more than four bits goes to the scalar
  // loop; with at most one bit per word on average that is rare (0.4 % of words at 0.64 bits per
  // word). Elsewhere Highway 1.0's compression costs more than the scalar loop saves (see
  // select.cpp), so the other targets run that loop.
  const D64 d64;
  const hn::Repartition<std::uint32_t, D64> d32;
  const hn::Half<decltype(d32)> dh;
  const std::size_t lanes = hn::Lanes(d64);
  // The candidates c of words w go to lane 4w + c: from quarter c, element w, of the vector
  // that holds the four candidate vectors' halves one after the other.
  HWY_ALIGN std::uint32_t order[HWY_MAX_BYTES / 4];
  for (std::size_t l = 0; l < 2 * lanes; ++l) {
    order[l] = static_cast<std::uint32_t>(l % 4 * (lanes / 2) + l / 4);
  }
  const auto to_word_order = hn::SetTableIndices(d32, order);
  const V64 zero = hn::Zero(d64);
  const V64 one = hn::Set(d64, 1);
  const V64 word_offsets = hn::ShiftLeft<6>(hn::Iota(d64, 0));
  const auto store = [&](hn::Vec<decltype(d32)> candidates, std::size_t m) HWY_ATTR {
    const auto c = hn::TableLookupLanes(candidates, to_word_order);
    return hn::CompressStore(hn::Sub(c, hn::Set(d32, 1U)), hn::Ne(c, hn::Zero(d32)), d32, out + m);
  };
  std::size_t m = 0;
  std::size_t w = 0;
  for (; w + lanes <= n; w += lanes, base += static_cast<std::uint32_t>(64 * lanes)) {
    V64 x = hn::LoadU(d64, words + w);
    // Position + 1 in [1, 2^32 - 1]: indices are below 2^32 - 1.
    const V64 first = hn::Add(hn::Set(d64, std::uint64_t{base} + 1 - 1023), word_offsets);
    const auto candidate = [&]() HWY_ATTR {
      const V64 lowest = hn::And(x, hn::Sub(zero, x));
      const auto c = hn::IfThenZeroElse(hn::Eq(x, zero), hn::Add(first, Exponent(lowest)));
      x = hn::And(x, hn::Sub(x, one));
      return hn::TruncateTo(dh, c);
    };
    const auto c0 = candidate();
    const auto c1 = candidate();
    const auto c2 = candidate();
    const auto c3 = candidate();
    if (!hn::AllTrue(d64, hn::Eq(x, zero))) [[unlikely]] {
      m += sparse::list_set_bits(words + w, lanes, base, out + m);
      continue;
    }
    const auto low =
        hn::Combine(d32, hn::ConcatLowerLower(dh, c3, c2), hn::ConcatLowerLower(dh, c1, c0));
    m += store(low, m);
    const auto high =
        hn::Combine(d32, hn::ConcatUpperUpper(dh, c3, c2), hn::ConcatUpperUpper(dh, c1, c0));
    m += store(high, m);
  }
  return m + sparse::list_set_bits(words + w, n - w, base, out + m);
#else
  return sparse::list_set_bits(words, n, base, out);
#endif
}

BitmapPass PassOverBitmap(const float* v, std::size_t d, const std::uint64_t* bitmap,
                          std::uint64_t* gaps, std::byte* values) {
  const hn::ScalableTag<std::uint32_t> du;
  const std::size_t lanes = hn::Lanes(du);
  // Measured at d = 2^22, k = 1 % on AVX-512: groups of 256 with the prefetch 512 ahead into L1
  // beat 64 to 1024 and 256 to 1024 ahead, and into L2 (by 3 to 11 %).
  constexpr std::size_t kGroup = 256;  // elements: four bitmap words
  constexpr std::size_t kAhead = 512;
  constexpr std::size_t kLine = 64 / sizeof(float);
  const std::size_t prefetch_end = d > kAhead ? d - kAhead : 0;
  const auto exponent = hn::Set(du, 0x7F800000U);
  const auto* bits = reinterpret_cast<const std::uint32_t*>(v);
  const auto is_special = [&](std::size_t i) HWY_ATTR {
    return hn::Eq(hn::And(hn::LoadU(du, bits + i), exponent), exponent);
  };
  sparse::GapCodeStream stream(gaps);
  std::uint32_t listed[kGroup + sparse::kListSlack];
  std::size_t m = 0;  // values gathered
  BitmapPass result;
  for (std::size_t g = 0; g < d; g += kGroup) {
    const std::size_t end = std::min(d, g + kGroup);
    if (end - g == kGroup) {
      // A whole group: a fixed number of steps, unrolled.
      if (g + kGroup <= prefetch_end) {
        HWY_UNROLL(16)
        for (std::size_t k = 0; k < kGroup; k += kLine) hwy::Prefetch(v + g + k + kAhead);
      }
      auto special = is_special(g);
      HWY_UNROLL(16)
      for (std::size_t k = lanes; k < kGroup; k += lanes)
        special = hn::Or(special, is_special(g + k));
      result.finite &= hn::AllFalse(du, special);
    } else {
      for (std::size_t i = g; i < end; ++i) {
        result.finite &= (bits[i] & 0x7F800000U) != 0x7F800000U;
      }
    }
    const std::size_t n = sparse::list_set_bits(bitmap + g / 64, (end - g + 63) / 64,
                                                static_cast<std::uint32_t>(g), listed);
    for (std::size_t j = 0; j < n; ++j) {
      const std::uint32_t e = listed[j];
      if (gaps != nullptr) stream.put_index(e);
      result.max_magnitude = std::max(result.max_magnitude, bits[e] & 0x7FFFFFFFU);
      std::memcpy(values + 4 * (m + j), bits + e, 4);
    }
    m += n;
  }
  if (gaps != nullptr) result.gap_bits = stream.finish();
  return result;
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(DrawBelowBatch);
HWY_EXPORT(DeltaCodes);
HWY_EXPORT(ListSparseSetBits);
HWY_EXPORT(PassOverBitmap);

void draw_below_batch(std::uint64_t key, std::uint64_t counter, std::uint64_t bound,
                      std::uint32_t* out) noexcept {
  HWY_DYNAMIC_DISPATCH(DrawBelowBatch)(key, counter, bound, out);
}

void delta_codes(const std::uint32_t* indices, std::size_t n, std::uint64_t* codes,
                 std::uint64_t* widths) noexcept {
  HWY_DYNAMIC_DISPATCH(DeltaCodes)(indices, n, codes, widths);
}

std::size_t list_sparse_set_bits(const std::uint64_t* words, std::size_t n, std::uint32_t base,
                                 std::uint32_t* out) noexcept {
  return HWY_DYNAMIC_DISPATCH(ListSparseSetBits)(words, n, base, out);
}

BitmapPass pass_over_bitmap(const float* v, std::size_t d, const std::uint64_t* bitmap,
                            std::uint64_t* gaps, std::byte* values) noexcept {
  return HWY_DYNAMIC_DISPATCH(PassOverBitmap)(v, d, bitmap, gaps, values);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
