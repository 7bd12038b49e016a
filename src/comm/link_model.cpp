#include "thinwire/comm/link_model.hpp"

#include <cmath>

#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::comm {

LinkModel LinkModel::parse(std::string_view spec) {
  Spec params = Spec::parse_params(spec, "link");
  LinkModel model;
  model.kind = params.get_choice("model", "linear", {"linear", "packet"}) == "packet"
                   ? LinkKind::kPacket
                   : LinkKind::kLinear;
  model.bandwidth_bits_per_s = params.get_bandwidth_bits_per_s("bandwidth", 1e9);
  model.latency_s = params.get_seconds("latency", 50e-6);
  if (model.kind == LinkKind::kPacket) {
    model.payload_bytes = params.get_bytes("payload", model.payload_bytes);
    model.header_bytes = params.get_bytes("header", model.header_bytes);
  } else {
    model.overhead = params.get_double("overhead", model.overhead);
  }
  params.finish();
  model.validate();
  return model;
}

// Physical ranges, so that simulated times stay meaningful and finite over a whole run (a latency
// of 1e300 s would overflow the clock into infinity): bandwidth from 1 bit/s to 1 Pbit/s, latency
// up to an hour, overhead up to 1000 wire bytes per payload byte, packets up to 1 GB.
void LinkModel::validate() const {
  auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  if (!in(bandwidth_bits_per_s, 1.0, 1e15) || !(bandwidth_bits_per_s > 0)) {
    throw InvalidArgument("link: bandwidth must be in [1 bit/s, 1e15 bit/s], got " +
                          format_shortest(bandwidth_bits_per_s) + " bit/s");
  }
  if (!in(latency_s, 0.0, 3600.0)) {
    throw InvalidArgument("link: latency must be in [0, 3600] s, got " +
                          format_shortest(latency_s) + " s");
  }
  if (!in(overhead, 1.0, 1000.0)) {
    throw InvalidArgument(
        "link: overhead (wire bytes per payload byte) must be in [1, 1000], got " +
        format_shortest(overhead));
  }
  if (kind == LinkKind::kPacket) {
    if (!in(payload_bytes, 1.0, 1e9)) {
      throw InvalidArgument("link: payload must be in [1, 1e9] bytes, got " +
                            format_shortest(payload_bytes));
    }
    if (!in(header_bytes, 0.0, 1e9)) {
      throw InvalidArgument("link: header must be in [0, 1e9] bytes, got " +
                            format_shortest(header_bytes));
    }
  }
}

double LinkModel::message_seconds(std::size_t bytes) const {
  const double b = static_cast<double>(bytes);
  if (kind == LinkKind::kLinear) return latency_s + 8.0 * overhead * b / bandwidth_bits_per_s;
  const double packets = std::ceil(b / payload_bytes);
  return latency_s + packets * (payload_bytes + header_bytes) * 8.0 / bandwidth_bits_per_s;
}

std::string LinkModel::to_spec() const {
  std::string spec = kind == LinkKind::kPacket ? "model=packet," : "";
  spec += "bandwidth=" + format_shortest(bandwidth_bits_per_s) +
          "bit/s,latency=" + format_shortest(latency_s) + "s";
  if (kind == LinkKind::kPacket) {
    spec += ",payload=" + format_shortest(payload_bytes) +
            "B,header=" + format_shortest(header_bytes) + "B";
  } else if (overhead != 1) {
    spec += ",overhead=" + format_shortest(overhead);
  }
  return spec;
}

}  // namespace thinwire::comm
