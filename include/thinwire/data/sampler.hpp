// Minibatches for one worker: epoch-wise shuffles of its shard, cut into consecutive batches.
//
// Counter-based: the batch of iteration t is a pure function of (shard, batch size, seed, rank,
// t). Epoch e = t / batches_per_epoch() uses the permutation drawn from the key (seed, rank, e,
// RngPurpose::kData), so the same seed gives the same batches whatever the thread count or
// schedule, and a run resumed at iteration t sees the batches it would have seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace thinwire::data {

struct SamplerOptions {
  std::size_t batch_size = 64;  // clamped to the shard size
  std::uint64_t seed = 0;
  std::uint32_t rank = 0;
  // Without drop_last an epoch ends with a smaller batch when batch_size does not divide the
  // shard; with it those rows are skipped for that epoch (a different subset every epoch).
  bool drop_last = false;
};

class MinibatchSampler {
 public:
  // Throws InvalidArgument for an empty shard or batch_size 0.
  MinibatchSampler(std::vector<std::size_t> shard, const SamplerOptions& options);

  // Row indices of the minibatch of `iteration` (0-based). The view is valid until the next call.
  [[nodiscard]] std::span<const std::size_t> batch(std::uint64_t iteration);

  [[nodiscard]] std::size_t batches_per_epoch() const noexcept { return batches_per_epoch_; }
  [[nodiscard]] std::uint64_t epoch_of(std::uint64_t iteration) const noexcept {
    return iteration / batches_per_epoch_;
  }
  [[nodiscard]] std::size_t batch_size() const noexcept { return batch_size_; }
  [[nodiscard]] std::span<const std::size_t> shard() const noexcept { return shard_; }

 private:
  std::vector<std::size_t> shard_;
  std::vector<std::size_t> permutation_;  // of shard_, for epoch_ (valid when has_epoch_)
  SamplerOptions options_;
  std::size_t batch_size_;
  std::size_t batches_per_epoch_;
  std::uint64_t epoch_ = 0;
  bool has_epoch_ = false;
};

}  // namespace thinwire::data
