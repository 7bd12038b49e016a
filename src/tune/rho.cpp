#include "thinwire/tune/rho.hpp"

#include <algorithm>
#include <cmath>

#include "scan_kernels.hpp"
#include "thinwire/codec/wangni.hpp"

namespace thinwire::tune {

double squared_norm(std::span<const float> g) noexcept {
  return scan::blocked_squared_norm(g.data(), g.size());
}

double rho_topk(double kept_squared_norm, double total) noexcept {
  return total > 0.0 ? std::min(1.0, kept_squared_norm / total) : 1.0;
}

double rho_randk(std::size_t k, std::size_t d) noexcept {
  return d == 0 ? 1.0 : static_cast<double>(std::min(k, d)) / static_cast<double>(d);
}

double rho_wangni(std::span<const float> g, double density) {
  return rho_wangni_at_cap(g, codec::wangni_cap(g, density));
}

double rho_wangni_at_cap(std::span<const float> g, float cap_f) noexcept {
  const double total = squared_norm(g);
  if (total == 0.0) return 1.0;
  const auto cap = static_cast<double>(cap_f);
  // g_i²/p_i is g_i² for capped elements (p_i = 1) and |g_i|·M for the others.
  double second_moment = 0.0;
  for (const float x : g) {
    const double a = std::fabs(static_cast<double>(x));
    second_moment += a >= cap ? a * a : a * cap;
  }
  return std::min(1.0, total / second_moment);
}

double rho_qsgd(std::span<const float> g, const codec::QsgdParams& p) {
  const double total = squared_norm(g);
  if (total == 0.0) return 1.0;
  return total / (total + codec::qsgd_variance(g, p));
}

double rho_terngrad(std::span<const float> g, const codec::TernGradParams& p) {
  const double total = squared_norm(g);
  if (total == 0.0) return 1.0;
  // E‖Q‖² = ‖g‖² + Σ (s_t·|g_i| − g_i²) = Σ s_t·|g_i| without clipping.
  return total / (total + codec::terngrad_variance(g, p));
}

double rho_topk_qsgd(std::span<const float> kept_values, double total, const codec::QsgdParams& p) {
  if (total == 0.0) return 1.0;
  const double kept = squared_norm(kept_values);
  if (kept == 0.0) return 0.0;
  return std::min(1.0, kept * kept / (total * (kept + codec::qsgd_variance(kept_values, p))));
}

}  // namespace thinwire::tune
