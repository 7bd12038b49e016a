// XXH3-64's stripe accumulation on Highway (xxh3_kernel.hpp). Per stripe, for each 64-bit lane i
// of the state: key = data[i] ^ secret[i]; acc[i ^ 1] += data[i]; acc[i] += lo32(key) * hi32(key).
// Per block: acc ^= acc >> 47; acc ^= secret's last stripe; acc *= 0x9E3779B1 (mod 2^64).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/core/xxh3_kernel.cpp"
#include <hwy/cache_control.h>
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "src/core/xxh3_kernel.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
// One-lane vectors cannot be split into 32-bit halves: the same arithmetic on scalars.
void Xxh3Accumulate(std::uint64_t* acc, const unsigned char* stripes, std::size_t n,
                    std::uint32_t* stripe_in_block, const unsigned char* secret) {
  const auto load = [](const unsigned char* p) {
    std::uint64_t x;
    hwy::CopyBytes<8>(p, &x);
    return x;
  };
  std::uint32_t s = *stripe_in_block;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* in = stripes + kXxh3StripeBytes * i;
    for (std::size_t j = 0; j < 8; ++j) {
      const std::uint64_t data = load(in + 8 * j);
      const std::uint64_t k = data ^ load(secret + 8 * s + 8 * j);
      acc[j ^ 1] += data;
      acc[j] += (k & 0xFFFFFFFFU) * (k >> 32);
    }
    if (++s == kXxh3StripesPerBlock) {
      s = 0;
      for (std::size_t j = 0; j < 8; ++j) {
        std::uint64_t x = acc[j] ^ (acc[j] >> 47);
        x ^= load(secret + kXxh3SecretBytes - kXxh3StripeBytes + 8 * j);
        acc[j] = x * 0x9E3779B1U;
      }
    }
  }
  *stripe_in_block = s;
}
#else
// The state's eight lanes as 8 / N vectors of N lanes.
using D = hn::CappedTag<std::uint64_t, 8>;
using D32 = hn::Repartition<std::uint32_t, D>;
using V = hn::Vec<D>;
constexpr std::size_t kLanes = hn::MaxLanes(D());
constexpr std::size_t kVecs = 8 / kLanes;

HWY_INLINE V LoadBytes(const unsigned char* p) {
  return hn::LoadU(D(), reinterpret_cast<const std::uint64_t*>(p));
}

// x * 0x9E3779B1 mod 2^64, from two 32 x 32 -> 64-bit products.
HWY_INLINE V MulPrime32(V x) {
  const D d;
  const D32 d32;
  const auto prime = hn::BitCast(d32, hn::Set(d, 0x9E3779B1U));
  const V lo = hn::MulEven(hn::BitCast(d32, x), prime);
  const V hi = hn::MulEven(hn::BitCast(d32, hn::ShiftRight<32>(x)), prime);
  return hn::Add(lo, hn::ShiftLeft<32>(hi));
}

void Xxh3Accumulate(std::uint64_t* acc, const unsigned char* stripes, std::size_t n,
                    std::uint32_t* stripe_in_block, const unsigned char* secret) {
  static_assert(kLanes * kVecs == 8);
  const D d;
  const D32 d32;
  V a[kVecs];
  for (std::size_t v = 0; v < kVecs; ++v) a[v] = hn::LoadU(d, acc + v * kLanes);
  std::uint32_t s = *stripe_in_block;
  // A checksum pass over a message that is not in L1 (the decoder's) streams it: prefetched this
  // many stripes (4 KiB) ahead, it keeps more lines in flight than the loop's own loads do.
  constexpr std::size_t kAhead = 64;
  const std::size_t prefetch_end = n > kAhead ? n - kAhead : 0;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* in = stripes + kXxh3StripeBytes * i;
    if (i < prefetch_end) hwy::Prefetch(in + kXxh3StripeBytes * kAhead);
    const unsigned char* key = secret + 8 * s;
    V data[kVecs];
    for (std::size_t v = 0; v < kVecs; ++v) data[v] = LoadBytes(in + 8 * kLanes * v);
    for (std::size_t v = 0; v < kVecs; ++v) {
      const V k = hn::Xor(data[v], LoadBytes(key + 8 * kLanes * v));
      const V product = hn::MulEven(hn::BitCast(d32, k), hn::BitCast(d32, hn::ShiftRight<32>(k)));
      // acc[i ^ 1] += data[i]: swap neighbouring lanes (or neighbouring vectors of one lane).
      V swapped;
      if constexpr (kLanes >= 2) {
        swapped = hn::Reverse2(d, data[v]);
      } else {
        swapped = data[v ^ 1];
      }
      a[v] = hn::Add(a[v], hn::Add(product, swapped));
    }
    if (++s == kXxh3StripesPerBlock) {
      s = 0;
      const unsigned char* last = secret + kXxh3SecretBytes - kXxh3StripeBytes;
      for (std::size_t v = 0; v < kVecs; ++v) {
        V x = hn::Xor(a[v], hn::ShiftRight<47>(a[v]));
        x = hn::Xor(x, LoadBytes(last + 8 * kLanes * v));
        a[v] = MulPrime32(x);
      }
    }
  }
  for (std::size_t v = 0; v < kVecs; ++v) hn::StoreU(a[v], d, acc + v * kLanes);
  *stripe_in_block = s;
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::detail {

HWY_EXPORT(Xxh3Accumulate);

void xxh3_accumulate(std::uint64_t acc[8], const unsigned char* stripes, std::size_t n,
                     std::uint32_t* stripe_in_block, const unsigned char* secret) noexcept {
  HWY_DYNAMIC_DISPATCH(Xxh3Accumulate)(acc, stripes, n, stripe_in_block, secret);
}

}  // namespace thinwire::detail
#endif  // HWY_ONCE
