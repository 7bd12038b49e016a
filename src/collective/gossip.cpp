#include "thinwire/collective/gossip.hpp"

#include <algorithm>
#include <string>

#include "detail.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective {
namespace {

void check_sizes(const comm::Transport& transport, const Topology& topology,
                 const MixingMatrix& weights, std::string_view what) {
  if (topology.size() != transport.size() || weights.size() != transport.size()) {
    throw InvalidArgument(std::string(what) + ": topology '" + topology.spec() + "' has " +
                          std::to_string(topology.size()) + " ranks and the mixing matrix " +
                          std::to_string(weights.size()) + ", but the world has " +
                          std::to_string(transport.size()));
  }
}

// Sends `mine` to every neighbour along the topology's exchange schedule and returns the
// neighbours' messages in neighbors() order.
std::vector<comm::Bytes> exchange_with_neighbors(detail::Tally& tally, const Topology& topology,
                                                 int rank, std::span<const std::byte> mine,
                                                 int tag) {
  const std::span<const int> neighbors = topology.neighbors(rank);
  std::vector<comm::Bytes> received(neighbors.size());
  for (const int partner : topology.schedule(rank)) {
    if (partner < 0) continue;
    const auto at = static_cast<std::size_t>(
        std::lower_bound(neighbors.begin(), neighbors.end(), partner) - neighbors.begin());
    received[at] = tally.exchange(partner, mine, partner, tag);
  }
  return received;
}

}  // namespace

Result gossip_average(comm::Transport& transport, std::span<float> x, const Topology& topology,
                      const MixingMatrix& weights, const GossipOptions& options) {
  check_sizes(transport, topology, weights, "gossip");
  detail::Tally tally(transport);
  const int r = transport.rank();
  const comm::Bytes mine = codec::IdentityCodec().encode(x);
  const std::vector<comm::Bytes> received =
      exchange_with_neighbors(tally, topology, r, mine, options.tag);

  // Σ_j W_ij·x_j over j ∈ {i} ∪ N(i) in ascending order, in double.
  const std::span<const int> neighbors = topology.neighbors(r);
  std::vector<double> sum(x.size(), 0.0);
  std::vector<float> values(x.size());
  const auto add = [&](int j, std::span<const float> v) {
    const double w = weights(r, j);
    for (std::size_t e = 0; e < v.size(); ++e) sum[e] += w * static_cast<double>(v[e]);
  };
  bool self_done = false;
  for (std::size_t k = 0; k <= neighbors.size(); ++k) {
    if (!self_done && (k == neighbors.size() || neighbors[k] > r)) {
      add(r, x);
      self_done = true;
    }
    if (k == neighbors.size()) break;
    codec::decode(received[k], values, codec::DecodeMode::kOverwrite);
    add(neighbors[k], values);
  }
  for (std::size_t e = 0; e < x.size(); ++e) x[e] = static_cast<float>(sum[e]);
  return tally.finish();
}

Result choco_gossip(comm::Transport& transport, std::span<float> x, const Topology& topology,
                    const MixingMatrix& weights, const codec::Codec& codec, ChocoState& state,
                    const ChocoOptions& options) {
  check_sizes(transport, topology, weights, "choco gossip");
  if (!(options.consensus_step > 0.0 && options.consensus_step <= 1.0)) {
    throw InvalidArgument("choco gossip: consensus step must be in (0, 1], got " +
                          std::to_string(options.consensus_step));
  }
  const int r = transport.rank();
  const std::span<const int> neighbors = topology.neighbors(r);
  const std::size_t d = x.size();
  if (state.own_public.empty() && state.neighbor_public.empty()) {
    state.own_public.assign(d, 0.0f);
    state.neighbor_public.assign(neighbors.size(), std::vector<float>(d, 0.0f));
  }
  const bool fits = state.own_public.size() == d &&
                    state.neighbor_public.size() == neighbors.size() &&
                    std::all_of(state.neighbor_public.begin(), state.neighbor_public.end(),
                                [d](const std::vector<float>& y) { return y.size() == d; });
  if (!fits) {
    throw InvalidArgument("choco gossip: state holds copies for another length or topology (rank " +
                          std::to_string(r) + ", d = " + std::to_string(d) + ", " +
                          std::to_string(neighbors.size()) + " neighbours)");
  }

  detail::Tally tally(transport);
  std::vector<float> diff(d);
  for (std::size_t e = 0; e < d; ++e) diff[e] = x[e] - state.own_public[e];
  const comm::Bytes mine =
      detail::encode(codec, diff, detail::context(options.seed, r, options.iteration), nullptr);
  const std::vector<comm::Bytes> received =
      exchange_with_neighbors(tally, topology, r, mine, options.tag);

  codec::decode(mine, state.own_public, codec::DecodeMode::kAccumulate);
  for (std::size_t k = 0; k < neighbors.size(); ++k) {
    codec::decode(received[k], state.neighbor_public[k], codec::DecodeMode::kAccumulate);
  }
  // x_i += γ·Σ_j W_ij·(y_j − y_i), summed in double in neighbour order.
  const std::vector<float>& own = state.own_public;
  std::vector<double> step(d, 0.0);
  for (std::size_t k = 0; k < neighbors.size(); ++k) {
    const double w = weights(r, neighbors[k]);
    const std::vector<float>& y = state.neighbor_public[k];
    for (std::size_t e = 0; e < d; ++e) {
      step[e] += w * (static_cast<double>(y[e]) - static_cast<double>(own[e]));
    }
  }
  for (std::size_t e = 0; e < d; ++e) {
    x[e] = static_cast<float>(static_cast<double>(x[e]) + options.consensus_step * step[e]);
  }
  return tally.finish();
}

}  // namespace thinwire::collective
