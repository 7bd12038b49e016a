// Gossip averaging over a topology (SPEC §4, seed 002's decentralized paradigm): every rank talks
// only to its neighbours, following the topology's exchange schedule (topology.hpp), so a round
// costs each rank deg_i messages and cannot deadlock.
//
// gossip_average — one exact round x_i ← Σ_j W_ij·x_j (W_ii·x_i plus the neighbours' exact values,
//   sent losslessly with the identity codec; the sum is taken in double over j in ascending rank
//   order). For a symmetric doubly stochastic W the average x̄ is kept and the disagreement
//   shrinks: ‖X_t − X̄‖_F ≤ (1 − δ)^t·‖X_0 − X̄‖_F, δ = spectral_gap(W), X the M×d matrix of all
//   ranks' vectors (up to float rounding, about 2^-24 relative per round).
//
// choco_gossip — one round of CHOCO-gossip (Koloskova, Stich, Jaggi, ICML 2019), compressed:
//   every rank i keeps a public copy y_i of its own vector and copies y_j of its neighbours',
//   identical on every rank that holds them (all start at 0);
//     q_i = Q(x_i − y_i)                            one encoding, sent to every neighbour
//     y_j ← y_j + decode(q_j) for j = i and every neighbour j
//     x_i ← x_i + γ·Σ_j W_ij·(y_j − y_i)
//   Because W is symmetric and each y_j is the same float vector on every rank holding it, the
//   update sums to zero over ranks: the average x̄ is kept (up to float rounding), and x_i → x̄ for
//   a small enough consensus step γ. The paper's Theorem 2: for Q with
//   E‖Q(v) − v‖² ≤ (1 − ω)·‖v‖² and γ = δ²ω/(16δ + δ² + 4β² + 2δβ² − 8δω), β = ‖I − W‖₂,
//   E Σ_i ‖x_i − x̄‖² decays like (1 − δ²ω/82)^t. An unbiased codec with variance factor τ
//   (allreduce.hpp) is such a Q after scaling by 1/(1 + τ), with ω = 1/(1 + τ); in practice γ
//   well above the theorem's value works (the tests use qsgd, s = 16, with γ = 0.4). With a
//   lossless codec and γ = 1 a round is gossip_average up to float rounding (y_j = x_j then).
//   The state is what the training engine keeps across iterations; its size is
//   (deg_i + 1)·d floats.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/collective/result.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/comm/transport.hpp"

namespace thinwire::collective {

struct GossipOptions {
  int tag = kTagGossip;
};

// In place: x ← Σ_j W_ij·x_j on every rank. Throws InvalidArgument if the topology's or the
// matrix's size differs from the world's.
Result gossip_average(comm::Transport& transport, std::span<float> x, const Topology& topology,
                      const MixingMatrix& weights, const GossipOptions& options = {});

// CHOCO public copies on one rank. Empty before the first round (then sized to zeros).
struct ChocoState {
  std::vector<float> own_public;                    // y_i
  std::vector<std::vector<float>> neighbor_public;  // y_j, in topology.neighbors(rank) order
};

struct ChocoOptions {
  double consensus_step = 1.0;  // γ
  std::uint64_t seed = 0;       // EncodeContext{seed, rank, iteration} for q_i
  std::uint64_t iteration = 0;
  int tag = kTagChoco;
};

// One CHOCO round, x updated in place. Throws InvalidArgument for mismatched sizes (world,
// topology, matrix, or a state built for another length or topology) or γ outside (0, 1].
Result choco_gossip(comm::Transport& transport, std::span<float> x, const Topology& topology,
                    const MixingMatrix& weights, const codec::Codec& codec, ChocoState& state,
                    const ChocoOptions& options = {});

}  // namespace thinwire::collective
