// Top-k's filtering pass on Highway (issue 20): compiled for every target by foreach_target.h,
// dispatched by HWY_DYNAMIC_DISPATCH. The scalar loop cannot vectorize (its output positions
// depend on the data); here a vector of keys is compared with lo at once, and only a vector with a
// selected lane (rare) is split: by compression on AVX-512, lane by lane elsewhere.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/select.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <bit>

#include "src/codec/kernels/select.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

FilterProgress FilterKeys(const float* v, std::size_t d, std::uint32_t lo, std::uint32_t hi,
                          std::uint32_t* above, std::size_t above_cap, std::uint32_t* index,
                          std::uint32_t* key_out, std::size_t between_cap) {
  const hn::ScalableTag<std::uint32_t> du;
  const hn::Rebind<float, decltype(du)> df;
  const std::size_t lanes = hn::Lanes(du);
  const auto magnitude = hn::Set(du, 0x7FFFFFFFU);
  const auto vlo = hn::Set(du, lo);
  const auto vhi = hn::Set(du, hi);
  FilterProgress p;
  for (; p.done + lanes <= d; p.done += lanes) {
    const auto key = hn::And(hn::BitCast(du, hn::LoadU(df, v + p.done)), magnitude);
    const auto selected = hn::Not(hn::Gt(vlo, key));  // key >= lo: rare
    if (hn::AllFalse(du, selected)) continue;
    const auto is_above = hn::Gt(key, vhi);
    const auto is_between = hn::AndNot(is_above, selected);
    const std::size_t n_above = hn::CountTrue(du, is_above);
    const std::size_t n_between = hn::CountTrue(du, is_between);
    if (p.above + n_above > above_cap || p.between + n_between > between_cap) {
      p.stopped = true;
      return p;
    }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    // Compression is an instruction here (vpcompressd): the lanes packed without branches.
    const auto idx = hn::Add(hn::Set(du, static_cast<std::uint32_t>(p.done)), hn::Iota(du, 0));
    p.above += hn::CompressBlendedStore(idx, is_above, du, above + p.above);
    hn::CompressBlendedStore(idx, is_between, du, index + p.between);
    p.between += hn::CompressBlendedStore(key, is_between, du, key_out + p.between);
#else
    // The selected lanes one by one (one or two per such vector at top-k's 1 %): Highway 1.0's
    // Compress on AVX2 copies its index table to the stack at every call (`rep movsq`), and
    // CompressBlendedStore then stores by memcpy; with them top-k of 10M selected at 8x
    // nth_element on AVX2, with this loop at 15x.
    HWY_ALIGN std::uint32_t keys[HWY_MAX_BYTES / 4];
    hn::Store(key, du, keys);
    std::uint8_t mask_bytes[HWY_MAX_BYTES / 32 + 8] = {};
    hn::StoreMaskBits(du, selected, mask_bytes);
    for (std::size_t b = 0; b * 8 < lanes; ++b) {
      for (unsigned bits = mask_bytes[b]; bits != 0; bits &= bits - 1) {
        const std::size_t l = 8 * b + static_cast<std::size_t>(std::countr_zero(bits));
        const auto i = static_cast<std::uint32_t>(p.done + l);
        if (keys[l] > hi) {
          above[p.above++] = i;
        } else {
          index[p.between] = i;
          key_out[p.between++] = keys[l];
        }
      }
    }
#endif
  }
  return p;
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(FilterKeys);

FilterProgress filter_keys(const float* v, std::size_t d, std::uint32_t lo, std::uint32_t hi,
                           std::uint32_t* above, std::size_t above_cap, std::uint32_t* index,
                           std::uint32_t* key_out, std::size_t between_cap) noexcept {
  return HWY_DYNAMIC_DISPATCH(FilterKeys)(v, d, lo, hi, above, above_cap, index, key_out,
                                          between_cap);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
