// fp16 / bf16 casts on Highway (kernels/cast.hpp), equal to the scalar oracle bit for bit. The
// integer arithmetic on the fp32 bit patterns (the oracle's branches, as lane selects) is the same
// on every target; F16C's conversions, on the targets that have them, serve finite fp16 lanes
// only (they round an overflow to infinity where the codec saturates: inputs are clamped first),
// and bf16 has no hardware counterpart that rounds subnormals as the oracle does.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/cast.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "src/codec/kernels/cast.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using D16 = hn::Rebind<std::uint16_t, DU>;
using VU = hn::Vec<DU>;

// Both loops stream through arrays that are usually not in L1 (a gradient, a message). Their
// arithmetic is long enough that the out-of-order window holds only a few cache lines' loads, too
// few to keep L3 or memory busy, so they run well below the speed of a plain copy unless told
// what comes next: each 64-byte line of the input and of the output is prefetched (into L1; a
// line that only this core holds comes in exclusive, so the later store needs no second request)
// this many bytes ahead.
constexpr std::size_t kPrefetchBytes = 4096;

// m >> kShift rounded to nearest, ties to even (m < 2^31 - 2^kShift): adding 2^(kShift-1) - 1 plus
// the kept part's lowest bit carries into the kept part exactly when the dropped part is above
// half, or half with an odd kept part.
template <int kShift>
HWY_INLINE VU ShiftRoundEven(VU m) {
  const DU du;
  const auto lsb = hn::And(hn::ShiftRight<kShift>(m), hn::Set(du, 1U));
  return hn::ShiftRight<kShift>(hn::Add(m, hn::Add(hn::Set(du, (1U << (kShift - 1)) - 1), lsb)));
}

// The same for a shift per lane (1..31).
HWY_INLINE VU ShiftRoundEven(VU m, VU shift) {
  const DU du;
  const auto one = hn::Set(du, 1U);
  const auto lsb = hn::And(hn::Shr(m, shift), one);
  const auto below_half = hn::Sub(hn::Shl(one, hn::Sub(shift, one)), one);
  return hn::Shr(hn::Add(m, hn::Add(below_half, lsb)), shift);
}

// The 16-bit encodings of the lanes' fp32 patterns (in the low half of each lane).
HWY_INLINE VU ToHalf(VU bits) {
  const DU du;
  const DI di;
  const auto a = hn::And(bits, hn::Set(du, 0x7FFFFFFFU));
  const auto ai = hn::BitCast(di, a);
  const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000U));
  // Normal half: rebias the exponent (127 -> 15), drop 13 mantissa bits rounding to even (a carry
  // out of the mantissa correctly bumps the exponent).
  auto h = ShiftRoundEven<13>(hn::Sub(a, hn::Set(du, 112U << 23)));
  const auto below_normal = hn::RebindMask(du, hn::Lt(ai, hn::Set(di, 0x38800000)));
  if (!hn::AllFalse(du, below_normal)) {
    // Subnormal half: (mantissa with its implicit bit) >> (126 - e), e the fp32 exponent; at or
    // below 2^-25 the result is 0 (the tie goes to the even value 0).
    const auto e = hn::ShiftRight<23>(a);
    const auto m = hn::Or(hn::And(a, hn::Set(du, 0x7FFFFFU)), hn::Set(du, 0x800000U));
    const auto shift =
        hn::Min(hn::Sub(hn::Set(du, 126U), hn::Min(e, hn::Set(du, 112U))), hn::Set(du, 31U));
    auto sub = ShiftRoundEven(m, shift);
    sub = hn::IfThenZeroElse(hn::RebindMask(du, hn::Lt(ai, hn::Set(di, 0x33000001))), sub);
    h = hn::IfThenElse(below_normal, sub, h);
  }
  h = hn::IfThenElse(hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x477FF000 - 1))),
                     hn::Set(du, kHalfMaxFinite), h);
  h = hn::IfThenElse(hn::RebindMask(du, hn::Eq(ai, hn::Set(di, 0x7F800000))), hn::Set(du, 0x7C00U),
                     h);
  h = hn::IfThenElse(hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x7F800000))), hn::Set(du, 0x7E00U),
                     h);
  return hn::Or(sign, h);
}

HWY_INLINE VU ToBfloat16(VU bits) {
  const DU du;
  const DI di;
  const auto a = hn::And(bits, hn::Set(du, 0x7FFFFFFFU));
  const auto ai = hn::BitCast(di, a);
  const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000U));
  // bf16 is the top half of fp32, so rounding the low 16 bits covers subnormals too.
  auto h = hn::Or(sign, ShiftRoundEven<16>(a));
  h = hn::IfThenElse(hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x7F7F8000 - 1))),
                     hn::Or(sign, hn::Set(du, kBfloat16MaxFinite)), h);
  h = hn::IfThenElse(hn::RebindMask(du, hn::Eq(ai, hn::Set(di, 0x7F800000))),
                     hn::Or(sign, hn::Set(du, 0x7F80U)), h);
  // NaN: the top half, quieted.
  h = hn::IfThenElse(hn::RebindMask(du, hn::Gt(ai, hn::Set(di, 0x7F800000))),
                     hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x0040U)), h);
  return h;
}

// Where the CPU converts fp32 to fp16 itself (F16C, on every x86 target from AVX2 up), that
// conversion rounds to nearest even like the oracle, subnormal halves included; it only differs
// above the largest finite half, where it overflows to infinity. Clamping a finite input to
// ±65504 first gives the oracle's saturation (inputs in (65504, 65520) round down to 65504
// anyway), so finite inputs take the hardware path. Vectors with an infinity or NaN, which the
// codec rejects, take the integer path to keep the oracle's encodings of those too. Highway's
// conversion on the other targets truncates instead of rounding, so they keep the integer path.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
constexpr bool kNativeHalf = true;
#else
constexpr bool kNativeHalf = false;
#endif

// ToBfloat16 for finite lanes only, in fewer operations: clamping the magnitude to the largest
// pattern that rounds to the largest finite bf16 gives the saturation.
HWY_INLINE VU FiniteToBfloat16(VU bits) {
  const DU du;
  const auto a = hn::Min(hn::And(bits, hn::Set(du, 0x7FFFFFFFU)), hn::Set(du, 0x7F7F7FFFU));
  const auto sign = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 0x8000U));
  return hn::Or(sign, ShiftRoundEven<16>(a));
}

template <bool kHalf>
HWY_INLINE bool CastTo16T(const float* in, std::size_t n, std::byte* out) {
  const DU du;
  const DI di;
  const D16 d16;
  const std::size_t lanes = hn::Lanes(du);
  const auto exp = hn::Set(du, 0x7F800000U);
  auto bad = hn::Zero(du);
  const auto one = [&](VU bits) HWY_ATTR {
    const auto nonfinite = hn::Eq(hn::And(bits, exp), exp);
    bad = hn::Or(bad, hn::VecFromMask(du, nonfinite));
    if constexpr (kHalf && kNativeHalf) {
      const DF df;
      const hn::Rebind<hwy::float16_t, DF> dh;
      const auto max = hn::Set(df, 65504.0f);
      const auto x = hn::Min(hn::Max(hn::BitCast(df, bits), hn::Neg(max)), max);
      if (HWY_LIKELY(hn::AllFalse(du, nonfinite))) return hn::BitCast(d16, hn::DemoteTo(dh, x));
    }
    if constexpr (!kHalf) {
      if (HWY_LIKELY(hn::AllFalse(du, nonfinite))) {
        return hn::DemoteTo(d16, hn::BitCast(di, FiniteToBfloat16(bits)));
      }
    }
    return hn::DemoteTo(d16, hn::BitCast(di, kHalf ? ToHalf(bits) : ToBfloat16(bits)));
  };
  auto* dst = reinterpret_cast<std::uint16_t*>(out);
  const auto cast = [&](std::size_t at) HWY_ATTR {
    hn::StoreU(one(hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(in + at))), d16, dst + at);
  };
  // A line of input (16 floats) per step, half a line of output.
  constexpr std::size_t kStep = 16;
  constexpr std::size_t kInAhead = kPrefetchBytes / 4;
  constexpr std::size_t kOutAhead = kPrefetchBytes / 2;
  std::size_t i = 0;
  if (lanes <= kStep) {
    for (; i + kStep + kOutAhead <= n; i += kStep) {
      hwy::Prefetch(in + i + kInAhead);
      hwy::Prefetch(dst + i + kOutAhead);
      for (std::size_t k = 0; k < kStep; k += lanes) cast(i + k);
    }
  }
  for (; i + lanes <= n; i += lanes) cast(i);
  if (i < n) {
    HWY_ALIGN std::uint32_t tmp[HWY_MAX_BYTES / 4] = {};
    HWY_ALIGN std::uint16_t res[HWY_MAX_BYTES / 4];
    std::memcpy(tmp, in + i, 4 * (n - i));
    hn::Store(one(hn::Load(du, tmp)), d16, res);
    std::memcpy(dst + i, res, 2 * (n - i));
  }
  return hn::AllTrue(du, hn::Eq(bad, hn::Zero(du)));
}

HWY_INLINE VU FromHalf(VU h) {
  const DF df;
  const DU du;
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000U)));
  const auto e = hn::And(hn::ShiftRight<10>(h), hn::Set(du, 0x1FU));
  const auto m = hn::And(h, hn::Set(du, 0x3FFU));
  // Zero or subnormal: m·2^-24, exact in fp32.
  const auto tiny =
      hn::BitCast(du, hn::Mul(hn::ConvertTo(df, hn::BitCast(DI(), m)), hn::Set(df, 0x1.0p-24f)));
  const auto normal =
      hn::Or(hn::ShiftLeft<23>(hn::Add(e, hn::Set(du, 112U))), hn::ShiftLeft<13>(m));
  const auto special = hn::Or(hn::Set(du, 0x7F800000U), hn::ShiftLeft<13>(m));
  auto x = hn::IfThenElse(hn::Eq(e, hn::Zero(du)), tiny, normal);
  x = hn::IfThenElse(hn::Eq(e, hn::Set(du, 0x1FU)), special, x);
  return hn::Or(sign, x);
}

template <bool kHalf>
HWY_INLINE bool CastFrom16T(const std::byte* in, std::size_t n, float* out, bool overwrite) {
  const DF df;
  const DU du;
  const D16 d16;
  const std::size_t lanes = hn::Lanes(du);
  const auto exp = hn::Set(du, kHalf ? 0x7C00U : 0x7F80U);
  auto bad = hn::Zero(du);
  const auto* src = reinterpret_cast<const std::uint16_t*>(in);
  const auto value = [&](hn::Vec<D16> packed) HWY_ATTR {
    const VU h = hn::PromoteTo(du, packed);
    bad = hn::Or(bad, hn::VecFromMask(du, hn::Eq(hn::And(h, exp), exp)));
    if constexpr (kHalf && kNativeHalf) {
      // F16C's conversion is exact for every finite half (subnormals included).
      return hn::PromoteTo(df, hn::BitCast(hn::Rebind<hwy::float16_t, DF>(), packed));
    }
    return hn::BitCast(df, kHalf ? FromHalf(h) : hn::ShiftLeft<16>(h));
  };
  const auto cast = [&](std::size_t at) HWY_ATTR {
    const auto x = value(hn::LoadU(d16, src + at));
    hn::StoreU(overwrite ? x : hn::Add(hn::LoadU(df, out + at), x), df, out + at);
  };
  // A line of input (32 encodings) per step, two lines of output.
  constexpr std::size_t kStep = 32;
  constexpr std::size_t kInAhead = kPrefetchBytes / 2;
  constexpr std::size_t kOutAhead = kPrefetchBytes / 4;
  std::size_t i = 0;
  if (lanes <= kStep) {
    for (; i + kStep + kInAhead <= n; i += kStep) {
      hwy::Prefetch(src + i + kInAhead);
      hwy::Prefetch(out + i + kOutAhead);
      hwy::Prefetch(out + i + kOutAhead + kStep / 2);
      for (std::size_t k = 0; k < kStep; k += lanes) cast(i + k);
    }
  }
  for (; i + lanes <= n; i += lanes) cast(i);
  if (i < n) {
    HWY_ALIGN std::uint16_t tmp[HWY_MAX_BYTES / 4] = {};
    HWY_ALIGN float res[HWY_MAX_BYTES / 4] = {};
    std::memcpy(tmp, src + i, 2 * (n - i));
    std::memcpy(res, out + i, 4 * (n - i));
    const auto x = value(hn::Load(d16, tmp));
    hn::Store(overwrite ? x : hn::Add(hn::Load(df, res), x), df, res);
    std::memcpy(out + i, res, 4 * (n - i));
  }
  return hn::AllTrue(du, hn::Eq(bad, hn::Zero(du)));
}

bool CastTo16(CastFormat format, const float* in, std::size_t n, std::byte* out) {
  return format == CastFormat::kFp16 ? CastTo16T<true>(in, n, out) : CastTo16T<false>(in, n, out);
}

bool CastFrom16(CastFormat format, const std::byte* in, std::size_t n, float* out, bool overwrite) {
  return format == CastFormat::kFp16 ? CastFrom16T<true>(in, n, out, overwrite)
                                     : CastFrom16T<false>(in, n, out, overwrite);
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(CastTo16);
HWY_EXPORT(CastFrom16);

bool cast_to_16(CastFormat format, const float* in, std::size_t n, std::byte* out) noexcept {
  return HWY_DYNAMIC_DISPATCH(CastTo16)(format, in, n, out);
}

bool cast_from_16(CastFormat format, const std::byte* in, std::size_t n, float* out,
                  bool overwrite) noexcept {
  return HWY_DYNAMIC_DISPATCH(CastFrom16)(format, in, n, out, overwrite);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
