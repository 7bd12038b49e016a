// The scan kernels on Highway (issue 20): compiled for every target by foreach_target.h and
// dispatched by HWY_DYNAMIC_DISPATCH, the one mechanism of the codec kernels (src/codec/kernels/),
// so a test or benchmark that restricts the codec's target restricts these too. Each sum keeps the
// 16 interleaved partial sums of scan_kernels.hpp whatever the vector width (16 lanes are one
// AVX-512 vector, two AVX2 vectors, sixteen one-lane vectors on the scalar target) and combines
// them in the same order, and this file is built with -ffp-contract=off, so that every target
// computes the same floats (tests/unit/tune/scan_kernels_test.cpp checks them against the plain
// loops on every target).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/tune/scan_kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "src/tune/scan_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace thinwire::tune::scan {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr std::size_t kLanes = 16;  // partial sums: element i goes to sum i mod 16

using DF = hn::CappedTag<float, kLanes>;
using DD = hn::CappedTag<double, kLanes>;
using DU = hn::RebindToUnsigned<DF>;

// N floats from p as the lane type of d (double: exact).
template <class D>
HWY_INLINE hn::VFromD<D> LoadAs(D d, const float* p) {
  if constexpr (sizeof(hn::TFromD<D>) == 4) {
    return hn::LoadU(d, p);
  } else {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<float, D>(), p));
  }
}

// Lane t += lane t + N/2 for t < N/2, then the same on the lower half, down to one lane: the tree
// of scan_kernels.hpp inside one vector.
template <class D>
HWY_INLINE hn::TFromD<D> TreeSum(D d, hn::VFromD<D> v) {
#if HWY_TARGET == HWY_SCALAR  // one lane (and no UpperHalf)
  (void)d;
  return hn::GetLane(v);
#else
  if constexpr (hn::MaxLanes(D()) == 1) {
    (void)d;
    return hn::GetLane(v);
  } else {
    const hn::Half<D> dh;
    return TreeSum(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  }
#endif
}

// 16 partial sums in `acc` (aligned, 16 lanes of d's type) as K = 16 / N vectors; the loops over
// k have constant bounds, so the compiler keeps them in registers.
template <class D>
struct Sums16 {
  static constexpr std::size_t kN = hn::MaxLanes(D());
  static constexpr std::size_t kK = kLanes / kN;
  static_assert(kK * kN == kLanes);

  // acc[t] += term(x_t) for the 16 elements at p (t < count <= 16; the others add nothing).
  template <class Term>
  HWY_INLINE static void Add(D d, hn::TFromD<D>* acc, const float* p, std::size_t count,
                             Term term) {
    if (count == kLanes) {
      for (std::size_t k = 0; k < kK; ++k) {
        const auto x = term(LoadAs(d, p + k * kN));
        hn::Store(hn::Add(hn::Load(d, acc + k * kN), x), d, acc + k * kN);
      }
      return;
    }
    HWY_ALIGN float pad[kLanes] = {};
    std::memcpy(pad, p, 4 * count);
    for (std::size_t k = 0; k < kK && k * kN < count; ++k) {
      const auto x =
          hn::IfThenElseZero(hn::FirstN(d, count - k * kN), term(LoadAs(d, pad + k * kN)));
      hn::Store(hn::Add(hn::Load(d, acc + k * kN), x), d, acc + k * kN);
    }
  }

  // acc[t] += acc[t + w] for t < w, w = 8, 4, 2, 1: whole vectors while w >= N, then TreeSum.
  HWY_INLINE static hn::TFromD<D> Tree(D d, hn::TFromD<D>* acc) {
    for (std::size_t w = kLanes / 2; w >= kN; w /= 2) {
      for (std::size_t t = 0; t < w; t += kN) {
        hn::Store(hn::Add(hn::Load(d, acc + t), hn::Load(d, acc + t + w)), d, acc + t);
      }
    }
    return TreeSum(d, hn::Load(d, acc));
  }
};

// Σ term(x_i) over n elements, in the 16 partial sums and the tree.
template <class D, class Term>
HWY_INLINE hn::TFromD<D> Sum16(D d, const float* u, std::size_t n, Term term) {
  HWY_ALIGN hn::TFromD<D> acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) Sums16<D>::Add(d, acc, u + i, kLanes, term);
  if (i < n) Sums16<D>::Add(d, acc, u + i, n - i, term);
  return Sums16<D>::Tree(d, acc);
}

HWY_INLINE double BlockSum(const float* u, std::size_t n) {
  return Sum16(DD(), u, n, [](auto x) HWY_ATTR { return hn::Mul(x, x); });
}

// The largest magnitude key (an order-free maximum: any grouping gives the same).
HWY_INLINE std::uint32_t BlockMax(const float* u, std::size_t n) {
  const DU du;
  const std::size_t lanes = hn::Lanes(du);
  const auto abs_mask = hn::Set(du, 0x7FFFFFFFU);
  auto m = hn::Zero(du);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    m = hn::Max(m, hn::And(hn::BitCast(du, hn::LoadU(DF(), u + i)), abs_mask));
  }
  auto out = hn::GetLane(hn::MaxOfLanes(du, m));
  for (; i < n; ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, u + i, 4);
    out = std::max(out, magnitude_key_of(bits));
  }
  return out;
}

HWY_INLINE float BlockL1(const float* u, std::size_t n) {
  return Sum16(DF(), u, n, [](auto x) HWY_ATTR { return hn::Abs(x); });
}

void BlockStats(const float* v, std::size_t d, double* sumsq, std::uint32_t* max_key, float* l1) {
  for (std::size_t first = 0, b = 0; first < d; first += kBlock, ++b) {
    const std::size_t n = std::min(kBlock, d - first);
    sumsq[b] = BlockSum(v + first, n);
    max_key[b] = BlockMax(v + first, n);
    if (l1 != nullptr) l1[b] = BlockL1(v + first, n);
  }
}

void BlockStatsFp32(const float* v, std::size_t d, float* sumsq, std::uint32_t* max_key,
                    float* l1) {
  const DF df;
  for (std::size_t first = 0, b = 0; first < d; first += kBlock, ++b) {
    const std::size_t n = std::min(kBlock, d - first);
    const float* u = v + first;
    HWY_ALIGN float sq[kLanes] = {};
    HWY_ALIGN float ab[kLanes] = {};
    for (std::size_t i = 0; i < n; i += kLanes) {
      const std::size_t count = std::min(kLanes, n - i);
      Sums16<DF>::Add(df, sq, u + i, count, [](auto x) HWY_ATTR { return hn::Mul(x, x); });
      Sums16<DF>::Add(df, ab, u + i, count, [](auto x) HWY_ATTR { return hn::Abs(x); });
    }
    sumsq[b] = Sums16<DF>::Tree(df, sq);
    l1[b] = Sums16<DF>::Tree(df, ab);
    max_key[b] = BlockMax(u, n);
  }
}

double BlockedSquaredNorm(const float* v, std::size_t d) {
  double total = 0.0;
  for (std::size_t first = 0; first < d; first += kBlock) {
    total += BlockSum(v + first, std::min(kBlock, d - first));
  }
  return total;
}

void LevelSums(const float* u, std::size_t n, float inv, double* out) {
  const DF df;
  HWY_ALIGN float a[kBlock] = {};  // |u_i|, zero-padded to a whole block (zeros add 0)
  for (std::size_t i = 0; i < n; ++i) a[i] = std::fabs(u[i]);
  for (std::size_t j = 0; j < kLevelSteps; ++j) {
    const auto cap = static_cast<float>(scan_level(j));
    const auto vcap = hn::Set(df, cap);
    const auto vscale = hn::Set(df, inv * cap);
    HWY_ALIGN float acc[kLanes] = {};
    for (std::size_t i = 0; i < kBlock; i += kLanes) {
      Sums16<DF>::Add(df, acc, a + i, kLanes, [&](auto x) HWY_ATTR {
        const auto sr = hn::Min(vcap, hn::Mul(x, vscale));  // std::min(x·scale, cap)
        const auto f = hn::Sub(sr, hn::Trunc(sr));
        return hn::Sub(f, hn::Mul(f, f));
      });
    }
    float sum = 0.0f;  // the 16 partial sums in lane order (not the tree)
    for (const float x : acc) sum += x;
    out[j] += static_cast<double>(sum);
  }
}

void SquareRoots(const float* x, std::size_t n, float* out) {
  const hn::CappedTag<double, 8> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const std::size_t lanes = hn::Lanes(dd);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::DemoteTo(df, hn::Sqrt(hn::PromoteTo(dd, hn::LoadU(df, x + i)))), df, out + i);
  }
  for (; i < n; ++i) out[i] = static_cast<float>(std::sqrt(static_cast<double>(x[i])));
}

void BucketVarianceSums(const float* v, std::size_t n, std::size_t bucket, const float* inv,
                        float s, double* out) {
  constexpr std::size_t kRun = 1024;
  const DF df;
  const auto vs = hn::Set(df, s);
  for (std::size_t first = 0, k = 0; first < n; first += bucket, ++k) {
    const std::size_t len = std::min(bucket, n - first);
    const auto vscale = hn::Set(df, inv[k]);
    double total = 0.0;
    for (std::size_t run = 0; run < len; run += kRun) {
      total += static_cast<double>(
          Sum16(df, v + first + run, std::min(kRun, len - run), [&](auto x) HWY_ATTR {
            const auto t = hn::Min(vs, hn::Mul(hn::Abs(x), vscale));  // std::min(|x|·scale, s)
            const auto f = hn::Sub(t, hn::Trunc(t));
            return hn::Sub(f, hn::Mul(f, f));
          }));
    }
    out[k] = total;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace thinwire::tune::scan
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thinwire::tune::scan {

HWY_EXPORT(BlockStats);
HWY_EXPORT(BlockStatsFp32);
HWY_EXPORT(BlockedSquaredNorm);
HWY_EXPORT(LevelSums);
HWY_EXPORT(SquareRoots);
HWY_EXPORT(BucketVarianceSums);

void block_stats(const float* v, std::size_t d, double* sumsq, std::uint32_t* max_key,
                 float* l1) noexcept {
  HWY_DYNAMIC_DISPATCH(BlockStats)(v, d, sumsq, max_key, l1);
}

void block_stats_fp32(const float* v, std::size_t d, float* sumsq, std::uint32_t* max_key,
                      float* l1) noexcept {
  HWY_DYNAMIC_DISPATCH(BlockStatsFp32)(v, d, sumsq, max_key, l1);
}

double blocked_squared_norm(const float* v, std::size_t d) noexcept {
  return HWY_DYNAMIC_DISPATCH(BlockedSquaredNorm)(v, d);
}

void level_sums(const float* u, std::size_t n, float inv, double* out) noexcept {
  HWY_DYNAMIC_DISPATCH(LevelSums)(u, n, inv, out);
}

void square_roots(const float* x, std::size_t n, float* out) noexcept {
  HWY_DYNAMIC_DISPATCH(SquareRoots)(x, n, out);
}

void bucket_variance_sums(const float* v, std::size_t n, std::size_t bucket, const float* inv,
                          float s, double* out) noexcept {
  HWY_DYNAMIC_DISPATCH(BucketVarianceSums)(v, n, bucket, inv, s, out);
}

}  // namespace thinwire::tune::scan
#endif  // HWY_ONCE
