// The size a codec's message would have, predicted without encoding (SPEC §3: the tuner's
// bits(θ)). It lives beside the encoders and sizes params sections with their constants
// (TopKCodec::kParamsBytes, ...), so the codec layer is the one owner of every wire format.
//
// "Bits" is always the whole message — the 32-byte header, the codec's params and the payload
// rounded up to a byte — as Codec::encode_into would produce it:
//   - exact for deterministic sizes: top-k with fp32 values (from the kept indices: Elias-delta
//     gaps or fixed-width indices), QSGD packed (1 + ⌈log2(s+1)⌉ bits per element of every
//     non-zero bucket), TernGrad (2 bits per element of every non-zero bucket), random-k with a
//     shared seed (no indices);
//   - the expectation over the codec's random numbers for stochastic sizes: QSGD Elias (levels
//     and gaps from the rounding probabilities), top-k with QSGD values, random-k, Wangni. The
//     byte padding of a random payload of X bits is taken as E⌈X/8⌉ ≈ E X/8 + 7/16 (the residue
//     of X mod 8 close to uniform), off by less than one byte.
//
// Expected Elias gap lengths. When element i is kept independently with probability q_i (QSGD:
// q_i = P(level_i >= 1) = min(1, s·r_i); Wangni: p_i), the gap that ends at a kept i is >= t iff
// the t − 1 elements before i are all dropped, so
//   E[bits(gap_i) | i kept] = bits(1) + Σ_{t >= 2, t <= i+1} (bits(t) −
//   bits(t−1))·Π_{m=i−t+1}^{i−1}(1 − q_m).
// bits(t) of Elias gamma and delta only grows where t is a power of two, so the sum has at most
// ⌊log2(i+1)⌋ terms, each a ratio of prefix products (kept as prefix sums of log(1 − q) plus a
// count of q = 1): O(d·log d) time. For random-k the k indices are a uniform k-subset and every
// gap has the marginal P(g >= t) = C(d−t+1, k)/C(d, k) (exchangeable spacings): O(log d) time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/codec/topk.hpp"

namespace thinwire::codec {

// Exact message bits of topk with fp32 values, given the kept indices in ascending order.
[[nodiscard]] std::uint64_t topk_message_bits(std::span<const std::uint32_t> kept_sorted,
                                              std::size_t d, IndexCoding index);

// Message bits of topk with QSGD-quantized values: the exact index part plus the expected QSGD
// payload of the kept values (`kept_values` in index order).
[[nodiscard]] double topk_qsgd_message_bits(std::span<const std::uint32_t> kept_sorted,
                                            std::span<const float> kept_values, std::size_t d,
                                            IndexCoding index, const QsgdParams& qsgd);

// Expected bits of the QSGD payload alone (scales, levels, signs, gaps; no padding, no header):
// exact for packed coding. `scratch` is reused across calls to avoid allocating.
[[nodiscard]] double qsgd_payload_bits(std::span<const float> v, const QsgdParams& p,
                                       std::vector<double>& scratch);
// Message bits of the qsgd codec: exact for packed coding, expected for Elias.
[[nodiscard]] double qsgd_message_bits(std::span<const float> v, const QsgdParams& p,
                                       std::vector<double>& scratch);

// Exact message bits of the qsgd codec with packed coding: `buckets` buckets of which the non-zero
// ones hold `nonzero_elements` elements in all, at s = `levels` (what qsgd_message_bits computes
// from the vector).
[[nodiscard]] std::uint64_t qsgd_packed_message_bits(std::uint64_t buckets,
                                                     std::uint64_t nonzero_elements,
                                                     std::uint32_t levels) noexcept;

// Exact message bits of the terngrad codec.
[[nodiscard]] std::uint64_t terngrad_message_bits(std::span<const float> v,
                                                  const TernGradParams& p);

// Message bits of randk keeping k of d: expected (indices as Elias-delta gaps), exact with a
// shared seed.
[[nodiscard]] double randk_message_bits(std::size_t d, std::size_t k, bool shared_seed);

// Expected message bits of the wangni codec at `density` for v.
[[nodiscard]] double wangni_message_bits(std::span<const float> v, double density,
                                         std::vector<double>& scratch);
// The same for the cap M = wangni_cap(v, density) computed by the caller.
[[nodiscard]] double wangni_message_bits_at_cap(std::span<const float> v, float cap,
                                                std::vector<double>& scratch);

// E Σ_i bits(gap_i) over the kept elements of a run of q.size() elements, each kept
// independently with probability q_i (clamped to [0, 1]); the first gap counts from one before
// the run, and with `terminator` a last gap lands one past the run's end (as QSGD's Elias
// buckets). `delta` picks Elias delta, else gamma. `scratch` holds the prefix sums.
[[nodiscard]] double expected_gap_bits(std::span<const double> q, bool delta, bool terminator,
                                       std::vector<double>& scratch);

}  // namespace thinwire::codec
