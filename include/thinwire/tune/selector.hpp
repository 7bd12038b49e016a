// The dynamic level selector (SPEC §3, docs/tuning.md): θ = argmax_θ Δ(θ)/P(θ) for one codec
// family, for the vector v a worker is about to send (g, or e + g under error feedback), where
// P(θ) = copies·C(bits(θ)) + fixed prices the rank's share of the whole iteration (Objective,
// collective/pricing.hpp) and Δ(θ) is the predicted improvement: ρ(θ) (the classic rule), or
// signal − penalty·E‖v − Q_θ(v)‖² (the step model of docs/tuning.md). Where every level has
// Δ <= 0 the level with the largest Δ wins.
//
// top-k (the family where the level is a free integer k in [1, d]) in O(d) expected time:
//   1. one pass builds a histogram of |g_i| on the top 11 bits of the float bit pattern (sign
//      cleared: the pattern order is the magnitude order), with per-bin counts and Σ g_i²;
//   2. a scan from the largest bin down evaluates the score at the bin boundaries and at
//      geometric points inside each bin (mass spread evenly inside a bin), with bits estimated as
//      header + k·(32 + f(d/k)), f(x) = log2 x + 2·log2(log2 x + 1) + 1 the Elias-delta cost of the
//      mean gap (sparse_coding.hpp's Jensen bound; fixed-width indices cost ⌈log2 d⌉);
//   3. inside the winning bin the elements are sorted (a bin holds few elements unless many
//      magnitudes share 11 leading bits; bins over 4096 elements keep the even-spread estimate)
//      and every k in the bin is scored with the exact ρ;
//   4. a constant number of candidates around that k are scored exactly (select_top_k, exact ρ,
//      exact bits from the kept indices) and the best is kept;
//   5. under a packet-based cost the score is a step function of the size and peaks at the
//      largest k that fits a whole number of packets: every k up to two packets beyond the best
//      so far is scored exactly in one pass over those elements in selection order (the Elias
//      gap total kept up to date in an ordered set, O(k·log k)); ties go to the larger k, so the
//      result fills its last packet.
// On vectors of more than 1024 blocks of 64 elements, steps 1-5 run on the elements gathered down
// to one octave below the bin a sampled histogram estimates best (docs/tuning.md, "Cost of a
// decision"), or on all of g where those may not hold the best k.
// QSGD with packed coding ranks its 45 (bucket, s) by exact bits and a variance estimated from a
// sample of blocks, and scores the best two with the exact variance formula where the second could
// beat the first within the estimate's tolerance (else the estimate stands; docs/tuning.md). The
// other families (and QSGD with Elias coding) have one or two discrete parameters and are scored
// exactly on a fixed grid (a constant number of O(d) or O(d·log d) evaluations, see selector.cpp),
// then the packet fill where the level is continuous (random-k, Wangni).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/tune/cost_model.hpp"

namespace thinwire::tune {

enum class Family : std::uint8_t { kTopK, kRandK, kWangni, kQsgd, kTernGrad, kTopKQsgd };

// Parses "topk", "randk", "wangni", "qsgd", "terngrad", "topk_qsgd"; InvalidArgument otherwise.
[[nodiscard]] Family parse_family(std::string_view name);
[[nodiscard]] std::string_view family_name(Family f) noexcept;

struct SelectorOptions {
  codec::IndexCoding index = codec::IndexCoding::kElias;  // top-k index coding
  // QSGD and top-k+QSGD: norm and coding, and the bucket of top-k+QSGD; QSGD's s and bucket
  // (the configured one, 64, 256, 1024 or whole) and top-k+QSGD's s are what the selector
  // chooses.
  codec::QsgdParams qsgd = {.levels = 16, .bucket = 0};
};

// The chosen level and what the rule saw. `k` is a count for top-k/random-k and a density for
// Wangni; `levels` is QSGD's s; `bucket` the QSGD/TernGrad bucket.
struct Choice {
  Family family = Family::kTopK;
  std::size_t k = 0;
  double density = 0.0;
  std::uint32_t levels = 0;
  std::uint32_t bucket = 0;
  double rho = 0.0;
  double err = 0.0;    // E‖v − Q(v)‖²
  double bits = 0.0;   // whole message (exact or expected, codec/message_size.hpp)
  double cost = 0.0;   // the price P(θ) (C(bits) under the classic one-message objective)
  double score = 0.0;  // Objective::score

  // The codec spec string for this choice, e.g. "topk:k=37" or "qsgd:s=4,bucket=512,...".
  [[nodiscard]] std::string codec_spec(const SelectorOptions& options) const;
};

// ρ/C with C(b) > 0; a zero cost (the bits model at b = 0, impossible for real messages) scores 0.
[[nodiscard]] double score_of(double rho, double cost) noexcept;

// What the rule maximizes. The default is the classic rule ρ(θ)/C(bits(θ)) of one message.
struct Objective {
  // Price: copies·C(bits) + fixed (collective::rank_price).
  double copies = 1.0;
  double fixed = 0.0;
  // Improvement: with step_model, Δ = signal − penalty·err, err = E‖v − Q_θ(v)‖² (the residual
  // error feedback keeps, or the variance an unbiased codec adds); else Δ = ρ(θ).
  bool step_model = false;
  double signal = 0.0;
  double penalty = 0.0;

  // Δ/P where Δ > 0 (Δ where P = 0: then every level has the same price), else Δ (<= 0), so
  // that any level with a positive improvement wins over every level without one.
  [[nodiscard]] double score(double rho, double err, double price) const noexcept;
  [[nodiscard]] double price(const CostModel& cost, double bits) const noexcept;
};

// The O(d)-expected top-k selector described above. d = 0 gives k = 0.
[[nodiscard]] Choice select_topk(std::span<const float> g, const CostModel& cost,
                                 const SelectorOptions& options = {},
                                 const Objective& objective = {});

// The same search over all of g (what select_topk runs on vectors of at most 1024·64 elements, and
// where the gathered elements may not hold the best k): the reference its gathered search is
// tested against.
[[nodiscard]] Choice select_topk_full(std::span<const float> g, const CostModel& cost,
                                      const SelectorOptions& options = {},
                                      const Objective& objective = {});

// Grid selectors for the other families.
// random-k needs ‖g‖² only where the objective is the step model (err = ‖g‖²·(d/k − 1)).
[[nodiscard]] Choice select_randk(std::size_t d, const CostModel& cost,
                                  const Objective& objective = {}, double squared_norm = 0.0);
[[nodiscard]] Choice select_wangni(std::span<const float> g, const CostModel& cost,
                                   const Objective& objective = {});
[[nodiscard]] Choice select_qsgd(std::span<const float> g, const CostModel& cost,
                                 const SelectorOptions& options = {},
                                 const Objective& objective = {});
[[nodiscard]] Choice select_terngrad(std::span<const float> g, const CostModel& cost,
                                     const Objective& objective = {});
[[nodiscard]] Choice select_topk_qsgd(std::span<const float> g, const CostModel& cost,
                                      const SelectorOptions& options = {},
                                      const Objective& objective = {});

// What select_qsgd ranks (bucket, s) by, for packed coding (docs/tuning.md, "Cost of a
// decision"): per bucket setting it tries and s = 1, 3, 7, ..., 511, the estimated variance
// E‖Q(v) − v‖² (from a sample of blocks; every block, so exact up to fp32 rounding, for vectors of
// at most 256·64 elements) and the exact message bits.
struct QsgdEstimate {
  std::uint32_t bucket = 0;
  std::uint32_t levels = 0;
  double variance = 0.0;
  double bits = 0.0;
};
[[nodiscard]] std::vector<QsgdEstimate> estimate_qsgd(std::span<const float> g,
                                                      const codec::QsgdParams& configured);

// Dispatches on the family.
[[nodiscard]] Choice select_level(Family family, std::span<const float> g, const CostModel& cost,
                                  const SelectorOptions& options = {},
                                  const Objective& objective = {});

// Exact score of top-k at k (select_top_k, exact ρ and bits): what the selector's step 4 uses,
// and what tests compare with the full-sort oracle.
[[nodiscard]] Choice evaluate_topk(std::span<const float> g, std::size_t k, double squared_norm,
                                   const CostModel& cost, const SelectorOptions& options,
                                   std::vector<std::uint32_t>& scratch,
                                   const Objective& objective = {});

}  // namespace thinwire::tune
