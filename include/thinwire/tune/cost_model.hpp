// Cost models: what one message of b bits costs on the link at hand (SPEC §3). The dynamic tuner
// maximizes ρ(θ)/C(bits(θ)), so C only has to be positive and non-decreasing in b; its unit
// (bits, seconds, joules, abstract packet cost) never mixes with another model's.
//
// Spec strings (`--cost`, core/spec.hpp), b the message size in bits, header included:
//   bits                                           C = b
//   linear:latency=50us,bandwidth=1Gbit            C = α + b/β seconds (α–β, Hockney; HPC/MPI)
//   packet:payload=1460B,header=40B,per_packet=1,per_message=0
//                                                  C = c_0 + c_p·⌈b/P⌉ (TCP/IP, wireless)
//   energy:payload=102B,header=25B,per_message=0,per_packet=0,per_bit=2.4e-7
//                                                  C = E_0 + ⌈b/P⌉·(E_p + (P+H)·e_bit) joules
//   auto:latency=50us,bandwidth=1Gbit,window=48    C = α̂ + b/β̂ seconds, α̂ and β̂ estimated online
//                                                  from the run's own messages (online_link.hpp;
//                                                  latency and bandwidth are the prior)
// P and H are the payload and header bits of one packet (given in bytes, "1460B"; they must be
// whole bits). Per-packet, per-message and per-bit coefficients are plain numbers (joules for
// energy, any unit for packet). Under
// `packet` the header size does not enter C (c_p already prices a whole packet); it is accepted so
// that one packet description serves both models. Defaults: linear as the threads backend's
// default link (1 Gbit/s, 50 µs); packet as Ethernet with TCP/IPv4 (1460 B payload, 40 B header);
// energy as an IEEE 802.15.4 radio (127 B frames: about 102 B payload, 25 B MAC/PHY overhead) at
// 240 nJ per bit on air (250 kbit/s at about 60 mW, a CC2420-class transceiver).
//
// Packet-based models are step functions of b: all sizes up to the end of the last packet cost
// the same, which is why the tuner fills the last packet (`fill_bits`).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "thinwire/comm/link_model.hpp"

namespace thinwire::tune {

class CostModel {
 public:
  virtual ~CostModel() = default;

  // "bits", "linear", "packet", "energy" or "auto".
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // Canonical spec with every parameter spelled out; make_cost_model(spec()) gives an equal model.
  [[nodiscard]] virtual std::string spec() const = 0;
  // An equal model of its own (AutoCost: with the estimate so far), for owners that update it
  // (online_link.hpp) from a prototype built once from the spec.
  [[nodiscard]] virtual std::unique_ptr<CostModel> clone() const = 0;
  // Cost of one message of `bits` bits; positive for bits > 0 and non-decreasing in bits.
  [[nodiscard]] virtual double cost(std::uint64_t bits) const noexcept = 0;
  // The largest size that costs no more than `bits` does: the end of the last packet for the
  // packet-based models, `bits` itself for the others.
  [[nodiscard]] virtual std::uint64_t fill_bits(std::uint64_t bits) const noexcept { return bits; }
  // The equivalent link model for the threads backend's simulated clock, where the cost is a time
  // (linear); empty otherwise.
  [[nodiscard]] virtual std::optional<comm::LinkModel> link_model() const { return std::nullopt; }
};

// C = b.
class BitsCost final : public CostModel {
 public:
  [[nodiscard]] std::unique_ptr<CostModel> clone() const override {
    return std::make_unique<BitsCost>(*this);
  }
  [[nodiscard]] std::string_view name() const noexcept override { return "bits"; }
  [[nodiscard]] std::string spec() const override { return "bits"; }
  [[nodiscard]] double cost(std::uint64_t bits) const noexcept override {
    return static_cast<double>(bits);
  }
};

// C = α + b/β seconds.
class LinearCost final : public CostModel {
 public:
  [[nodiscard]] std::unique_ptr<CostModel> clone() const override {
    return std::make_unique<LinearCost>(*this);
  }
  // Throws InvalidArgument unless latency >= 0 and bandwidth > 0, both finite.
  LinearCost(double latency_s, double bandwidth_bits_per_s);

  [[nodiscard]] double latency_s() const noexcept { return latency_s_; }
  [[nodiscard]] double bandwidth_bits_per_s() const noexcept { return bandwidth_; }

  [[nodiscard]] std::string_view name() const noexcept override { return "linear"; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] double cost(std::uint64_t bits) const noexcept override {
    return latency_s_ + static_cast<double>(bits) / bandwidth_;
  }
  [[nodiscard]] std::optional<comm::LinkModel> link_model() const override;

 private:
  double latency_s_;
  double bandwidth_;
};

// Packet framing shared by the packet and energy models.
struct PacketShape {
  std::uint64_t payload_bits = 1460 * 8;  // P
  std::uint64_t header_bits = 40 * 8;     // H

  // ⌈b/P⌉.
  [[nodiscard]] std::uint64_t packets(std::uint64_t bits) const noexcept {
    return bits / payload_bits + (bits % payload_bits != 0 ? 1 : 0);
  }
  // ⌈b/P⌉·P: the bits that fit in the packets a b-bit message occupies.
  [[nodiscard]] std::uint64_t fill(std::uint64_t bits) const noexcept {
    return packets(bits) * payload_bits;
  }
};

// C = c_0 + c_p·⌈b/P⌉.
class PacketCost final : public CostModel {
 public:
  [[nodiscard]] std::unique_ptr<CostModel> clone() const override {
    return std::make_unique<PacketCost>(*this);
  }
  // Throws InvalidArgument unless P >= 1, c_p > 0 and c_0 >= 0 (finite).
  PacketCost(PacketShape shape, double per_packet, double per_message);

  [[nodiscard]] const PacketShape& shape() const noexcept { return shape_; }

  [[nodiscard]] std::string_view name() const noexcept override { return "packet"; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] double cost(std::uint64_t bits) const noexcept override {
    return per_message_ + per_packet_ * static_cast<double>(shape_.packets(bits));
  }
  [[nodiscard]] std::uint64_t fill_bits(std::uint64_t bits) const noexcept override {
    return shape_.fill(bits);
  }

 private:
  PacketShape shape_;
  double per_packet_;
  double per_message_;
};

// C = E_0 + ⌈b/P⌉·(E_p + (P+H)·e_bit).
class EnergyCost final : public CostModel {
 public:
  [[nodiscard]] std::unique_ptr<CostModel> clone() const override {
    return std::make_unique<EnergyCost>(*this);
  }
  // Throws InvalidArgument unless every coefficient is finite and >= 0 and a packet costs
  // something (E_p + (P+H)·e_bit > 0).
  EnergyCost(PacketShape shape, double per_message, double per_packet, double per_bit);

  [[nodiscard]] std::string_view name() const noexcept override { return "energy"; }
  [[nodiscard]] std::string spec() const override;
  [[nodiscard]] double cost(std::uint64_t bits) const noexcept override {
    return per_message_ + static_cast<double>(shape_.packets(bits)) * packet_energy_;
  }
  [[nodiscard]] std::uint64_t fill_bits(std::uint64_t bits) const noexcept override {
    return shape_.fill(bits);
  }

 private:
  PacketShape shape_;
  double per_message_;
  double per_packet_;
  double per_bit_;
  double packet_energy_;  // E_p + (P+H)·e_bit
};

// Parses a cost spec (forms above). Unknown names or keys and out-of-range values are
// InvalidArgument naming the model and the key.
[[nodiscard]] std::unique_ptr<CostModel> make_cost_model(std::string_view spec);

}  // namespace thinwire::tune
