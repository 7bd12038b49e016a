// Helpers shared by the codec tests: test vectors, a full-sort top-k oracle, and
// message surgery for decoder corruption tests (decode_unverified skips the checksum, so a test
// can hand a payload decoder exactly the bytes it wants).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/message.hpp"
#include "thinwire/core/bit_io.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::codec::testing {

inline RngKey test_key(std::uint64_t seed) { return RngKey::make(seed, 0, 0, RngPurpose::kTest); }

// d standard-normal values.
inline std::vector<float> normal_vector(std::uint64_t seed, std::size_t d) {
  RngStream rng(test_key(seed));
  std::vector<float> v(d);
  for (float& x : v) x = static_cast<float>(rng.next_normal());
  return v;
}

// Gradient-like values: a uniform sign and size in (-1, 1) times 2^e, e uniform in [lo, hi), so
// that the magnitudes spread over hi - lo octaves.
inline std::vector<float> log_uniform_vector(RngKey key, std::size_t d, double lo, double hi) {
  std::vector<float> v(d);
  for (std::size_t i = 0; i < d; ++i) {
    const double u = 2.0 * key.uniform_double(2 * i) - 1.0;
    v[i] = static_cast<float>(u * std::exp2((hi - lo) * key.uniform_double(2 * i + 1) + lo));
  }
  return v;
}

// d values from a small set of magnitudes and both signs (many exact ties) plus zeros.
inline std::vector<float> tied_vector(std::uint64_t seed, std::size_t d) {
  RngStream rng(test_key(seed));
  std::vector<float> v(d);
  for (float& x : v) {
    const auto level = static_cast<float>(rng.next_below(4));
    x = rng.next_below(2) == 0 ? level : -level;
  }
  return v;
}

// The k indices of largest |v_i|, ties to the lower index, ascending: a full sort.
inline std::vector<std::uint32_t> top_k_oracle(std::span<const float> v, std::size_t k) {
  std::vector<std::uint32_t> order(v.size());
  std::iota(order.begin(), order.end(), std::uint32_t{0});
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    const float ma = std::fabs(v[a]);
    const float mb = std::fabs(v[b]);
    return ma != mb ? ma > mb : a < b;
  });
  order.resize(std::min(k, v.size()));
  std::sort(order.begin(), order.end());
  return order;
}

inline std::vector<float> decode_vector(std::span<const std::byte> message) {
  std::vector<float> out(message_elements(message));
  decode(message, out, DecodeMode::kOverwrite);
  return out;
}

inline std::vector<std::byte> payload_of(std::span<const std::byte> message) {
  const MessageView view = parse_message(message);
  return {view.payload.begin(), view.payload.end()};
}

// The message with its payload replaced (lengths fixed up, checksum left stale).
inline std::vector<std::byte> with_payload(std::span<const std::byte> message,
                                           std::span<const std::byte> payload) {
  const MessageView view = parse_message(message);
  std::vector<std::byte> out(
      message.begin(),
      message.begin() + static_cast<std::ptrdiff_t>(kHeaderBytes + view.params.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  for (std::size_t i = 0; i < 8; ++i) {
    out[16 + i] = static_cast<std::byte>((payload.size() >> (8 * i)) & 0xFF);
  }
  return out;
}

// A payload written bit by bit.
inline std::vector<std::byte> make_payload(const std::function<void(BitWriter&)>& write) {
  std::vector<std::byte> buffer(1 << 16);
  BitWriter w(buffer);
  write(w);
  buffer.resize(w.finish());
  return buffer;
}

// decode_unverified must throw CorruptMessage and leave an accumulate target untouched.
inline void expect_rejected(std::span<const std::byte> message, const char* what) {
  std::vector<float> out(message_elements(message), 7.0f);
  EXPECT_THROW(decode_unverified(message, out, DecodeMode::kAccumulate), CorruptMessage) << what;
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](float x) { return x == 7.0f; })) << what;
}

}  // namespace thinwire::codec::testing
