// The sign codec's fused kernels on Highway (kernels/sign.hpp): compiled for every target by
// foreach_target.h, dispatched by HWY_DYNAMIC_DISPATCH. Written as kernels rather than left to the
// compiler because it does not fuse the compare-to-mask, the double-precision |u| sum and the bit
// stream into one loop.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/codec/kernels/sign.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "src/codec/kernels/sign.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::codec::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The elements of one 64-bit word of sign bits: the kernels' step.
constexpr std::size_t kBlock = 64;

// Elements ahead of the current position to prefetch (prefetches past the end of an array are
// harmless hints); set by measurement on AVX-512.
constexpr std::size_t kPrefetchAhead = 1024;

// The |u| sum's partial sums live in vectors of up to 4 doubles, 8 / lanes of them: 4 lanes on
// AVX2 and AVX-512 (each partial sum is a chain of dependent adds, so add latency bounds the
// kernel, and 256-bit double adds have a shorter latency than 512-bit ones on current cores: 2 vs
// 4 cycles measured), 2 on SSE4, 1 on the scalar fallback. The same sums in the same order on
// every target.
using DD = hn::CappedTag<double, 4>;
using DH = hn::Rebind<float, DD>;   // the floats promoted into those lanes
using DF = hn::ScalableTag<float>;  // full vectors for the sign bits
using VD = hn::Vec<DD>;
using VF = hn::Vec<DF>;

// The mask's lanes as the low bits of a word (lane 0 lowest).
HWY_INLINE std::uint64_t BitsOf(hn::Mask<DF> m) {
  std::uint8_t bytes[8] = {};
  hn::StoreMaskBits(DF(), m, bytes);
  std::uint64_t bits = 0;
  std::memcpy(&bits, bytes, 8);
  return bits;
}

// A mask with lane l set where bit l of `bits` is.
HWY_INLINE hn::Mask<DF> MaskOf(std::uint64_t bits) {
  std::uint8_t bytes[8];
  std::memcpy(bytes, &bits, 8);
  return hn::LoadMaskBits(DF(), bytes);
}

// Masked loads and stores that touch no memory outside their lanes: AVX2 and AVX-512 have them;
// on the other targets a partial vector goes through a buffer (their MaskedLoad reads the whole
// vector). This part is compiled once per target, so the macro is reset first: left over from an
// AVX2 pass it would make SSE4 and SCALAR read past the end of the input.
#undef THINWIRE_SIGN_MASKED_MEMORY
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define THINWIRE_SIGN_MASKED_MEMORY 1
#endif

// Lanes [0, count) of p, zeros above (count may exceed the lanes).
template <class D>
HWY_INLINE hn::Vec<D> LoadFirst(D d, const float* p, std::size_t count) {
  if (count >= hn::Lanes(d)) return hn::LoadU(d, p);
#if defined(THINWIRE_SIGN_MASKED_MEMORY)
  return hn::MaskedLoad(hn::FirstN(d, count), d, p);
#else
  HWY_ALIGN float buf[HWY_MAX_BYTES / 4] = {};
  std::memcpy(buf, p, count * sizeof(float));
  return hn::Load(d, buf);
#endif
}

// Stores lanes [0, count) of x to p (count may exceed the lanes).
HWY_INLINE void StoreFirst(VF x, float* p, std::size_t count) {
  const DF df;
  if (count >= hn::Lanes(df)) return hn::StoreU(x, df, p);
#if defined(THINWIRE_SIGN_MASKED_MEMORY)
  hn::BlendedStore(x, hn::FirstN(df, count), df, p);
#else
  HWY_ALIGN float buf[HWY_MAX_BYTES / 4];
  hn::Store(x, df, buf);
  std::memcpy(p, buf, count * sizeof(float));
#endif
}

// Elements left of `count` from `offset` on.
HWY_INLINE std::size_t Left(std::size_t count, std::size_t offset) {
  return count > offset ? count - offset : 0;
}

// Partial sum t (of 8) gets the elements i with i mod 8 = t, in element order: a0 holds sums
// 0..lanes-1, a1 the next lanes ... (a1..a7 unused where fewer vectors hold all 8).
struct AbsSum {
  VD a0, a1, a2, a3, a4, a5, a6, a7;

  // Adds |p[0..8)|, of which the first `count` are elements (the others count as +0: s + 0 = s
  // exactly for the non-negative s here). float -> double is exact, so |.| after the conversion
  // is |.| before.
  template <bool kFull>
  HWY_INLINE void Add8(const float* p, std::size_t count) {
    const DD dd;
    const DH dh;
    const std::size_t lanes = hn::Lanes(dd);
    const auto at = [&](std::size_t j) HWY_ATTR {
      const auto x = kFull ? hn::LoadU(dh, p + j) : LoadFirst(dh, p + j, Left(count, j));
      return hn::Abs(hn::PromoteTo(dd, x));
    };
    a0 = hn::Add(a0, at(0));
    a1 = hn::Add(a1, at(lanes));
    if (lanes < 4) {
      a2 = hn::Add(a2, at(2 * lanes));
      a3 = hn::Add(a3, at(3 * lanes));
    }
    if (lanes < 2) {
      a4 = hn::Add(a4, at(4 * lanes));
      a5 = hn::Add(a5, at(5 * lanes));
      a6 = hn::Add(a6, at(6 * lanes));
      a7 = hn::Add(a7, at(7 * lanes));
    }
  }

  // ((s0+s4)+(s2+s6))+((s1+s5)+(s3+s7)), sum_abs's combination order.
  HWY_INLINE double Total() const {
    const DD dd;
    const std::size_t lanes = hn::Lanes(dd);
    HWY_ALIGN double s[8 + HWY_MAX_BYTES / 8] = {};
    hn::Store(a0, dd, s);
    hn::Store(a1, dd, s + lanes);
    if (lanes < 4) {
      hn::Store(a2, dd, s + 2 * lanes);
      hn::Store(a3, dd, s + 3 * lanes);
    }
    if (lanes < 2) {
      hn::Store(a4, dd, s + 4 * lanes);
      hn::Store(a5, dd, s + 5 * lanes);
      hn::Store(a6, dd, s + 6 * lanes);
      hn::Store(a7, dd, s + 7 * lanes);
    }
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
  }
};

// Adds |p[0..count)| to `sum` and returns their sign bits (bit i set where p[i] < 0: false for
// -0, and for NaN, which the codec rejects through the non-finite sum); count = 64 if kFull, else
// below 64.
template <bool kBits, bool kFull>
HWY_INLINE std::uint64_t Block(const float* p, AbsSum& sum, std::size_t count) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  std::uint64_t word = 0;
  HWY_UNROLL(8)
  for (std::size_t e = 0; e < (kFull ? kBlock : count); e += 8) {
    sum.Add8<kFull>(p + e, Left(count, e));
  }
  if constexpr (kBits) {
    HWY_UNROLL(16)
    for (std::size_t k = 0; k < (kFull ? kBlock : count); k += lanes) {
      const auto x = kFull ? hn::LoadU(df, p + k) : LoadFirst(df, p + k, count - k);
      word |= BitsOf(hn::Lt(x, hn::Zero(df))) << k;
    }
  }
  return word;
}

template <bool kBits>
HWY_INLINE double BitsSum(const float* u, std::size_t n, SignBits* bits) {
  const DD dd;
  AbsSum sum{hn::Zero(dd), hn::Zero(dd), hn::Zero(dd), hn::Zero(dd),
             hn::Zero(dd), hn::Zero(dd), hn::Zero(dd), hn::Zero(dd)};
  std::byte* next = kBits ? bits->next : nullptr;
  std::uint64_t acc = kBits ? bits->acc : 0;
  const unsigned used = kBits ? bits->used : 0;  // constant: whole words keep the offset
  std::size_t i = 0;
  // Each 64 elements take many instructions (the add chains wait on every load), so the window
  // of instructions in flight spans fewer cache lines than a plain copy loop's and the memory
  // stream runs short of requests on vectors larger than the cache: fetch the input ahead
  // (measured on AVX-512: 2^24 encode 2.2 -> 5.5 G el/s thread time).
  for (; n - i >= kBlock; i += kBlock) {
    HWY_UNROLL(4)
    for (std::size_t line = 0; line < kBlock; line += 16) {
      hwy::Prefetch(u + i + line + kPrefetchAhead);
    }
    const std::uint64_t word = Block<kBits, true>(u + i, sum, kBlock);
    if constexpr (kBits) {
      const std::uint64_t out = acc | (word << used);
      std::memcpy(next, &out, 8);
      next += 8;
      acc = (word >> 1) >> (63 - used);  // the bits that did not fit; none when used = 0
    }
  }
  unsigned now_used = used;
  if (i < n) {
    const std::size_t rest = n - i;  // 1..63
    const std::uint64_t word = Block<kBits, false>(u + i, sum, rest);
    if constexpr (kBits) {
      acc |= word << used;
      now_used = used + static_cast<unsigned>(rest);
      if (now_used >= 64) {
        std::memcpy(next, &acc, 8);
        next += 8;
        acc = (word >> 1) >> (63 - used);
        now_used -= 64;
      }
    }
  }
  if constexpr (kBits) *bits = SignBits{next, acc, now_used};
  return sum.Total();
}

double SignBitsSum(const float* u, std::size_t n, SignBits* bits) {
  return BitsSum<true>(u, n, bits);
}

double SignSumAbs(const float* u, std::size_t n) { return BitsSum<false>(u, n, nullptr); }

// The 64 message bits from bit q on (zero past the end of bytes[0..size)).
HWY_INLINE std::uint64_t Window64(const std::byte* bytes, std::size_t size, std::uint64_t q) {
  const auto byte = static_cast<std::size_t>(q / 8);
  const auto shift = static_cast<unsigned>(q % 8);
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  if (size - byte >= 9) {
    std::memcpy(&lo, bytes + byte, 8);
    hi = static_cast<std::uint64_t>(bytes[byte + 8]);
  } else {
    unsigned char tail[16] = {};
    std::memcpy(tail, bytes + byte, size - byte);
    std::memcpy(&lo, tail, 8);
    hi = tail[8];
  }
  return (lo >> shift) | ((hi << 1) << (63 - shift));
}

// o[0..count) = (or +=) minus where bit i of `word` is set, else plus; count = 64 if kFull,
// else below 64.
template <bool kOverwrite, bool kFull>
HWY_INLINE void Values64(std::uint64_t word, VF plus, VF minus, float* o, std::size_t count) {
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  HWY_UNROLL(16)
  for (std::size_t k = 0; k < (kFull ? kBlock : count); k += lanes) {
    const VF x = hn::IfThenElse(MaskOf(word >> k), minus, plus);
    if constexpr (kFull) {
      hn::StoreU(kOverwrite ? x : hn::Add(hn::LoadU(df, o + k), x), df, o + k);
    } else {
      StoreFirst(kOverwrite ? x : hn::Add(LoadFirst(df, o + k, count - k), x), o + k, count - k);
    }
  }
}

// out[0..count) for count < 64 elements from message bit q on.
template <bool kOverwrite>
HWY_INLINE void ValuesPartial(const std::byte* bytes, std::size_t size, std::uint64_t q,
                              std::size_t count, VF plus, VF minus, float* out) {
  Values64<kOverwrite, false>(Window64(bytes, size, q), plus, minus, out, count);
}

template <bool kOverwrite>
HWY_INLINE void ValuesAt(const std::byte* bytes, std::size_t size, std::uint64_t bit, std::size_t n,
                         float scale, float* out) {
  const DF df;
  const VF plus = hn::Set(df, scale);
  const VF minus = hn::Set(df, -scale);  // scale with its sign bit flipped
  // The elements before the first 64-byte boundary of out go through partial stores, so that the
  // stores below fill whole cache lines (on AVX-512 one store each) instead of splitting them.
  const std::size_t head =
      std::min(n, (64 - reinterpret_cast<std::uintptr_t>(out) % 64) % 64 / sizeof(float));
  if (head > 0) ValuesPartial<kOverwrite>(bytes, size, bit, head, plus, minus, out);
  std::size_t i = head;
  // The output lines are requested ahead, for writing: the store stream otherwise waits on each
  // line's ownership request in turn (measured on AVX-512: 2^22 decode 5.8 -> 6.8 G el/s).
  for (; n - i >= kBlock; i += kBlock) {
    HWY_UNROLL(4)
    for (std::size_t line = 0; line < kBlock; line += 16) {
      __builtin_prefetch(out + i + line + kPrefetchAhead, /*rw=*/1, /*locality=*/3);
    }
    Values64<kOverwrite, true>(Window64(bytes, size, bit + i), plus, minus, out + i, kBlock);
  }
  if (i < n) ValuesPartial<kOverwrite>(bytes, size, bit + i, n - i, plus, minus, out + i);
}

void SignValuesAt(const std::byte* bytes, std::size_t size, std::uint64_t bit, std::size_t n,
                  float scale, float* out, bool overwrite) {
  if (overwrite) {
    ValuesAt<true>(bytes, size, bit, n, scale, out);
  } else {
    ValuesAt<false>(bytes, size, bit, n, scale, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::codec::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::codec::kernels {

HWY_EXPORT(SignBitsSum);
HWY_EXPORT(SignSumAbs);
HWY_EXPORT(SignValuesAt);

double sign_bits_sum(const float* u, std::size_t n, SignBits& bits) noexcept {
  return HWY_DYNAMIC_DISPATCH(SignBitsSum)(u, n, &bits);
}

double sign_sum_abs(const float* u, std::size_t n) noexcept {
  return HWY_DYNAMIC_DISPATCH(SignSumAbs)(u, n);
}

void sign_values_at(const std::byte* bytes, std::size_t size, std::uint64_t bit, std::size_t n,
                    float scale, float* out, bool overwrite) noexcept {
  HWY_DYNAMIC_DISPATCH(SignValuesAt)(bytes, size, bit, n, scale, out, overwrite);
}

}  // namespace thinwire::codec::kernels
#endif  // HWY_ONCE
