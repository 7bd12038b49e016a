// The packed QSGD / TernGrad decoders on Highway (kernels/decode.hpp; issue 7, ported in issue 20):
// compiled for every target by foreach_target.h, dispatched by HWY_DYNAMIC_DISPATCH.
//   2 and 4-bit fields: 16 fields at a time, each moved to the low bits of its own 32-bit lane by
//     a variable shift, then looked up in the bucket's 16-entry value table: one TableLookupLanes
//     where a vector holds 16 floats (AVX-512), else one per 16 / lanes table vector, merged by
//     the index's high bits (AVX2: 2, SSE4 and EMU128: 4).
//   8-bit fields: the field's magnitude (float)(step · level), the double product rounded once as
//     the reference does: on AVX3_DL looked up in the bucket's 128 magnitudes, split into four
//     byte planes (vpermi2b, the one intrinsic in this file: Highway 1.0.3 has no 128-entry byte
//     lookup); on AVX3 gathered from them; elsewhere computed in double per lane.
// The value tables are built per bucket in vectors from the reference formula (double step, one
// rounding to float), so the decoded floats are the reference ones bit for bit. Invalid fields:
// for 2 and 4 bits, a 16-bit set of the indices seen, tested against the invalid ones once per
// call; for 8 bits, the largest level and the signed zeros, checked once per call.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/decode.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "src/codec/kernels/decode.hpp"
#include "src/codec/qsgd_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
#if HWY_TARGET == HWY_SCALAR
using DH = DF;  // one lane: no halves
#else
using DH = hn::Half<DF>;  // half a vector of floats ...
#endif
using DD = hn::Rebind<double, DH>;        // ... promoted to doubles
using D8 = hn::Rebind<std::uint8_t, DF>;  // one byte per float lane
using VF = hn::Vec<DF>;
using VU = hn::Vec<DU>;

// Table vectors of the 16 small-field values (16 / lanes, at least 1).
constexpr std::size_t kLanes = HWY_LANES(float);
constexpr std::size_t kParts = kLanes >= 16 ? 1 : 16 / kLanes;

// Floats ahead of the output position to prefetch for writing: the stores then find their lines
// (mostly) owned already (about +20 % for overwrite at 2^22 elements on AVX-512; the distance
// matters little between 256 and 2048).
constexpr std::size_t kAhead = 512;

HWY_INLINE void PrefetchOut(const float* dst) { __builtin_prefetch(dst + kAhead, 1, 3); }

// (float)(step · level) per lane, level < 2^24 (exact as a float and as a double): the double
// product rounded once, as the scalar reference's magnitude().
HWY_INLINE VF Magnitudes(VU level, hn::Vec<DD> step) {
  const DF df;
  const DH dh;
  const DD dd;
  const VF l = hn::ConvertTo(df, hn::BitCast(DI(), level));
#if HWY_TARGET == HWY_SCALAR
  return hn::DemoteTo(dh, hn::Mul(step, hn::PromoteTo(dd, l)));
#else
  const auto lo = hn::DemoteTo(dh, hn::Mul(step, hn::PromoteTo(dd, hn::LowerHalf(dh, l))));
  const auto hi = hn::DemoteTo(dh, hn::Mul(step, hn::PromoteTo(dd, hn::UpperHalf(dh, l))));
  return hn::Combine(df, hi, lo);
#endif
}

// The reference step: scale / s in double (qsgd.cpp, magnitude()).
HWY_INLINE double QsgdStep(std::uint32_t scale_bits, std::uint32_t s) {
  return static_cast<double>(std::bit_cast<float>(scale_bits)) / static_cast<double>(s);
}

template <bool kOverwrite>
HWY_INLINE void Put(float* dst, VF v) {
  const DF df;
  if constexpr (!kOverwrite) v = hn::Add(hn::LoadU(df, dst), v);
  hn::StoreU(v, df, dst);
}

// 2 and 4-bit fields: the value of each index 0..15 (part t holds indices t·lanes ..) and the
// set of invalid indices.
struct SmallTable {
  VF values[kParts];
  std::uint32_t bad = 0;
};

// 4-bit QSGD fields f = level | negative << 3 (s <= 7); for s = 1, 2-bit fields f = level |
// negative << 1, repeated four times so that only an index's low 2 bits matter. s = 0: TernGrad
// codes 0 = 0, 1 = +scale, 2 = -scale (3, invalid, decodes as -scale), also repeated.
template <unsigned FW>
HWY_INLINE void BuildSmall(std::uint32_t scale_bits, std::uint32_t s, SmallTable& t) {
  const DU du;
  // TernGrad's ±scale is magnitude 1 of step = scale (exact: scale · 1 in double is scale).
  const double step =
      s == 0 ? static_cast<double>(std::bit_cast<float>(scale_bits)) : QsgdStep(scale_bits, s);
  const auto stepv = hn::Set(DD(), step);
  for (std::size_t p = 0; p < kParts; ++p) {
    const VU g = hn::And(hn::Iota(du, static_cast<std::uint32_t>(p * kLanes)), hn::Set(du, 15));
    VU level;
    VU negative;  // the sign bit of the value
    if constexpr (FW == 4) {
      level = hn::And(g, hn::Set(du, 7));
      negative = hn::ShiftLeft<28>(hn::And(g, hn::Set(du, 8)));
    } else if (s == 0) {
      level = hn::And(hn::Or(g, hn::ShiftRight<1>(g)), hn::Set(du, 1));
      negative = hn::ShiftLeft<30>(hn::And(g, hn::Set(du, 2)));
    } else {
      level = hn::And(g, hn::Set(du, 1));
      negative = hn::ShiftLeft<30>(hn::And(g, hn::Set(du, 2)));
    }
    t.values[p] = hn::Or(Magnitudes(level, stepv), hn::BitCast(DF(), negative));
  }
  if constexpr (FW == 4) {
    // level > s, or index 8 (a negative zero level).
    t.bad = 0x0100U;
    for (std::uint32_t level = s + 1; level < 8; ++level) t.bad |= 0x0101U << level;
  } else {
    t.bad = s == 0 ? 0x8888U : 0x4444U;  // TernGrad code 3; QSGD's negative zero level
  }
}

// The values at idx (each 0..15).
HWY_INLINE VF Lookup(const SmallTable& t, VU idx) {
  const DF df;
  const DU du;
  if constexpr (kParts == 1) {
    return hn::TableLookupLanes(t.values[0], hn::IndicesFromVec(df, idx));
  } else {
    const auto at = hn::IndicesFromVec(df, hn::And(idx, hn::Set(du, kLanes - 1)));
    const VU part = hn::ShiftRight<hwy::FloorLog2(kLanes)>(idx);
    VF v = hn::TableLookupLanes(t.values[0], at);
    for (std::size_t p = 1; p < kParts; ++p) {
      const auto here =
          hn::RebindMask(df, hn::Eq(part, hn::Set(du, static_cast<std::uint32_t>(p))));
      v = hn::IfThenElse(here, hn::TableLookupLanes(t.values[p], at), v);
    }
    return v;
  }
}

// The 16 fields of FW = 2 or 4 bits in `word` (field i at bit FW·i) into dst[0..16); their
// indices are added to `seen` (bit i of a lane set where index i was met).
template <unsigned FW, bool kOverwrite>
HWY_INLINE void Decode16(std::uint64_t word, const SmallTable& t, VU& seen, float* dst) {
  const DU du;
  const VU lo = hn::Set(du, static_cast<std::uint32_t>(word));
  const VU hi = hn::Set(du, static_cast<std::uint32_t>(word >> 32));
  for (std::size_t p = 0; p < 16; p += kLanes) {
    // Field p + i starts at bit FW·(p + i) of the word: in its low or high half.
    const VU bit = hn::Mul(hn::Iota(du, static_cast<std::uint32_t>(p)), hn::Set(du, FW));
    VU x = lo;
    if constexpr (FW == 4) x = hn::IfThenElse(hn::TestBit(bit, hn::Set(du, 32)), hi, lo);
    const VU idx = hn::And(hn::Shr(x, hn::And(bit, hn::Set(du, 31))), hn::Set(du, 15));
    seen = hn::Or(seen, hn::Shl(hn::Set(du, 1), idx));
    Put<kOverwrite>(dst + p, Lookup(t, idx));
  }
}

// Decodes n fields of FW = 2 or 4 bits from in[] into out; true if any is invalid.
template <unsigned FW, bool kOverwrite>
HWY_INLINE bool DecodeSmall(const std::uint8_t* in, std::size_t n, const SmallTable& t,
                            float* out) {
  constexpr std::size_t kBytes = 2 * FW;  // per 16 fields
  const DU du;
  VU seen = hn::Zero(du);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    std::uint64_t word = 0;
    std::memcpy(&word, in + i / 16 * kBytes, kBytes);
    PrefetchOut(out + i);
    Decode16<FW, kOverwrite>(word, t, seen, out + i);
  }
  if (i < n) {
    // The last < 16 fields: their bits only (zero fields above them are valid), through a buffer
    // so that no float past them is touched.
    const std::size_t count = n - i;
    const std::size_t bits = count * FW;
    std::uint64_t word = 0;
    std::memcpy(&word, in + i / 16 * kBytes, (bits + 7) / 8);
    word &= (std::uint64_t{1} << bits) - 1;
    HWY_ALIGN float buf[16] = {};
    if constexpr (!kOverwrite) std::memcpy(buf, out + i, count * sizeof(float));
    Decode16<FW, kOverwrite>(word, t, seen, buf);
    std::memcpy(out + i, buf, count * sizeof(float));
  }
  // Not TestBit: on some targets it asks for all of the bits, not any.
  return !hn::AllFalse(du, hn::Ne(hn::And(seen, hn::Set(du, t.bad)), hn::Zero(du)));
}

// 8-bit QSGD fields f = level | negative << 7 (64 <= s <= 127): s for the check, and the step
// (the magnitude computed per field) or, on AVX-512, the 128 magnitudes of the bucket, gathered
// per field: in double per field the arithmetic costs more than the gathers there (issue 20).
struct ByteTable {
  double step = 0;
  std::uint32_t s = 0;
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
  HWY_ALIGN float values[128];
#endif
};

// 0, 1, ..., 127 as doubles.
struct alignas(64) DoubleLevels {
  double v[128];
};
constexpr DoubleLevels MakeDoubleLevels() {
  DoubleLevels t{};
  for (int i = 0; i < 128; ++i) t.v[i] = i;
  return t;
}

HWY_INLINE void BuildBytes(std::uint32_t scale_bits, std::uint32_t s, ByteTable& t) {
  t.step = QsgdStep(scale_bits, s);
  t.s = s;
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
  {
    // The magnitudes of levels 16j .. 16j + 15: (float)(step · level), the double product rounded
    // once (as Magnitudes()), kept in registers.
    static constexpr DoubleLevels kLevels = MakeDoubleLevels();
    const DF df;
    const DD dd;
    const DH dh;
    const auto step = hn::Set(dd, t.step);
    VF m[8];
    for (std::size_t j = 0; j < 8; ++j) {
      const double* l = kLevels.v + 16 * j;
      m[j] = hn::Combine(df, hn::DemoteTo(dh, hn::Mul(hn::Load(dd, l + 8), step)),
                         hn::DemoteTo(dh, hn::Mul(hn::Load(dd, l), step)));
    }
    for (std::size_t j = 0; j < 8; ++j) hn::Store(m[j], df, t.values + 16 * j);
  }
#endif
}

// Running invalid-field summary of 8-bit fields: the largest level and the signed zeros.
struct ByteChecks {
  hn::Vec<hn::ScalableTag<std::uint8_t>> max_level;
  hn::Vec<hn::ScalableTag<std::uint8_t>> negative_zero;
};

// The 64 fields at x (of which the first `count` are stored) into dst.
template <bool kOverwrite>
HWY_INLINE void Decode64(const std::uint8_t* x, std::size_t count, const ByteTable& t,
                         ByteChecks& checks, float* dst) {
  const hn::ScalableTag<std::uint8_t> d8;
  const DU du;
  const auto sign = hn::Set(d8, 0x80);
  for (std::size_t k = 0; k < 64; k += hn::Lanes(d8)) {
    const auto v = hn::LoadU(d8, x + k);
    checks.max_level = hn::Max(checks.max_level, hn::AndNot(sign, v));
    checks.negative_zero = hn::Or(checks.negative_zero, hn::VecFromMask(d8, hn::Eq(v, sign)));
  }
  if (count == 64) {
    for (std::size_t k = 0; k < 64; k += 16) PrefetchOut(dst + k);
  }
  for (std::size_t p = 0; p < 64; p += kLanes) {
    const VU f = hn::PromoteTo(du, hn::LoadU(D8(), x + p));
    const VU level = hn::And(f, hn::Set(du, 0x7F));
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
    const VF magnitude = hn::GatherIndex(DF(), t.values, hn::BitCast(DI(), level));
#else
    const VF magnitude = Magnitudes(level, hn::Set(DD(), t.step));
#endif
    const VF v = hn::Or(magnitude, hn::BitCast(DF(), hn::ShiftLeft<24>(hn::AndNot(level, f))));
    if (count == 64) {
      Put<kOverwrite>(dst + p, v);
    } else if (p < count) {
      HWY_ALIGN float buf[kLanes] = {};
      const std::size_t m = std::min(kLanes, count - p);
      if constexpr (!kOverwrite) std::memcpy(buf, dst + p, m * sizeof(float));
      Put<kOverwrite>(buf, v);
      std::memcpy(dst + p, buf, m * sizeof(float));
    }
  }
}

// Decodes n 8-bit fields from in[] into out; true if any is invalid.
template <bool kOverwrite>
HWY_INLINE bool DecodeBytes(const std::uint8_t* in, std::size_t n, const ByteTable& t, float* out) {
  const hn::ScalableTag<std::uint8_t> d8;
  ByteChecks checks{hn::Zero(d8), hn::Zero(d8)};
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) Decode64<kOverwrite>(in + i, 64, t, checks, out + i);
  if (i < n) {
    // The last < 64 fields through a buffer: zero bytes above them are level 0, valid.
    std::uint8_t buf[64] = {};
    std::memcpy(buf, in + i, n - i);
    Decode64<kOverwrite>(buf, n - i, t, checks, out + i);
  }
  // Levels and s are below 128: a signed compare is the unsigned one.
  const hn::RebindToSigned<decltype(d8)> di8;
  const auto too_high =
      hn::Gt(hn::BitCast(di8, checks.max_level), hn::Set(di8, static_cast<std::int8_t>(t.s)));
  return !hn::AllFalse(di8, too_high) ||
         !hn::AllFalse(d8, hn::Ne(checks.negative_zero, hn::Zero(d8)));
}

template <unsigned FW>
struct TableFor {
  using type = SmallTable;
};
template <>
struct TableFor<8> {
  using type = ByteTable;
};

template <unsigned FW>
HWY_INLINE void Build(typename TableFor<FW>::type& t, std::uint32_t scale_bits, std::uint32_t s) {
  if constexpr (FW == 8) {
    BuildBytes(scale_bits, s, t);
  } else {
    BuildSmall<FW>(scale_bits, s, t);
  }
}

template <unsigned FW, bool kOverwrite>
HWY_INLINE bool DecodeFields(const std::uint8_t* in, std::size_t n,
                             const typename TableFor<FW>::type& t, float* out) {
  if constexpr (FW == 8) {
    return DecodeBytes<kOverwrite>(in, n, t, out);
  } else {
    return DecodeSmall<FW, kOverwrite>(in, n, t, out);
  }
}

template <unsigned FW, bool kOverwrite>
PackedStop Run(const std::uint8_t* in, std::uint64_t avail, const PackedLayout& L, PackedCursor& c,
               std::uint64_t& used, float* out) {
  // Fields per step, a whole number of bytes: stops inside a bucket leave the stream on a byte.
  constexpr std::size_t kGroup = FW == 8 ? 64 : 16;
  typename TableFor<FW>::type table{};
  if (c.left > 0) Build<FW>(table, c.scale_bits, L.s);
  std::uint64_t pos = 0;
  const auto stop = [&](PackedStop why) {
    used = pos;
    return why;
  };
  for (;;) {
    if (c.left == 0) {
      if (c.next >= L.d) return stop(PackedStop::kDone);
      if (pos % 8 != 0 || avail - pos < 32) return stop(PackedStop::kNeedInput);
      std::uint32_t bits = 0;
      std::memcpy(&bits, in + pos / 8, 4);
      if (!valid_scale_bits(bits)) return stop(PackedStop::kBadScale);  // as read_bucket_scale
      pos += 32;
      const std::size_t len = std::min(L.bucket, L.d - c.next);
      c.first = c.next;
      if (bits == 0) {  // a zero bucket sends only its scale
        if constexpr (kOverwrite) std::memset(out + c.next, 0, len * sizeof(float));
        c.next += len;
        continue;
      }
      c.left = len;
      c.scale_bits = bits;
      c.bad = false;
      Build<FW>(table, bits, L.s);
    }
    std::size_t n = c.left;
    const std::uint64_t fields = (avail - pos) / FW;
    if (fields < n) {
      n = static_cast<std::size_t>(fields / kGroup * kGroup);
      if (n == 0) return stop(PackedStop::kNeedInput);
    }
    c.bad |= DecodeFields<FW, kOverwrite>(in + pos / 8, n, table, out + c.next);
    pos += std::uint64_t{n} * FW;
    c.next += n;
    c.left -= n;
    if (c.left == 0 && c.bad) return stop(PackedStop::kBadField);
  }
}

PackedStop DecodePacked(const std::uint8_t* in, std::uint64_t avail_bits,
                        const PackedLayout& layout, PackedCursor* cursor, std::uint64_t* used,
                        float* out, bool overwrite) {
  PackedCursor& c = *cursor;
  std::uint64_t& u = *used;
  switch (layout.field_bits) {
    case 2:
      return overwrite ? Run<2, true>(in, avail_bits, layout, c, u, out)
                       : Run<2, false>(in, avail_bits, layout, c, u, out);
    case 4:
      return overwrite ? Run<4, true>(in, avail_bits, layout, c, u, out)
                       : Run<4, false>(in, avail_bits, layout, c, u, out);
    default:
      return overwrite ? Run<8, true>(in, avail_bits, layout, c, u, out)
                       : Run<8, false>(in, avail_bits, layout, c, u, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(DecodePacked);

PackedStop decode_packed(const std::uint8_t* in, std::uint64_t avail_bits,
                         const PackedLayout& layout, PackedCursor& cursor, std::uint64_t& used,
                         float* out, bool overwrite) noexcept {
  return HWY_DYNAMIC_DISPATCH(DecodePacked)(in, avail_bits, layout, &cursor, &used, out, overwrite);
}

PackedStop decode_packed_stream(BitReader& r, const PackedLayout& layout, PackedCursor& cursor,
                                float* out, bool overwrite) {
  constexpr std::size_t kWords = 1024;
  alignas(64) std::uint64_t buf[kWords];
  for (;;) {
    const std::uint8_t* in = nullptr;
    std::uint64_t bits = r.remaining();
    if (r.position() % 8 == 0) {
      in = reinterpret_cast<const std::uint8_t*>(r.bytes().data()) + r.position() / 8;
    } else {
      bits = std::min<std::uint64_t>(bits, 64 * kWords);
      BitReader ahead = r;
      ahead.get_words(reinterpret_cast<std::byte*>(buf), static_cast<std::size_t>(bits / 64));
      if (bits % 64 != 0) buf[bits / 64] = ahead.get(static_cast<unsigned>(bits % 64));
      in = reinterpret_cast<const std::uint8_t*>(buf);
    }
    const bool all = bits == r.remaining();
    std::uint64_t used = 0;
    const PackedStop stop = decode_packed(in, bits, layout, cursor, used, out, overwrite);
    r.skip(used);
    if (stop != PackedStop::kNeedInput) return stop;
    if (all || used == 0) {
      // Fields missing at the end of the stream: the reference decoder's read fails there too.
      if (cursor.left > 0) r.skip(r.remaining() + 1);
      return stop;
    }
  }
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
