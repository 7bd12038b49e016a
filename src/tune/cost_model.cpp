#include "thinwire/tune/cost_model.hpp"

#include <cmath>

#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"
#include "thinwire/tune/online_link.hpp"

namespace thinwire::tune {
namespace {

void require(bool ok, std::string_view model, std::string_view key, std::string_view rule,
             double value) {
  if (!ok) {
    throw InvalidArgument("cost " + std::string(model) + ": " + std::string(key) + " must be " +
                          std::string(rule) + ", got " + format_shortest(value));
  }
}

// Packet sizes are read in bytes ("1460B") and kept in whole bits.
std::uint64_t whole_bits(Spec& spec, std::string_view key, double fallback_bytes, bool allow_zero) {
  const double bytes = spec.get_bytes(key, fallback_bytes);
  const double bits = 8.0 * bytes;
  const bool ok = std::isfinite(bits) && bits == std::floor(bits) && bits < 0x1.0p53 &&
                  (allow_zero ? bits >= 0 : bits >= 1);
  require(ok, spec.name(), key, allow_zero ? "a whole number of bits >= 0" : "at least 1 bit",
          bytes);
  return static_cast<std::uint64_t>(bits);
}

std::string shape_spec(const PacketShape& shape) {
  return "payload=" + format_shortest(static_cast<double>(shape.payload_bits) / 8.0) +
         "B,header=" + format_shortest(static_cast<double>(shape.header_bits) / 8.0) + "B";
}

}  // namespace

LinearCost::LinearCost(double latency_s, double bandwidth_bits_per_s)
    : latency_s_(latency_s), bandwidth_(bandwidth_bits_per_s) {
  require(std::isfinite(latency_s) && latency_s >= 0, "linear", "latency", "finite and >= 0",
          latency_s);
  require(std::isfinite(bandwidth_bits_per_s) && bandwidth_bits_per_s > 0, "linear", "bandwidth",
          "finite and > 0", bandwidth_bits_per_s);
}

std::string LinearCost::spec() const {
  return "linear:latency=" + format_shortest(latency_s_) +
         "s,bandwidth=" + format_shortest(bandwidth_) + "bit/s";
}

std::optional<comm::LinkModel> LinearCost::link_model() const {
  comm::LinkModel link;
  link.kind = comm::LinkKind::kLinear;
  link.latency_s = latency_s_;
  link.bandwidth_bits_per_s = bandwidth_;
  return link;
}

PacketCost::PacketCost(PacketShape shape, double per_packet, double per_message)
    : shape_(shape), per_packet_(per_packet), per_message_(per_message) {
  require(shape.payload_bits >= 1, "packet", "payload", "at least 1 bit",
          static_cast<double>(shape.payload_bits));
  require(std::isfinite(per_packet) && per_packet > 0, "packet", "per_packet", "finite and > 0",
          per_packet);
  require(std::isfinite(per_message) && per_message >= 0, "packet", "per_message",
          "finite and >= 0", per_message);
}

std::string PacketCost::spec() const {
  return "packet:" + shape_spec(shape_) + ",per_packet=" + format_shortest(per_packet_) +
         ",per_message=" + format_shortest(per_message_);
}

EnergyCost::EnergyCost(PacketShape shape, double per_message, double per_packet, double per_bit)
    : shape_(shape),
      per_message_(per_message),
      per_packet_(per_packet),
      per_bit_(per_bit),
      packet_energy_(per_packet +
                     static_cast<double>(shape.payload_bits + shape.header_bits) * per_bit) {
  require(shape.payload_bits >= 1, "energy", "payload", "at least 1 bit",
          static_cast<double>(shape.payload_bits));
  require(std::isfinite(per_message) && per_message >= 0, "energy", "per_message",
          "finite and >= 0", per_message);
  require(std::isfinite(per_packet) && per_packet >= 0, "energy", "per_packet", "finite and >= 0",
          per_packet);
  require(std::isfinite(per_bit) && per_bit >= 0, "energy", "per_bit", "finite and >= 0", per_bit);
  require(std::isfinite(packet_energy_) && packet_energy_ > 0, "energy",
          "per_packet + (payload + header)·per_bit", "finite and > 0", packet_energy_);
}

std::string EnergyCost::spec() const {
  return "energy:" + shape_spec(shape_) + ",per_message=" + format_shortest(per_message_) +
         ",per_packet=" + format_shortest(per_packet_) + ",per_bit=" + format_shortest(per_bit_);
}

std::unique_ptr<CostModel> make_cost_model(std::string_view text) {
  Spec spec = Spec::parse(text);
  std::unique_ptr<CostModel> model;
  if (spec.name() == "bits") {
    model = std::make_unique<BitsCost>();
  } else if (spec.name() == "linear") {
    const double latency = spec.get_seconds("latency", 50e-6);
    const double bandwidth = spec.get_bandwidth_bits_per_s("bandwidth", 1e9);
    model = std::make_unique<LinearCost>(latency, bandwidth);
  } else if (spec.name() == "packet") {
    PacketShape shape;
    shape.payload_bits = whole_bits(spec, "payload", 1460, false);
    shape.header_bits = whole_bits(spec, "header", 40, true);
    const double per_packet = spec.get_double("per_packet", 1.0);
    const double per_message = spec.get_double("per_message", 0.0);
    model = std::make_unique<PacketCost>(shape, per_packet, per_message);
  } else if (spec.name() == "energy") {
    PacketShape shape;
    shape.payload_bits = whole_bits(spec, "payload", 102, false);
    shape.header_bits = whole_bits(spec, "header", 25, true);
    const double per_message = spec.get_double("per_message", 0.0);
    const double per_packet = spec.get_double("per_packet", 0.0);
    const double per_bit = spec.get_double("per_bit", 2.4e-7);
    model = std::make_unique<EnergyCost>(shape, per_message, per_packet, per_bit);
  } else if (spec.name() == "auto") {
    OnlineLinkOptions options;
    options.prior_latency_s = spec.get_seconds("latency", options.prior_latency_s);
    options.prior_bandwidth = spec.get_bandwidth_bits_per_s("bandwidth", options.prior_bandwidth);
    const std::int64_t window = spec.get_int("window", static_cast<std::int64_t>(options.window));
    require(window >= 2 && window <= 4096, "auto", "window", "in [2, 4096]",
            static_cast<double>(window));
    options.window = static_cast<std::size_t>(window);
    model = std::make_unique<AutoCost>(options);
  } else {
    throw InvalidArgument("cost: unknown model '" + spec.name() +
                          "' (expected bits, linear, packet, energy or auto)");
  }
  spec.finish();
  return model;
}

}  // namespace thinwire::tune
