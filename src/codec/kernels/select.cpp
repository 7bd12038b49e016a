// Top-k's filtering pass on Highway (issue 20): compiled for every target by foreach_target.h,
// dispatched by HWY_DYNAMIC_DISPATCH. The scalar loop cannot vectorize (its output positions
// depend on the data); here a vector of keys is compared at once and the rare selected lanes are
// compressed to the outputs without branches (CompressBlendedStore writes only the selected lanes).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/select.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

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
  const auto lane = hn::Iota(du, 0);
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
    const auto idx = hn::Add(hn::Set(du, static_cast<std::uint32_t>(p.done)), lane);
    p.above += hn::CompressBlendedStore(idx, is_above, du, above + p.above);
    hn::CompressBlendedStore(idx, is_between, du, index + p.between);
    p.between += hn::CompressBlendedStore(key, is_between, du, key_out + p.between);
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
