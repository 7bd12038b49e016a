#include "thinwire/collective/parameter_server.hpp"

#include <string>

#include "detail.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::collective {
namespace {

// The downlink's encodings draw from a seed derived from the caller's, so the server's uplink
// (rank 0, same seed and iteration) and downlink never share random numbers.
constexpr std::uint64_t kDownlinkSalt = 0x444F574E4C494E4BULL;

}  // namespace

Result ps_gather_average(comm::Transport& transport, std::span<float> grad,
                         const codec::Codec& codec, const PsOptions& options) {
  const int m = transport.size();
  const int r = transport.rank();
  if (!options.server_is_worker && m < 2) {
    throw InvalidArgument(
        "parameter server: a server that is not a worker needs at least 2 "
        "ranks, the world has " +
        std::to_string(m));
  }
  detail::Tally tally(transport);
  const auto ctx = detail::context(options.seed, r, options.iteration);
  if (r != kServerRank) {
    tally.send(kServerRank, detail::encode(codec, grad, ctx, options.error_feedback),
               options.gather_tag);
    return tally.finish();
  }
  const int first_worker = options.server_is_worker ? 0 : 1;
  std::vector<comm::Bytes> messages;
  messages.reserve(static_cast<std::size_t>(m - first_worker));
  if (options.server_is_worker) {
    messages.push_back(detail::encode(codec, grad, ctx, options.error_feedback));
  }
  for (int peer = 1; peer < m; ++peer) messages.push_back(transport.recv(peer, options.gather_tag));
  detail::decode_sum(messages, grad);
  detail::divide(grad, static_cast<float>(m - first_worker));
  return tally.finish();
}

Result ps_broadcast_model(comm::Transport& transport, std::span<float> model,
                          const codec::Codec& downlink, PsDownlinkState& state,
                          const PsOptions& options) {
  const bool first = state.rounds == 0;
  if (!first && state.replica.size() != model.size()) {
    throw InvalidArgument("parameter server: model has " + std::to_string(model.size()) +
                          " elements but the downlink replica has " +
                          std::to_string(state.replica.size()));
  }
  const bool full = first || downlink.traits().lossless;
  detail::Tally tally(transport);
  const int m = transport.size();
  comm::Bytes message;
  if (transport.rank() == kServerRank) {
    const auto ctx = detail::context(RngKey{options.seed}.derive(kDownlinkSalt).value, kServerRank,
                                     options.iteration);
    if (first) {
      message = codec::IdentityCodec().encode(model, ctx);
    } else if (full) {
      message = downlink.encode(model, ctx);
    } else {
      std::vector<float> delta(model.begin(), model.end());
      for (std::size_t i = 0; i < delta.size(); ++i) delta[i] -= state.replica[i];
      message = downlink.encode(delta, ctx);
    }
    for (int peer = 1; peer < m; ++peer) tally.send(peer, message, options.model_tag);
  } else {
    message = transport.recv(kServerRank, options.model_tag);
  }
  if (full) {
    state.replica.resize(model.size());
    codec::decode(message, state.replica, codec::DecodeMode::kOverwrite);
  } else {
    codec::decode(message, state.replica, codec::DecodeMode::kAccumulate);
  }
  if (transport.rank() != kServerRank) {
    std::copy(state.replica.begin(), state.replica.end(), model.begin());
  }
  ++state.rounds;
  return tally.finish();
}

}  // namespace thinwire::collective
