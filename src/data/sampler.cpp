#include "thinwire/data/sampler.hpp"

#include <algorithm>
#include <utility>

#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::data {
namespace {

// Sub-stream salt of the (seed, rank, epoch, kData) key; see shard.cpp for the others.
constexpr std::uint64_t kSamplerSalt = 2;

}  // namespace

MinibatchSampler::MinibatchSampler(std::vector<std::size_t> shard, const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  if (shard_.empty()) {
    throw InvalidArgument("minibatch sampler: worker " + std::to_string(options.rank) +
                          " has an empty shard");
  }
  if (options.batch_size == 0) throw InvalidArgument("minibatch sampler: batch size must be > 0");
  batch_size_ = std::min(options.batch_size, shard_.size());
  batches_per_epoch_ = options.drop_last ? shard_.size() / batch_size_
                                         : (shard_.size() + batch_size_ - 1) / batch_size_;
}

std::span<const std::size_t> MinibatchSampler::batch(std::uint64_t iteration) {
  const std::uint64_t epoch = epoch_of(iteration);
  if (!has_epoch_ || epoch != epoch_) {
    permutation_ = shard_;
    RngStream rng(
        RngKey::make(options_.seed, options_.rank, epoch, RngPurpose::kData).derive(kSamplerSalt));
    for (std::size_t i = permutation_.size(); i > 1; --i) {
      std::swap(permutation_[i - 1], permutation_[rng.next_below(i)]);
    }
    epoch_ = epoch;
    has_epoch_ = true;
  }
  const std::size_t begin = (iteration % batches_per_epoch_) * batch_size_;
  const std::size_t end = std::min(begin + batch_size_, permutation_.size());
  return std::span<const std::size_t>(permutation_).subspan(begin, end - begin);
}

}  // namespace thinwire::data
