// Per-target pieces shared by the Highway kernels of src/codec/kernels/ (included once per target
// after hwy/highway.h, Highway's -inl.h convention): the rounding stream on vectors and the
// quantizers' arithmetic on lanes. Lambdas in these files carry HWY_ATTR: GCC does not apply
// HWY_BEFORE_NAMESPACE's target pragma to them, and would compile them for the baseline
// target, out of line.
#if defined(THINWIRE_CODEC_KERNELS_QUANTIZE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THINWIRE_CODEC_KERNELS_QUANTIZE_INL_H_
#undef THINWIRE_CODEC_KERNELS_QUANTIZE_INL_H_
#else
#define THINWIRE_CODEC_KERNELS_QUANTIZE_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>

#include "thinwire/core/rounding.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;

#if HWY_TARGET != HWY_SCALAR
// Two AES rounds of every 128-bit block of x, keys k1 then k2. Without VAES, Highway's AESRound
// of a wider vector splits it and joins the halves again at every round; this splits once for
// both rounds.
template <class D8>
HWY_INLINE hn::Vec<D8> TwoRounds(D8 d8, hn::Vec<D8> x, hn::Vec<D8> k1, hn::Vec<D8> k2) {
#if HWY_TARGET != HWY_AVX3_DL
  if constexpr (hn::MaxLanes(d8) > 16) {
    const hn::Half<D8> dh;
    return hn::Combine(
        d8, TwoRounds(dh, hn::UpperHalf(dh, x), hn::UpperHalf(dh, k1), hn::UpperHalf(dh, k2)),
        TwoRounds(dh, hn::LowerHalf(dh, x), hn::LowerHalf(dh, k1), hn::LowerHalf(dh, k2)));
  }
#endif
  return hn::AESRound(hn::AESRound(x, k1), k2);
}

// The rounding stream, a vector of lanes at a time: lane l of the group at element g (a multiple
// of the lane count, so a group never straddles a rounding block) holds word l mod 4 of quad
// g/4 + l/4, whose AES input is the block's whitening with (g/4 + l/4) mod 256 added to word 0.
class RoundingStream {
 public:
  explicit RoundingStream(const RoundingKey& key)
      : key_(&key),
        r1_(hn::LoadDup128(DU(), key.round1().data())),
        r2_(hn::LoadDup128(DU(), key.round2().data())),
        word0_(hn::Eq(hn::And(hn::Iota(DU(), 0), hn::Set(DU(), 3U)), hn::Zero(DU()))),
        quad_(hn::IfThenElseZero(word0_, hn::ShiftRight<2>(hn::Iota(DU(), 0)))),
        step_(hn::IfThenElseZero(word0_,
                                 hn::Set(DU(), static_cast<std::uint32_t>(hn::Lanes(DU()) >> 2)))),
        x_(hn::Zero(DU())) {}

  void seek(std::uint64_t g) {
    const auto q0 = static_cast<std::uint32_t>((g >> kRoundingQuadLog2) & 255);
    x_ = hn::Add(hn::LoadDup128(DU(), key_->whitening(g >> kRoundingBlockLog2).data()),
                 hn::Add(quad_, hn::IfThenElseZero(word0_, hn::Set(DU(), q0))));
  }

  // The 24-bit values of the group at g (the stream's position), then advances one group.
  hn::Vec<DU> at(std::uint64_t g) {
    if ((g & (kRoundingBlock - 1)) == 0) seek(g);
    return Next();
  }
  // The same where the caller seeks at every rounding block's start.
  hn::Vec<DU> Next() {
    const hn::Repartition<std::uint8_t, DU> d8;
    const auto h = TwoRounds(d8, hn::BitCast(d8, x_), hn::BitCast(d8, r1_), hn::BitCast(d8, r2_));
    x_ = hn::Add(x_, step_);
    return hn::ShiftRight<8>(hn::BitCast(DU(), h));
  }

 private:
  const RoundingKey* key_;
  hn::Vec<DU> r1_;
  hn::Vec<DU> r2_;
  hn::Mask<DU> word0_;
  hn::Vec<DU> quad_;
  hn::Vec<DU> step_;
  hn::Vec<DU> x_;
};
#else
// Highway's one-lane fallback has no AESRound: the software generator (one AES per quad).
class RoundingStream {
 public:
  explicit RoundingStream(const RoundingKey& key) : cursor_(key) {}
  void seek(std::uint64_t g) { position_ = g; }
  hn::Vec<DU> at(std::uint64_t g) {
    position_ = g;
    return Next();
  }
  hn::Vec<DU> Next() { return hn::Set(DU(), cursor_.bits24(position_++)); }

 private:
  RoundingCursor cursor_;
  std::uint64_t position_ = 0;
};
#endif  // HWY_TARGET != HWY_SCALAR

// round_up24 (core/rounding.hpp) on lanes: [r + ⌈t⌉ >= 2^24] for t in [0, 2^24 + 2^-22·2^24].
inline hn::Vec<DU> RoundUp24(hn::Vec<DU> r, hn::Vec<DF> t) {
  const DF df;
  const DU du;
  const auto whole = hn::ConvertTo(DI(), t);
  const auto up =
      hn::IfThenElseZero(hn::RebindMask(du, hn::Lt(hn::ConvertTo(df, whole), t)), hn::Set(du, 1U));
  return hn::ShiftRight<24>(hn::Add(r, hn::Add(hn::BitCast(du, whole), up)));
}

// QSGD's field of each lane: level | negative << width, the level stochastic from sr =
// min(|x|·inv, s) and the rounding bits r (qsgd.cpp's fp32 branch of stochastic_level).
struct QsgdLanes {
  hn::Vec<DF> inv;
  hn::Vec<DF> s;
  hn::Vec<DU> width;

  QsgdLanes(float inv_f, float s_f, unsigned w)
      : inv(hn::Set(DF(), inv_f)), s(hn::Set(DF(), s_f)), width(hn::Set(DU(), w)) {}

  hn::Vec<DU> operator()(hn::Vec<DU> xbits, hn::Vec<DU> r) const {
    const DF df;
    const DU du;
    const auto ax = hn::BitCast(df, hn::And(xbits, hn::Set(du, 0x7FFFFFFFU)));
    const auto sr = hn::Min(hn::Mul(ax, inv), s);
    // sr >= 0: truncation is the floor, and sr - level0 is exact (so is its scaling by 2^24).
    const auto level0 = hn::ConvertTo(DI(), sr);
    const auto frac = hn::Mul(hn::Sub(sr, hn::ConvertTo(df, level0)), hn::Set(df, 0x1.0p24f));
    const auto level = hn::Add(hn::BitCast(du, level0), RoundUp24(r, frac));
    const auto negative =
        hn::IfThenElseZero(hn::Ne(level, hn::Zero(du)), hn::ShiftRight<31>(xbits));
    return hn::Or(level, hn::Shl(negative, width));
  }
};

// TernGrad's 2-bit code of each lane: keep << negative, keep with probability
// ⌈min(|x|, scale)·inv·2^24⌉/2^24 (terngrad.cpp).
struct TernGradLanes {
  hn::Vec<DF> scale;
  hn::Vec<DF> inv;

  TernGradLanes(float scale_f, float inv_f)
      : scale(hn::Set(DF(), scale_f)), inv(hn::Set(DF(), inv_f)) {}

  hn::Vec<DU> operator()(hn::Vec<DU> xbits, hn::Vec<DU> r) const {
    const DF df;
    const DU du;
    const auto ax = hn::BitCast(df, hn::And(xbits, hn::Set(du, 0x7FFFFFFFU)));
    const auto t = hn::Mul(hn::Mul(hn::Min(ax, scale), inv), hn::Set(df, 0x1.0p24f));
    // round_up24(r, t) = (⌈t⌉ + r) >> 24 for t in [0, 2^24 + 2^2]: nonzero means kept.
    const auto q = hn::BitCast(du, hn::ConvertTo(DI(), hn::Ceil(t)));
    const auto keep = hn::IfThenElseZero(hn::Ne(hn::ShiftRight<24>(hn::Add(q, r)), hn::Zero(du)),
                                         hn::Set(du, 1U));
    // x < 0 (not the sign bit: -0 is not negative, and is never kept anyway).
    const auto negative =
        hn::IfThenElseZero(hn::RebindMask(du, hn::Ne(ax, hn::Zero(df))), hn::ShiftRight<31>(xbits));
    return hn::Shl(keep, negative);
  }
};

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
