// local-sgd: parallel restarted SGD (PR-SGD; seed 002's baseline). Each worker takes H local
// optimizer steps on its own data, then the models are synchronized:
//   all-reduce paradigm (--sync allgather|ring): x_m ← (1/M)·Σ_k Q(x_k), the models themselves
//     through the codec (identity by default: exact averaging; a lossy codec quantizes whole
//     models — compressing the change instead is qlocal-sgd);
//   gossip paradigm (--sync gossip): one exact gossip round x_i ← Σ_j W_ij·x_j with
//     Metropolis–Hastings weights over --topology.
// sgd with --sync gossip is the H = 1 gossip case: decentralized parallel SGD (D-PSGD, Lian et
// al. 2017), a local step followed by a mixing round.
// The momentum buffer stays local and is kept across synchronizations.
// With a tuner (all-reduce paradigm and a lossy codec) each worker picks the level of its message
// at every synchronization from what it sends, its model x_m (e_m + x_m under error feedback; with
// the ring, its own chunk, see sync_sgd.hpp); no lr coupling (qlocal_sgd.hpp says why). Exact
// gossip has no codec and so nothing to tune.
#pragma once

#include <memory>

#include "plan.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/train/algorithm.hpp"

namespace thinwire::train {

class LocalSgd final : public Algorithm {
 public:
  // All-reduce paradigm.
  LocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
           collective::AllreduceAlgorithm allreduce, const PlannedCodec& codec,
           const optim::SgdOptions& sgd, std::unique_ptr<tune::Tuner> tuner = nullptr);
  // Gossip paradigm (exact gossip rounds).
  LocalSgd(const AlgorithmContext& context, std::uint64_t local_steps,
           collective::Topology topology, const optim::SgdOptions& sgd);

  StepComm step(std::uint64_t t, std::span<float> model, std::span<float> grad,
                bool local_valid) override;
  [[nodiscard]] bool consensus_after(std::uint64_t t) const override;
  [[nodiscard]] tune::Tuner* tuner() noexcept override { return tuner_.get(); }
  void save(StateBundle& state) const override;
  void load(const StateBundle& state) override;

 private:
  [[nodiscard]] bool synchronizes_after(std::uint64_t t) const noexcept {
    return (t + 1) % local_steps_ == 0;
  }

  AlgorithmContext context_;
  std::uint64_t local_steps_;
  bool gossip_;
  collective::AllreduceAlgorithm allreduce_ = collective::AllreduceAlgorithm::kAllgather;
  std::shared_ptr<const codec::Codec> codec_;
  std::unique_ptr<collective::AllreduceResidual> error_feedback_;
  std::optional<collective::Topology> topology_;
  collective::MixingMatrix weights_;
  optim::Sgd optimizer_;
  std::unique_ptr<tune::Tuner> tuner_;
  std::vector<float> tune_input_;  // e + x under error feedback
};

// Uncompressed estimate of one gossip round of d elements on `rank` (deg messages; the
// schedule's rounds are the critical path).
[[nodiscard]] StepComm uncompressed_gossip_step(const collective::Topology& topology, std::size_t d,
                                                int rank, const comm::LinkModel& link);

}  // namespace thinwire::train
