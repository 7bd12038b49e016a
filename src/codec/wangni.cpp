#include "thinwire/codec/wangni.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "sparse_coding.hpp"

namespace thinwire::codec {
namespace {

constexpr std::string_view kName = "wangni";

// Pivots only steer the search (the cap does not depend on them), so a fixed stream keeps
// wangni_cap a pure function of its input.
constexpr RngKey kPivotKey{0x5EED0F3A9C1D2B47ULL};

std::string density_problem(double density) {
  if (std::isfinite(density) && density > 0.0 && density <= 1.0) return {};
  return "density must be in (0, 1], got " + sparse::format_number(density);
}

}  // namespace

float wangni_cap(std::span<const float> v, double density) {
  const double budget = density * static_cast<double>(v.size());
  std::vector<float> a;
  a.reserve(v.size());
  for (const float x : v) {
    if (x != 0.0f) a.push_back(std::fabs(x));
  }
  if (static_cast<double>(a.size()) <= budget) return 0.0f;

  // Quickselect for the smallest value a* with h(a*) <= budget (see the header). [lo, hi) holds
  // the undecided values; `capped` counts values known to be >= a*, `below` sums those < a*.
  std::size_t lo = 0;
  std::size_t hi = a.size();
  double capped = 0.0;
  double below = 0.0;
  double smallest_capped = std::numeric_limits<double>::infinity();  // a*
  RngStream rng(kPivotKey);
  while (lo < hi) {
    const float pivot = a[lo + static_cast<std::size_t>(rng.next_below(hi - lo))];
    const auto first = a.begin() + static_cast<std::ptrdiff_t>(lo);
    const auto last = a.begin() + static_cast<std::ptrdiff_t>(hi);
    const auto gt_end = std::partition(first, last, [pivot](float x) { return x > pivot; });
    const auto eq_end = std::partition(gt_end, last, [pivot](float x) { return x == pivot; });
    const double sum_lt = std::accumulate(eq_end, last, 0.0);
    const auto n_eq = static_cast<double>(eq_end - gt_end);
    const auto n_ge = static_cast<double>(eq_end - first);
    const double h = capped + n_ge + (below + sum_lt) / static_cast<double>(pivot);
    if (h <= budget) {
      capped += n_ge;  // pivot and above are capped; a* is lower
      smallest_capped = pivot;
      lo = static_cast<std::size_t>(eq_end - a.begin());
    } else {
      below += sum_lt + n_eq * static_cast<double>(pivot);  // pivot and below are not capped
      hi = static_cast<std::size_t>(gt_end - a.begin());
    }
  }
  // In exact arithmetic below > 0 (the smallest value is never capped: h(min) is the number of
  // non-zeros) and S/(B − |C|) lies in (largest uncapped, a*]. When the uncapped mass is below
  // double resolution h(a*) can round to B exactly; M = a* then solves F(M) = B as well.
  double cap = capped < budget ? below / (budget - capped) : smallest_capped;
  cap = std::min(cap, smallest_capped);
  if (!(cap > 0.0)) return 0.0f;
  return static_cast<float>(std::min(cap, static_cast<double>(std::numeric_limits<float>::max())));
}

WangniCodec::WangniCodec(double density) : density_(density) {
  if (std::string problem = density_problem(density); !problem.empty()) {
    throw InvalidArgument("wangni: " + problem);
  }
}

std::string WangniCodec::spec() const {
  return "wangni:density=" + sparse::format_number(density_);
}

std::size_t WangniCodec::max_encoded_bytes(std::size_t d) const {
  // M, the count, the indices, and per element at most a flag bit and an fp32 value.
  const std::uint64_t bits = 32 + sparse::count_bits_bound(d) +
                             sparse::index_bits_bound_any_count(false, d) + 33 * std::uint64_t{d};
  return sparse::message_bytes(kParamsBytes, bits);
}

std::size_t WangniCodec::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                     std::span<std::byte> out) const {
  require_finite(v, kName);
  sparse::require_indexable(v.size(), kName);
  const std::size_t d = v.size();
  const float cap = wangni_cap(v, density_);
  const auto cap_d = static_cast<double>(cap);
  const RngKey key = ctx.key(RngPurpose::kSparsify);

  // Keep i with probability p_i = min(1, |v_i|/M): always when |v_i| >= M, else iff u_i < |v_i|/M.
  std::vector<std::uint32_t> kept;
  kept.reserve(static_cast<std::size_t>(density_ * static_cast<double>(d)) + 16);
  for (std::size_t i = 0; i < d; ++i) {
    const float a = std::fabs(v[i]);
    if (a != 0.0f && (a >= cap || key.uniform_double(i) * cap_d < static_cast<double>(a))) {
      kept.push_back(static_cast<std::uint32_t>(i));
    }
  }

  MessageWriter w(out, id(), d);
  write_params(w.params());
  BitWriter bits(w.payload_area());
  sparse::put_f32(bits, cap);
  sparse::put_count(bits, kept.size());
  sparse::IndexWriter(/*fixed_width=*/false, d).put_all(bits, kept);
  for (const std::uint32_t i : kept) {
    // v_i/p_i is v_i itself for capped elements and sgn(v_i)·M for the others.
    const bool exact = std::fabs(v[i]) >= cap;
    bits.put_bit(exact);
    if (exact) {
      sparse::put_f32(bits, v[i]);
    } else {
      bits.put_bit(std::signbit(v[i]));
    }
  }
  return w.finish(bits.finish());
}

void WangniCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                                 DecodeMode mode) const {
  const std::size_t d = out.size();
  BitReader r(payload);
  const float cap = sparse::get_finite_f32(r, kName);
  if (std::signbit(cap)) throw CorruptMessage("wangni: negative cap in payload");
  const std::uint64_t count = sparse::get_count(r, d, kName);
  std::vector<std::uint64_t> indices(count);
  sparse::IndexReader(/*fixed_width=*/false, d, kName).get_all(r, indices);
  std::vector<float> values(count);
  for (float& x : values) {
    if (r.get_bit()) {
      x = sparse::get_finite_f32(r, kName);
      if (x == 0.0f || !(std::fabs(x) >= cap)) {
        throw CorruptMessage("wangni: exact value below the cap in payload");
      }
    } else {
      if (cap == 0.0f) throw CorruptMessage("wangni: scaled element with a zero cap in payload");
      x = r.get_bit() ? -cap : cap;
    }
  }
  sparse::finish_payload(r, kName);

  sparse::scatter<std::uint64_t>(indices, values, out, mode);
}

void WangniCodec::write_params(ParamWriter& w) const { w.put_f64(density_); }

std::unique_ptr<Codec> WangniCodec::from_spec(Spec& spec) {
  if (!spec.has("density")) {
    throw InvalidArgument("wangni: missing parameter density (e.g. wangni:density=0.01)");
  }
  return std::make_unique<WangniCodec>(spec.get_double("density", 0.0));
}

std::unique_ptr<Codec> WangniCodec::from_params(ParamReader& params) {
  const double density = params.get_f64();
  if (std::string problem = density_problem(density); !problem.empty()) {
    throw CorruptMessage("wangni: message parameter " + problem);
  }
  return std::make_unique<WangniCodec>(density);
}

}  // namespace thinwire::codec
