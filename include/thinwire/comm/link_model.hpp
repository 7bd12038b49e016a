// Link model: what one message costs on a network link, in seconds. It drives the simulated clock
// of the threads backend (comm/threads.hpp), so one machine can answer "how long would this take
// on 100 Mbit/s, 8 nodes" (SPEC §4).
//
// Two forms, written as spec strings (core/spec.hpp):
//   linear (α–β, Hockney):  "bandwidth=100Mbit,latency=50us[,overhead=1.0456]"
//       t(b) = α + 8·o·b/β                    b bytes, α latency, β bandwidth in bit/s,
//                                             o wire bytes per payload byte (default 1)
//   packet (TCP/IP framing): "model=packet,payload=1460B,header=40B,bandwidth=1Gbit,latency=50us"
//       t(b) = α + ⌈b/P⌉·(P + H)·8/β          P payload bytes and H header bytes per packet
// Defaults: linear, 1 Gbit/s, 50 µs, o = 1. The overhead o is the framing a real link adds to each
// payload byte as a constant factor: TCP over IPv4 over Ethernet with a 1500-byte MTU carries 1448
// payload bytes (TCP timestamps on, Linux's default) in a 1514-byte frame as tc and switches meter
// it, o = 1514/1448 = 1.0456; when the reverse direction is busy too (every all-reduce), delayed
// ACKs (one 66-byte frame per two segments) share the link: o = 1.0456 + 66/2896 = 1.068.
// experiments/netlab_validation measured which of these a real shaped link needs. The packet form
// charges a full packet for a partly filled last one, which is what makes "fill the last packet"
// free for the tuner (SPEC §3); an empty message costs α alone.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace thinwire::comm {

enum class LinkKind { kLinear, kPacket };

struct LinkModel {
  LinkKind kind = LinkKind::kLinear;
  double bandwidth_bits_per_s = 1e9;  // β
  double latency_s = 50e-6;           // α
  double payload_bytes = 1460;        // P, packet form only (Ethernet MSS)
  double header_bytes = 40;           // H, packet form only (IPv4 + TCP headers)
  double overhead = 1;                // o, linear form only: wire bytes per payload byte

  // Parses the spec forms above; unknown keys, non-positive bandwidth or payload, negative
  // latency or header and an overhead below 1 are InvalidArgument naming the key.
  [[nodiscard]] static LinkModel parse(std::string_view spec);

  // Throws InvalidArgument if a field is out of range (for models built by hand).
  void validate() const;

  // Modelled time for one message of `bytes` bytes (formulas above).
  [[nodiscard]] double message_seconds(std::size_t bytes) const;

  // The spec string that parses back to this model, e.g. "bandwidth=100Mbit/s,latency=5e-05s".
  [[nodiscard]] std::string to_spec() const;
};

}  // namespace thinwire::comm
