#include "thinwire/collective/broadcast.hpp"

#include <bit>
#include <string>

#include "detail.hpp"
#include "thinwire/core/error.hpp"

namespace thinwire::collective {

Result broadcast(comm::Transport& transport, std::span<float> data, const codec::Codec& codec,
                 const BroadcastOptions& options) {
  const int m = transport.size();
  if (options.root < 0 || options.root >= m) {
    throw InvalidArgument("broadcast: root " + std::to_string(options.root) +
                          " is outside a world of " + std::to_string(m));
  }
  detail::Tally tally(transport);
  const auto to_rank = [&](unsigned v) {
    return detail::mod(static_cast<int>(v) + options.root, m);
  };
  const auto v = static_cast<unsigned>(detail::mod(transport.rank() - options.root, m));
  const auto size = static_cast<unsigned>(m);

  comm::Bytes message;
  unsigned span_below;  // children are v + 2^j for 2^j < span_below
  if (v == 0) {
    message = detail::encode(
        codec, data, detail::context(options.seed, options.root, options.iteration), nullptr);
    span_below = std::bit_ceil(size);
  } else {
    span_below = v & (~v + 1);  // lowest set bit: v received from v − lowbit(v)
    message = transport.recv(to_rank(v - span_below), options.tag);
  }
  for (unsigned step = span_below >> 1; step > 0; step >>= 1) {
    if (v + step < size) tally.send(to_rank(v + step), message, options.tag);
  }
  codec::decode(message, data, codec::DecodeMode::kOverwrite);
  return tally.finish();
}

}  // namespace thinwire::collective
