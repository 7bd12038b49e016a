// Control plane: the few messages the training engine exchanges for itself — per-log statistics,
// models gathered for evaluation and for the final model, checkpoint handshakes. They travel on a
// transport of their own so that they are neither counted in the run's bits nor charged to its
// simulated clock: the threads backend gives the engine a second, unmodelled world; under MPI it
// is a second communicator (measured wall time includes it, as it should).
//
// Everything is rooted at rank 0 and visits ranks in ascending order, so reductions built on it
// (sums of statistics, the average model) are the same bits on every backend.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "thinwire/comm/transport.hpp"

namespace thinwire::train {

inline constexpr int kTagControl = 0x7480;
inline constexpr int kRoot = 0;

class ControlPlane {
 public:
  explicit ControlPlane(comm::Transport& transport) : transport_(transport) {}

  [[nodiscard]] int rank() const noexcept { return transport_.rank(); }
  [[nodiscard]] int size() const noexcept { return transport_.size(); }

  // On the root: every rank's bytes, index = rank (its own included). Elsewhere: empty.
  [[nodiscard]] std::vector<comm::Bytes> gather(std::span<const std::byte> mine);
  // The root's bytes on every rank (`root_bytes` is read on the root only).
  [[nodiscard]] comm::Bytes broadcast(std::span<const std::byte> root_bytes);

  // Sums of doubles over ranks, in rank order, on the root (elsewhere: zeros).
  [[nodiscard]] std::vector<double> sum_to_root(std::span<const double> mine);
  // Largest value over ranks, on the root.
  [[nodiscard]] double max_to_root(double mine);
  // The element-wise mean of every rank's vector, on the root: accumulated in double in rank order
  // and rounded to float once (elsewhere: empty).
  [[nodiscard]] std::vector<float> average_to_root(std::span<const float> mine);

  // Everyone waits until the root has seen every rank arrive and answered.
  void handshake();

 private:
  comm::Transport& transport_;
};

}  // namespace thinwire::train
