#include <algorithm>
#include <string>
#include <vector>

#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective {

Result allreduce_shared_randk(comm::Transport& transport, std::span<float> data,
                              const codec::Codec& codec, const AllreduceOptions& options) {
  const auto* randk = dynamic_cast<const codec::RandKCodec*>(&codec);
  if (randk == nullptr || !randk->shared_seed()) {
    throw InvalidArgument("allreduce shared_randk: needs a randk codec with shared_seed, got '" +
                          codec.spec() + "'");
  }
  if (options.error_feedback != nullptr) {
    throw InvalidArgument(
        "allreduce shared_randk: error feedback is not supported (the scaled "
        "shared projection is unbiased by itself)");
  }
  const double start = transport.clock_seconds();
  const std::size_t d = data.size();
  std::vector<std::uint32_t> indices;
  randk->indices(d,
                 {.seed = options.seed,
                  .rank = static_cast<std::uint32_t>(transport.rank()),
                  .iteration = options.iteration},
                 indices);
  std::vector<float> values(indices.size());
  for (std::size_t j = 0; j < indices.size(); ++j) values[j] = data[indices[j]];

  AllreduceOptions ring = options;
  ring.reduction = Reduction::kSum;
  ring.tag = options.tag < 0 ? kTagSharedRandk : options.tag;
  Result result = allreduce_ring(transport, values, codec::IdentityCodec(), ring);

  // Unbiasedness: each index is kept with probability k/d, hence the factor d/k (SPEC §2).
  double factor = randk->scale(d);
  if (options.reduction == Reduction::kAverage) factor /= static_cast<double>(transport.size());
  std::fill(data.begin(), data.end(), 0.0f);
  for (std::size_t j = 0; j < indices.size(); ++j) {
    data[indices[j]] = static_cast<float>(static_cast<double>(values[j]) * factor);
  }
  result.seconds = transport.clock_seconds() - start;
  return result;
}

}  // namespace thinwire::collective
