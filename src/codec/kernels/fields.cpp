// The element-wise codec kernels on Highway (issue 20): one implementation per kernel, compiled for
// every target by foreach_target.h and chosen once per process by HWY_DYNAMIC_DISPATCH. Each
// computes what the scalar references in qsgd.cpp / terngrad.cpp / sign.cpp compute, operation for
// operation in the same precision (this file is built with -ffp-contract=off, so no target fuses a
// multiply and an add the scalar code does not), with the same counter-based rounding values
// (core/rounding.hpp: two AES rounds, Highway's AESRound on every target), so messages are
// byte-identical for the same seed on every target; tests/unit/codec/kernel_targets_test.cpp runs
// each one against the scalar oracle on every target the CPU supports.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/fields.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "src/codec/qsgd_kernels.hpp"
// Per target, after highway.h:
#include "src/codec/kernels/quantize-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

bool AllFinite(const float* u, std::size_t n) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const auto exp = hn::Set(du, 0x7F800000U);
  auto bad = hn::Zero(du);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto b = hn::BitCast(du, hn::LoadU(DF(), u + i));
    bad = hn::Or(bad, hn::VecFromMask(du, hn::Eq(hn::And(b, exp), exp)));
  }
  bool ok = hn::AllTrue(du, hn::Eq(bad, hn::Zero(du)));
  for (; i < n; ++i) ok &= (std::bit_cast<std::uint32_t>(u[i]) & 0x7F800000U) != 0x7F800000U;
  return ok;
}

float MaxAbs(const float* u, std::size_t n) {
  // The IEEE patterns with the sign cleared order finite magnitudes exactly (as integers).
  const DU du;
  const DI di;
  const std::size_t lanes = hn::Lanes(du);
  const auto abs_mask = hn::Set(du, 0x7FFFFFFFU);
  auto m = hn::Zero(di);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    m = hn::Max(m, hn::BitCast(di, hn::And(hn::BitCast(du, hn::LoadU(DF(), u + i)), abs_mask)));
  }
  auto best = static_cast<std::uint32_t>(hn::GetLane(hn::MaxOfLanes(di, m)));
  for (; i < n; ++i) best = std::max(best, std::bit_cast<std::uint32_t>(u[i]) & 0x7FFFFFFFU);
  return std::bit_cast<float>(best);
}

void RoundingBits(const RoundingKey& key, std::uint64_t first, std::size_t n, std::uint32_t* out) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  RoundingStream stream(key);
  std::uint64_t g = first & ~static_cast<std::uint64_t>(lanes - 1);
  stream.seek(g);
  for (std::size_t k = 0; k < n; g += lanes) {
    const auto h = stream.at(g);
    const auto lo = static_cast<std::size_t>(first + k - g);
    const std::size_t take = std::min(lanes - lo, n - k);
    if (take == lanes) {
      hn::StoreU(h, du, out + k);
    } else {
      HWY_ALIGN std::uint32_t tmp[HWY_MAX_BYTES / 4];
      hn::Store(h, du, tmp);
      std::memcpy(out + k, tmp + lo, 4 * take);
    }
    k += take;
  }
}

// fields[i] = quantize(bits of u[i], r[i]) for i < n.
template <class Quantize>
HWY_INLINE void FieldsFromBits(const float* u, std::size_t n, const std::uint32_t* r,
                               const Quantize& quantize, std::uint32_t* fields) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const auto* ub = reinterpret_cast<const std::uint32_t*>(u);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(quantize(hn::LoadU(du, ub + i), hn::LoadU(du, r + i)), du, fields + i);
  }
  if (i < n) {
    HWY_ALIGN std::uint32_t xb[HWY_MAX_BYTES / 4] = {};
    HWY_ALIGN std::uint32_t rb[HWY_MAX_BYTES / 4] = {};
    HWY_ALIGN std::uint32_t fb[HWY_MAX_BYTES / 4];
    std::memcpy(xb, u + i, 4 * (n - i));
    std::memcpy(rb, r + i, 4 * (n - i));
    hn::Store(quantize(hn::Load(du, xb), hn::Load(du, rb)), du, fb);
    std::memcpy(fields + i, fb, 4 * (n - i));
  }
}

void QsgdFieldsFromBits(const float* u, std::size_t n, const std::uint32_t* r, float inv, float s_f,
                        unsigned width, std::uint32_t* fields) {
  FieldsFromBits(u, n, r, QsgdLanes(inv, s_f, width), fields);
}

void TernGradFieldsFromBits(const float* u, std::size_t n, const std::uint32_t* r, float scale,
                            float inv, std::uint32_t* fields) {
  FieldsFromBits(u, n, r, TernGradLanes(scale, inv), fields);
}

void QsgdFields(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
                unsigned width, const RoundingKey& key, std::uint32_t* fields) {
  const auto s_f = static_cast<float>(s);
  HWY_ALIGN std::uint32_t r[kQsgdChunk];
  for (std::size_t done = 0; done < n;) {
    const std::size_t seg = std::min(kQsgdChunk, n - done);
    RoundingBits(key, first + done, seg, r);
    QsgdFieldsFromBits(u + done, seg, r, inv, s_f, width, fields + done);
    done += seg;
  }
}

void TernGradFields(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                    const RoundingKey& key, std::uint32_t* fields) {
  HWY_ALIGN std::uint32_t r[kQsgdChunk];
  for (std::size_t done = 0; done < n;) {
    const std::size_t seg = std::min(kQsgdChunk, n - done);
    RoundingBits(key, first + done, seg, r);
    TernGradFieldsFromBits(u + done, seg, r, scale, inv, fields + done);
    done += seg;
  }
}

// Stores x over out[0..count) or adds it there (count <= lanes).
HWY_INLINE void Emit(hn::Vec<DF> x, float* out, std::size_t count, bool overwrite) {
  const DF df;
  if (count == hn::Lanes(df)) {
    hn::StoreU(overwrite ? x : hn::Add(hn::LoadU(df, out), x), df, out);
    return;
  }
  HWY_ALIGN float tmp[HWY_MAX_BYTES / 4] = {};
  std::memcpy(tmp, out, 4 * count);
  const auto y = overwrite ? x : hn::Add(hn::Load(df, tmp), x);
  hn::Store(y, df, tmp);
  std::memcpy(out, tmp, 4 * count);
}

bool TernGradValues(const std::uint32_t* fields, std::size_t n, float scale, float* out,
                    bool overwrite) {
  const DF df;
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const auto scale_bits = hn::Set(du, std::bit_cast<std::uint32_t>(scale));
  const auto one = hn::Set(du, 1U);
  const auto two = hn::Set(du, 2U);
  const auto three = hn::Set(du, 3U);
  const auto sign = hn::Set(du, 0x80000000U);
  auto bad = hn::Zero(du);
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t count = std::min(lanes, n - i);
    HWY_ALIGN std::uint32_t fb[HWY_MAX_BYTES / 4] = {};
    const std::uint32_t* src = fields + i;
    if (count < lanes) {
      std::memcpy(fb, src, 4 * count);
      src = fb;
    }
    const auto c = hn::LoadU(du, src);
    bad = hn::Or(bad, hn::VecFromMask(du, hn::Eq(c, three)));
    // Code 1: +scale, 2: -scale, 0 and 3: +0 (as the reference decoder).
    const auto is_two = hn::Eq(c, two);
    const auto magnitude = hn::IfThenElseZero(hn::Or(hn::Eq(c, one), is_two), scale_bits);
    const auto x = hn::BitCast(df, hn::Or(magnitude, hn::IfThenElseZero(is_two, sign)));
    Emit(x, out + i, count, overwrite);
  }
  return !hn::AllTrue(du, hn::Eq(bad, hn::Zero(du)));
}

// ±(float)(step·level) for fields level | negative << width, in double as the reference does:
// level to double, times step, rounded once to float.
bool QsgdValues(const std::uint32_t* fields, std::size_t n, double step, std::uint32_t s,
                unsigned width, float* out, bool overwrite) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const hn::Rebind<std::uint32_t, decltype(dd)> du;
  const hn::Rebind<std::int32_t, decltype(dd)> di;
  const std::size_t lanes = hn::Lanes(dd);
  const auto mask = hn::Set(du, (std::uint32_t{1} << width) - 1);
  const auto vs = hn::Set(du, s);
  const auto vstep = hn::Set(dd, step);
  const auto vwidth = hn::Set(du, width);
  auto bad = hn::Zero(du);
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t count = std::min(lanes, n - i);
    HWY_ALIGN std::uint32_t fb[HWY_MAX_BYTES / 4] = {};
    HWY_ALIGN float ob[HWY_MAX_BYTES / 4] = {};
    const std::uint32_t* src = fields + i;
    float* dst = out + i;
    if (count < lanes) {
      std::memcpy(fb, src, 4 * count);
      std::memcpy(ob, dst, 4 * count);
      src = fb;
      dst = ob;
    }
    const auto f = hn::LoadU(du, src);
    const auto level = hn::And(f, mask);
    const auto negative = hn::Shr(f, vwidth);
    const auto invalid =
        hn::Or(hn::RebindMask(du, hn::Gt(hn::BitCast(di, level), hn::BitCast(di, vs))),
               hn::And(hn::Ne(negative, hn::Zero(du)), hn::Eq(level, hn::Zero(du))));
    bad = hn::Or(bad, hn::VecFromMask(du, invalid));
    const auto m = hn::DemoteTo(df, hn::Mul(hn::PromoteTo(dd, hn::BitCast(di, level)), vstep));
    auto x = hn::BitCast(df, hn::Or(hn::BitCast(du, m), hn::ShiftLeft<31>(negative)));
    if (!overwrite) x = hn::Add(hn::LoadU(df, dst), x);
    hn::StoreU(x, df, dst);
    if (count < lanes) std::memcpy(out + i, ob, 4 * count);
  }
  return !hn::AllTrue(du, hn::Eq(bad, hn::Zero(du)));
}

// out[i] = (or +=) table[field i] for the n = 8·nb/FW fields of nb whole bytes (FW-bit fields,
// least significant first); returns true if invalid(field) for some field.
template <int FW, class Invalid>
HWY_INLINE bool TableDecode(const std::uint8_t* bytes, std::size_t nb, const float* table,
                            const Invalid& invalid, float* out, bool overwrite) {
  const DF df;
  const DU du;
  const DI di;
  const std::size_t n = nb * 8 / FW;
#if HWY_TARGET == HWY_SCALAR
  bool bad = false;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t f = (std::uint32_t{bytes[i * FW / 8]} >> (i * FW % 8)) & ((1U << FW) - 1);
    bad |= !hn::AllFalse(du, invalid(hn::Set(du, f)));
    out[i] = overwrite ? table[f] : out[i] + table[f];
  }
  static_cast<void>(df);
  static_cast<void>(di);
  return bad;
#else
  const hn::Rebind<std::uint8_t, DU> d8;
  const std::size_t lanes = hn::Lanes(du);
  constexpr unsigned kPerByteLog2 = FW == 8 ? 0 : FW == 4 ? 1 : 2;
  // Lane l takes byte l >> kPerByteLog2 of the group, bits FW·(l mod per byte) up.
  const auto iota = hn::Iota(du, 0);
  const auto spread = hn::IndicesFromVec(du, hn::ShiftRight<kPerByteLog2>(iota));
  const auto shift =
      hn::ShiftLeft < FW == 2 ? 1 : 2 > (hn::And(iota, hn::Set(du, (1U << kPerByteLog2) - 1)));
  const auto mask = hn::Set(du, (1U << FW) - 1);
  auto bad = hn::Zero(du);
  const std::size_t group_bytes = lanes * FW / 8;  // whole bytes per vector (lanes >= 4)
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t count = std::min(lanes, n - i);
    const std::uint8_t* src = bytes + i * FW / 8;
    HWY_ALIGN std::uint8_t pad[HWY_MAX_BYTES / 4] = {};
    if (i * FW / 8 + lanes > nb) {  // a full-width load would read past the bytes
      std::memcpy(pad, src, std::min(group_bytes, nb - i * FW / 8));
      src = pad;
    }
    auto f = hn::PromoteTo(du, hn::LoadU(d8, src));
    if constexpr (FW < 8) f = hn::And(hn::Shr(hn::TableLookupLanes(f, spread), shift), mask);
    bad = hn::Or(bad, hn::VecFromMask(du, invalid(f)));
    const auto x = hn::GatherIndex(df, table, hn::BitCast(di, f));
    Emit(x, out + i, count, overwrite);
  }
  return !hn::AllTrue(du, hn::Eq(bad, hn::Zero(du)));
#endif
}

// QSGD: field = level | negative << (FW - 1); ±(float)(step·level) as the reference computes it
// (in double, rounded once), looked up; invalid: level > s, or a signed zero level.
template <int FW>
HWY_INLINE bool QsgdValuesBytesT(const std::uint8_t* bytes, std::size_t nb, double step,
                                 std::uint32_t s, float* out, bool overwrite) {
  constexpr std::uint32_t kLevels = 1U << (FW - 1);
  HWY_ALIGN float table[2 * kLevels];
  for (std::uint32_t f = 0; f < 2 * kLevels; ++f) {
    const std::uint32_t level = f & (kLevels - 1);
    table[f] = std::bit_cast<float>(
        std::bit_cast<std::uint32_t>(static_cast<float>(step * static_cast<double>(level))) |
        ((f >> (FW - 1)) << 31));
  }
  const DU du;
  const auto vs = hn::Set(du, s);
  const auto level_mask = hn::Set(du, kLevels - 1);
  const auto sign_bit = hn::Set(du, kLevels);
  return TableDecode<FW>(
      bytes, nb, table,
      [&](hn::Vec<DU> f) HWY_ATTR {
        const auto level = hn::And(f, level_mask);
        const auto zero = hn::Eq(level, hn::Zero(du));
        return hn::Or(hn::RebindMask(du, hn::Gt(hn::BitCast(DI(), level), hn::BitCast(DI(), vs))),
                      hn::And(zero, hn::Ne(hn::And(f, sign_bit), hn::Zero(du))));
      },
      out, overwrite);
}

bool QsgdValuesBytes(const std::uint8_t* bytes, std::size_t nb, unsigned fw, double step,
                     std::uint32_t s, float* out, bool overwrite) {
  if (fw == 2) return QsgdValuesBytesT<2>(bytes, nb, step, s, out, overwrite);
  if (fw == 4) return QsgdValuesBytesT<4>(bytes, nb, step, s, out, overwrite);
  return QsgdValuesBytesT<8>(bytes, nb, step, s, out, overwrite);
}

// TernGrad's codes 0 = +0, 1 = +scale, 2 = -scale, 3 = invalid (+0, as the reference decoder).
bool TernGradValuesBytes(const std::uint8_t* bytes, std::size_t nb, float scale, float* out,
                         bool overwrite) {
  HWY_ALIGN const float table[4] = {0.0f, scale, -scale, 0.0f};
  const DU du;
  const auto three = hn::Set(du, 3U);
  return TableDecode<2>(
      bytes, nb, table, [&](hn::Vec<DU> f) HWY_ATTR { return hn::Eq(f, three); }, out, overwrite);
}

// Bits from a lane mask, 8 per byte, least significant first: nb bytes from the predicate on
// consecutive groups of lanes (8 elements per byte whatever the lane count).
template <class Pred>
HWY_INLINE void MaskBytes(std::size_t nb, std::uint8_t* bytes, Pred pred) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t n = 8 * nb;
  std::size_t i = 0;
  if (lanes >= 8) {
    for (; i + lanes <= n; i += lanes) hn::StoreMaskBits(du, pred(i), bytes + i / 8);
  } else {
    for (; i + 8 <= n; i += 8) {
      std::uint8_t b = 0;
      for (std::size_t t = 0; t < 8; t += lanes) {
        std::uint8_t part = 0;
        hn::StoreMaskBits(du, pred(i + t), &part);
        b = static_cast<std::uint8_t>(b | (part << t));
      }
      bytes[i / 8] = b;
    }
  }
  // Whole bytes left over (fewer than a vector): lane by lane through a padded copy.
  for (; i < n; i += 8) {
    std::uint8_t b = 0;
    for (std::size_t t = 0; t < 8; t += std::min<std::size_t>(lanes, 8)) {
      std::uint8_t part[HWY_MAX_BYTES / 32 + 1] = {};
      hn::StoreMaskBits(du, pred(i + t), part);
      b = static_cast<std::uint8_t>(b |
                                    ((part[0] & ((lanes >= 8) ? 0xFF : (1 << lanes) - 1)) << t));
    }
    bytes[i / 8] = b;
  }
}

void SignBytes(const float* u, std::size_t nb, std::uint8_t* bytes) {
  const DF df;
  const DU du;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t n = 8 * nb;
  MaskBytes(nb, bytes, [&](std::size_t i) HWY_ATTR {
    if (i + lanes <= n) return hn::RebindMask(du, hn::Lt(hn::LoadU(df, u + i), hn::Zero(df)));
    HWY_ALIGN float tmp[HWY_MAX_BYTES / 4] = {};
    std::memcpy(tmp, u + i, 4 * (n - i));
    return hn::RebindMask(du, hn::Lt(hn::Load(df, tmp), hn::Zero(df)));
  });
}

void NonzeroBytes(const std::uint32_t* fields, std::size_t nb, std::uint32_t mask,
                  std::uint8_t* bytes) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const std::size_t n = 8 * nb;
  const auto vmask = hn::Set(du, mask);
  MaskBytes(nb, bytes, [&](std::size_t i) HWY_ATTR {
    if (i + lanes <= n) return hn::Ne(hn::And(hn::LoadU(du, fields + i), vmask), hn::Zero(du));
    HWY_ALIGN std::uint32_t tmp[HWY_MAX_BYTES / 4] = {};
    std::memcpy(tmp, fields + i, 4 * (n - i));
    return hn::Ne(hn::And(hn::Load(du, tmp), vmask), hn::Zero(du));
  });
}

void SignValues(const std::uint8_t* bytes, std::size_t n, float scale, float* out, bool overwrite) {
  const DF df;
  const DU du;
  const std::size_t lanes = hn::Lanes(du);  // at most 16 on x86, so a group's bits fit 32 bits
  const auto scale_bits = hn::Set(du, std::bit_cast<std::uint32_t>(scale));
  const auto lane_bit = hn::Shl(hn::Set(du, 1U), hn::Iota(du, 0));
  const auto sign = hn::Set(du, 0x80000000U);
  for (std::size_t i = 0; i < n; i += lanes) {
    const std::size_t count = std::min(lanes, n - i);
    // The group's bits: bytes i/8 .. (i + count - 1)/8, from bit i mod 8.
    std::uint64_t word = 0;
    for (std::size_t k = 0; k < (i % 8 + count + 7) / 8; ++k) {
      word |= std::uint64_t{bytes[i / 8 + k]} << (8 * k);
    }
    const auto group = hn::Set(du, static_cast<std::uint32_t>(word >> (i % 8)));
    const auto x = hn::BitCast(
        df, hn::Xor(scale_bits, hn::IfThenElseZero(hn::TestBit(group, lane_bit), sign)));
    Emit(x, out + i, count, overwrite);
  }
}

// Σ term(u_i) in double over 8 interleaved partial sums (element i goes to sum i mod 8), combined
// as ((s0+s4)+(s2+s6))+((s1+s5)+(s3+s7)): the order of the scalar references. A vector of
// `lanes` doubles holds `lanes` consecutive partial sums; 8 / lanes vectors hold them all.
template <class Term>
HWY_INLINE double FixedOrderSum(const float* u, std::size_t n, Term term) {
  const hn::CappedTag<double, 8> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const std::size_t lanes = hn::Lanes(dd);
  const std::size_t k = 8 / lanes;
  // At most eight accumulators (one lane each on the one-lane fallback).
  auto a0 = hn::Zero(dd);
  auto a1 = hn::Zero(dd);
  auto a2 = hn::Zero(dd);
  auto a3 = hn::Zero(dd);
  auto a4 = hn::Zero(dd);
  auto a5 = hn::Zero(dd);
  auto a6 = hn::Zero(dd);
  auto a7 = hn::Zero(dd);
  const auto at = [&](std::size_t i)
                      HWY_ATTR { return term(hn::PromoteTo(dd, hn::LoadU(df, u + i))); };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 = hn::Add(a0, at(i));
    if (k > 1) a1 = hn::Add(a1, at(i + lanes));
    if (k > 2) {
      a2 = hn::Add(a2, at(i + 2 * lanes));
      a3 = hn::Add(a3, at(i + 3 * lanes));
    }
    if (k > 4) {
      a4 = hn::Add(a4, at(i + 4 * lanes));
      a5 = hn::Add(a5, at(i + 5 * lanes));
      a6 = hn::Add(a6, at(i + 6 * lanes));
      a7 = hn::Add(a7, at(i + 7 * lanes));
    }
  }
  HWY_ALIGN double acc[8 + HWY_MAX_BYTES / 8] = {};
  hn::Store(a0, dd, acc);
  if (k > 1) hn::Store(a1, dd, acc + lanes);
  if (k > 2) {
    hn::Store(a2, dd, acc + 2 * lanes);
    hn::Store(a3, dd, acc + 3 * lanes);
  }
  if (k > 4) {
    hn::Store(a4, dd, acc + 4 * lanes);
    hn::Store(a5, dd, acc + 5 * lanes);
    hn::Store(a6, dd, acc + 6 * lanes);
    hn::Store(a7, dd, acc + 7 * lanes);
  }
  for (std::size_t t = 0; i + t < n; ++t) {
    HWY_ALIGN float one[HWY_MAX_BYTES / 4] = {};
    one[0] = u[i + t];
    acc[t] += hn::GetLane(term(hn::PromoteTo(dd, hn::Load(df, one))));
  }
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

double SumAbs(const float* u, std::size_t n) {
  return FixedOrderSum(u, n, [](auto v) HWY_ATTR { return hn::Abs(v); });
}

double SumSquares(const float* u, std::size_t n) {
  return FixedOrderSum(u, n, [](auto v) HWY_ATTR { return hn::Mul(v, v); });
}

// f(1 − f) for f = sr − ⌊sr⌋, sr = min(|x|·inv, s) in [0, 2^20].
HWY_INLINE double VarianceSum(const float* u, std::size_t n, double inv, double s) {
  const hn::CappedTag<double, 8> dd;
  const auto vinv = hn::Set(dd, inv);
  const auto vs = hn::Set(dd, s);
  const auto one = hn::Set(dd, 1.0);
  return FixedOrderSum(u, n, [&](auto v) HWY_ATTR {
    const auto sr = hn::Min(hn::Mul(hn::Abs(v), vinv), vs);
    const auto f = hn::Sub(sr, hn::Floor(sr));
    return hn::Mul(f, hn::Sub(one, f));
  });
}

double RoundingVarianceSum(const float* u, std::size_t n, double inv, double s) {
  return VarianceSum(u, n, inv, s);
}

void BucketSumSquares(const float* u, std::size_t n, std::size_t bucket, double* out) {
  for (std::size_t first = 0, k = 0; first < n; first += bucket, ++k) {
    out[k] = SumSquares(u + first, std::min(bucket, n - first));
  }
}

void BucketRoundingVarianceSums(const float* u, std::size_t n, std::size_t bucket,
                                const double* inv, double s, double* out) {
  for (std::size_t first = 0, k = 0; first < n; first += bucket, ++k) {
    out[k] = VarianceSum(u + first, std::min(bucket, n - first), inv[k], s);
  }
}

// Elias gamma codes, least significant bit first (EliasGamma::word), of the gaps below
// kGapTable, each as code | width << 16.
constexpr std::size_t kGapTable = 256;
constexpr std::array<std::uint32_t, kGapTable> MakeGapTable() {
  std::array<std::uint32_t, kGapTable> t{};
  for (std::uint32_t g = 1; g < kGapTable; ++g) {
    unsigned width = 0;
    const auto code = static_cast<std::uint32_t>(EliasGamma::word(g, width));
    t[g] = code | width << 16;
  }
  return t;
}
constexpr std::array<std::uint32_t, kGapTable> kGapCodes = MakeGapTable();

// Per field: the sign bit, then the gamma code of the level, as one value (code) and its width
// (for level 0 both are unspecified). With level < 2^16, L = ⌊log2 level⌋ <= 15: the gamma code
// is (2·level + 1)·2^L less its top bit 2^(2L+1), so sign + code fit 32 bits.
HWY_INLINE void LevelCodesOf(hn::Vec<DU> f, unsigned width, std::uint32_t* code,
                             std::uint32_t* bits) {
  const DF df;
  const DU du;
  const DI di;
  const auto one = hn::Set(du, 1U);
  const auto level = hn::And(f, hn::Set(du, (1U << width) - 1));
  // ⌊log2 level⌋ from the exponent of the (exact) float; 0 for level 0.
  const auto exp = hn::BitCast(di, hn::ShiftRight<23>(hn::BitCast(du, hn::ConvertTo(df, level))));
  const auto l = hn::BitCast(du, hn::Max(hn::Sub(exp, hn::Set(di, 127)), hn::Zero(di)));
  const auto l2 = hn::Add(l, l);
  const auto gamma =
      hn::Xor(hn::Shl(hn::Add(hn::Add(level, level), one), l), hn::Shl(one, hn::Add(l2, one)));
  const auto sign = hn::ShiftRight<31>(hn::Shl(f, hn::Set(du, 31 - width)));
  hn::Store(hn::Or(hn::Add(gamma, gamma), sign), du, code);
  hn::Store(hn::Add(l2, hn::Set(du, 2U)), du, bits);
}

// LevelCodesOf for fields[0..n); code and bits hold a vector more than n.
HWY_INLINE void LevelCodes(const std::uint32_t* fields, std::size_t n, unsigned width,
                           std::uint32_t* code, std::uint32_t* bits) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    LevelCodesOf(hn::LoadU(du, fields + i), width, code + i, bits + i);
  }
  if (i < n) {
    HWY_ALIGN std::uint32_t tmp[HWY_MAX_BYTES / 4] = {};
    std::memcpy(tmp, fields + i, 4 * (n - i));
    LevelCodesOf(hn::Load(du, tmp), width, code + i, bits + i);
  }
}

// Elements QsgdEliasGamma quantizes at a time (a multiple of 64: whole words of non-zero flags).
constexpr std::size_t kEliasGroup = 256;

// The quantized levels of one group, as QsgdEliasGamma codes them.
struct EliasGroup {
  std::uint64_t nonzero[kEliasGroup / 64];  // bit t of word w: level 64w + t is non-zero
  HWY_ALIGN std::uint32_t code[kEliasGroup + HWY_MAX_BYTES / 4];  // sign and level codes
  HWY_ALIGN std::uint32_t bits[kEliasGroup + HWY_MAX_BYTES / 4];  // and their widths
};

std::size_t QsgdEliasGamma(const float* u, std::size_t n, std::uint64_t first, float inv,
                           std::uint32_t s, const RoundingKey& key, std::uint64_t& next_io,
                           BitCursor& cur, std::size_t room) {
  const unsigned width = static_cast<unsigned>(std::bit_width(s));
  const std::uint32_t mask = (std::uint32_t{1} << width) - 1;
  const auto s_f = static_cast<float>(s);
  // Quantizes group [at, at + kEliasGroup) ∩ [0, n) into g.
  const auto quantize = [&](std::size_t at, EliasGroup& g) HWY_ATTR {
    const std::size_t m = std::min(kEliasGroup, n - at);
    HWY_ALIGN std::uint32_t r[kEliasGroup];
    HWY_ALIGN std::uint32_t fields[kEliasGroup];
    RoundingBits(key, first + at, m, r);
    QsgdFieldsFromBits(u + at, m, r, inv, s_f, width, fields);
    const std::size_t whole = m / 8 * 8;
    auto* const bytes = reinterpret_cast<std::uint8_t*>(g.nonzero);
    std::memset(g.nonzero, 0, sizeof g.nonzero);
    NonzeroBytes(fields, whole / 8, mask, bytes);
    for (std::size_t t = whole; t < m; ++t) {
      bytes[t / 8] = static_cast<std::uint8_t>(bytes[t / 8] | ((fields[t] & mask) != 0) << (t % 8));
    }
    LevelCodes(fields, m, width, g.code, g.bits);
  };
  EliasGroup groups[2];
  std::uint64_t next = next_io;
  BitCursor c = cur;
  std::byte* const end = c.dst + room;
  std::size_t at = 0;
  if (n > 0) quantize(0, groups[0]);
  for (std::size_t k = 0; at < n; at += kEliasGroup, ++k) {
    // Worst case per non-zero: a gap code of at most 63 bits and 32 bits of sign and level; then
    // the 8-byte store.
    if (static_cast<std::size_t>(end - c.dst) < 12 * kEliasGroup + 16) break;
    // The next group's quantization first: its loads from memory then overlap this group's
    // coding, a loop of scalar steps (and the input after it is prefetched).
    if (at + kEliasGroup < n) quantize(at + kEliasGroup, groups[(k + 1) & 1]);
    const std::size_t ahead = at + kQsgdChunk;
    for (std::size_t t = 0; t < kEliasGroup && ahead + t < n; t += 16) {
      hwy::Prefetch(u + ahead + t);
    }
    const EliasGroup& g = groups[k & 1];
    for (std::size_t wi = 0; wi < kEliasGroup / 64; ++wi) {
      const std::uint64_t base = at + 64 * wi + 1;  // one past the element of bit 0
      const std::uint32_t* const cw = g.code + 64 * wi;
      const std::uint32_t* const bw = g.bits + 64 * wi;
      for (std::uint64_t word = g.nonzero[wi]; word != 0; word &= word - 1) {
        const auto t = static_cast<unsigned>(std::countr_zero(word));
        const std::uint64_t gap = base + t - next;
        next = base + t;
        const std::uint64_t level_code = cw[t];
        const unsigned level_bits = bw[t];
        if (gap < kGapTable) [[likely]] {
          const std::uint32_t e = kGapCodes[gap];
          const unsigned gap_bits = e >> 16;
          c.put_unchecked((e & 0xFFFF) | level_code << gap_bits, gap_bits + level_bits);
        } else {
          // L zeros, then a one and the L low bits of the gap (gap < 2^32, so L < 32).
          const auto l = static_cast<unsigned>(std::bit_width(gap)) - 1;
          if (l > 0) c.put_unchecked(0, l);
          c.put_unchecked((gap << 1 | 1) & ((std::uint64_t{1} << (l + 1)) - 1), l + 1);
          c.put_unchecked(level_code, level_bits);
        }
      }
    }
  }
  next_io = next;
  cur = c;
  return std::min(at, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(AllFinite);
HWY_EXPORT(MaxAbs);
HWY_EXPORT(RoundingBits);
HWY_EXPORT(QsgdFields);
HWY_EXPORT(TernGradFields);
HWY_EXPORT(TernGradValues);
HWY_EXPORT(QsgdValues);
HWY_EXPORT(QsgdValuesBytes);
HWY_EXPORT(TernGradValuesBytes);
HWY_EXPORT(SignBytes);
HWY_EXPORT(NonzeroBytes);
HWY_EXPORT(QsgdEliasGamma);
HWY_EXPORT(SignValues);
HWY_EXPORT(SumAbs);
HWY_EXPORT(SumSquares);
HWY_EXPORT(RoundingVarianceSum);
HWY_EXPORT(BucketSumSquares);
HWY_EXPORT(BucketRoundingVarianceSums);

bool all_finite(const float* u, std::size_t n) noexcept {
  return HWY_DYNAMIC_DISPATCH(AllFinite)(u, n);
}
float max_abs(const float* u, std::size_t n) noexcept { return HWY_DYNAMIC_DISPATCH(MaxAbs)(u, n); }
void rounding_bits(const RoundingKey& key, std::uint64_t first, std::size_t n,
                   std::uint32_t* out) noexcept {
  HWY_DYNAMIC_DISPATCH(RoundingBits)(key, first, n, out);
}
void qsgd_fields(const float* u, std::size_t n, std::uint64_t first, float inv, std::uint32_t s,
                 unsigned width, const RoundingKey& key, std::uint32_t* fields) noexcept {
  HWY_DYNAMIC_DISPATCH(QsgdFields)(u, n, first, inv, s, width, key, fields);
}
void terngrad_fields(const float* u, std::size_t n, std::uint64_t first, float scale, float inv,
                     const RoundingKey& key, std::uint32_t* fields) noexcept {
  HWY_DYNAMIC_DISPATCH(TernGradFields)(u, n, first, scale, inv, key, fields);
}
bool terngrad_values(const std::uint32_t* fields, std::size_t n, float scale, float* out,
                     bool overwrite) noexcept {
  return HWY_DYNAMIC_DISPATCH(TernGradValues)(fields, n, scale, out, overwrite);
}
bool qsgd_values(const std::uint32_t* fields, std::size_t n, double step, std::uint32_t s,
                 unsigned width, float* out, bool overwrite) noexcept {
  return HWY_DYNAMIC_DISPATCH(QsgdValues)(fields, n, step, s, width, out, overwrite);
}
bool qsgd_values_bytes(const std::uint8_t* bytes, std::size_t nb, unsigned fw, double step,
                       std::uint32_t s, float* out, bool overwrite) noexcept {
  return HWY_DYNAMIC_DISPATCH(QsgdValuesBytes)(bytes, nb, fw, step, s, out, overwrite);
}
bool terngrad_values_bytes(const std::uint8_t* bytes, std::size_t nb, float scale, float* out,
                           bool overwrite) noexcept {
  return HWY_DYNAMIC_DISPATCH(TernGradValuesBytes)(bytes, nb, scale, out, overwrite);
}
void sign_bytes(const float* u, std::size_t nb, std::uint8_t* bytes) noexcept {
  HWY_DYNAMIC_DISPATCH(SignBytes)(u, nb, bytes);
}
void nonzero_bytes(const std::uint32_t* fields, std::size_t nb, std::uint32_t mask,
                   std::uint8_t* bytes) noexcept {
  HWY_DYNAMIC_DISPATCH(NonzeroBytes)(fields, nb, mask, bytes);
}
std::size_t qsgd_elias_gamma(const float* u, std::size_t n, std::uint64_t first, float inv,
                             std::uint32_t s, const RoundingKey& key, std::uint64_t& next,
                             BitCursor& cur, std::size_t room) noexcept {
  return HWY_DYNAMIC_DISPATCH(QsgdEliasGamma)(u, n, first, inv, s, key, next, cur, room);
}
void sign_values(const std::uint8_t* bytes, std::size_t n, float scale, float* out,
                 bool overwrite) noexcept {
  HWY_DYNAMIC_DISPATCH(SignValues)(bytes, n, scale, out, overwrite);
}
double sum_abs(const float* u, std::size_t n) noexcept {
  return HWY_DYNAMIC_DISPATCH(SumAbs)(u, n);
}
double sum_squares(const float* u, std::size_t n) noexcept {
  return HWY_DYNAMIC_DISPATCH(SumSquares)(u, n);
}
double rounding_variance_sum(const float* u, std::size_t n, double inv, double s) noexcept {
  return HWY_DYNAMIC_DISPATCH(RoundingVarianceSum)(u, n, inv, s);
}
void bucket_sum_squares(const float* u, std::size_t n, std::size_t bucket, double* out) noexcept {
  HWY_DYNAMIC_DISPATCH(BucketSumSquares)(u, n, bucket, out);
}
void bucket_rounding_variance_sums(const float* u, std::size_t n, std::size_t bucket,
                                   const double* inv, double s, double* out) noexcept {
  HWY_DYNAMIC_DISPATCH(BucketRoundingVarianceSums)(u, n, bucket, inv, s, out);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
