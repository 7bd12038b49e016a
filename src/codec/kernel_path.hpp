// Which implementation runs a codec's hot loops (internal: tests force the scalar oracle through
// it). kFast is the default everywhere (the SIMD kernels of src/codec/kernels/ on the target
// Highway chose); kReference is the original scalar per-element loop, kept as the test oracle.
// Both produce byte-identical messages and identical decoded values.
//
// The payload functions of qsgd.hpp, terngrad.hpp and sign.hpp with a KernelPath argument; the
// public ones (without it) run kFast.
#pragma once

#include <cstdint>
#include <span>

#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/sign.hpp"
#include "thinwire/codec/terngrad.hpp"

namespace thinwire::codec {

enum class KernelPath : std::uint8_t { kFast, kReference };

void qsgd_encode_payload(std::span<const float> v, const QsgdParams& p, RngKey key, BitWriter& w,
                         KernelPath path, unsigned threads = 1);
void qsgd_decode_payload(BitReader& r, const QsgdParams& p, std::span<float> out, DecodeMode mode,
                         KernelPath path);

void terngrad_encode_payload(std::span<const float> v, const TernGradParams& p, RngKey key,
                             BitWriter& w, KernelPath path, unsigned threads = 1);
void terngrad_decode_payload(BitReader& r, std::uint32_t bucket, std::span<float> out,
                             DecodeMode mode, KernelPath path);

// kReference: kernels::sum_abs; kFast: the fused one-pass encode kernel's sum where it runs.
[[nodiscard]] double sign_abs_sum(std::span<const float> u, KernelPath path);
// kReference: the scalar per-bit loop (the test oracle), the same bits.
void sign_encode_bucket(std::span<const float> u, BitWriter& w, KernelPath path);
void sign_decode_bucket(BitReader& r, float scale, std::span<float> out, DecodeMode mode,
                        KernelPath path);
// kReference: two passes through a BitWriter.
std::size_t sign_encode_payload(std::span<const float> v, std::uint32_t bucket,
                                std::span<std::byte> out, KernelPath path, unsigned threads = 1);
void sign_decode_payload(std::span<const std::byte> payload, std::uint32_t bucket,
                         std::span<float> out, DecodeMode mode, KernelPath path);

}  // namespace thinwire::codec
