// ρ(θ): the fraction of the full-gradient improvement that a compressed step at level θ
// guarantees (SPEC §3). For L-smooth f and x⁺ = x − γQ(g) with the best step,
// Δ(θ) = ⟨g, E Q_θ⟩² / (2L·E‖Q_θ‖²) = (‖g‖²/2L)·ρ(θ), so
//   ρ(θ) = ⟨g, E Q_θ⟩² / (‖g‖²·E‖Q_θ‖²)  ∈ [0, 1].
// For unbiased codecs (E Q = g) this is ‖g‖²/E‖Q‖² = ‖g‖²/(‖g‖² + E‖Q − g‖²); for top-k
// (Q = top_k(g)) it is ‖top_k(g)‖²/‖g‖². Every function returns 1 for a zero vector (nothing to
// lose) and is computed in O(d) with the codec's own variance formulas.
#pragma once

#include <cstddef>
#include <span>

#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/terngrad.hpp"

namespace thinwire::tune {

// Σ g_i² in double, in a fixed order (blocks of 64, scan_kernels.hpp): the same double on every
// machine and build.
[[nodiscard]] double squared_norm(std::span<const float> g) noexcept;

// top-k: kept_squared_norm / ‖g‖² (kept_squared_norm = ‖top_k(g)‖²).
[[nodiscard]] double rho_topk(double kept_squared_norm, double squared_norm) noexcept;
// random-k, scaled by d/k: k/d.
[[nodiscard]] double rho_randk(std::size_t k, std::size_t d) noexcept;
// Wangni at `density`: ‖g‖² / Σ g_i²/p_i with p_i = min(1, |g_i|/M).
[[nodiscard]] double rho_wangni(std::span<const float> g, double density);
// The same for the cap M = codec::wangni_cap(g, density) computed by the caller.
[[nodiscard]] double rho_wangni_at_cap(std::span<const float> g, float cap) noexcept;
// QSGD: ‖g‖² / (‖g‖² + exact variance) (codec/qsgd.hpp qsgd_variance).
[[nodiscard]] double rho_qsgd(std::span<const float> g, const codec::QsgdParams& p);
// TernGrad without clipping: ‖g‖² / Σ s_t·|g_i|.
[[nodiscard]] double rho_terngrad(std::span<const float> g, const codec::TernGradParams& p);
// top-k with QSGD values: E Q = top_k(g), E‖Q‖² = ‖top_k(g)‖² + Var_QSGD(kept values), so
// ρ = ‖top_k‖⁴ / (‖g‖²·(‖top_k‖² + Var)).
[[nodiscard]] double rho_topk_qsgd(std::span<const float> kept_values, double squared_norm,
                                   const codec::QsgdParams& p);

}  // namespace thinwire::tune
