// The stochastic-rounding stream of QSGD and TernGrad: 24 random bits per element, counter-based
// (element i's bits are a pure function of the key and i), and cheap where the CPU has vector AES.
//
// Element i belongs to quad q = i / 4 and rounding block c = i / 1024. The 128-bit input of quad q
// is the block's whitening W_c (128 bits from RngKey::bits(2c) and bits(2c + 1)) with q mod 256
// added to its first 32-bit word; two AES rounds (the AESENC instruction: ShiftRows, SubBytes,
// MixColumns, then XOR with a round key) with the stream's round keys R1 and R2 turn it into four
// 32-bit words, and element i takes the top 24 bits of word i mod 4.
//
// Why this is a sound rounding source:
// - For a random key, each element's input is uniform over 128 bits (W_c is), and two AES rounds
//   are a bijection, so each element's 24 bits are exactly uniform: stochastic rounding stays
//   unbiased whatever the data.
// - Within a block the 256 inputs differ only in one word; after two AES rounds every output byte
//   depends on every input byte (two rounds give AES full diffusion), and the expected probability
//   of any fixed output difference is at most 2^-30 (at least five active S-boxes over two rounds,
//   each with differential probability <= 2^-6), so neighbouring elements look independent.
//   Blocks take unrelated whitening from the 64-bit SplitMix stream.
// - Cost: with VAES one AESENC instruction is four 128-bit rounds, so 16 elements take one vector
//   add and two AESENC, against two 32-bit multiplies per element (four micro-operations per 16
//   elements each) for the previous multiply-xorshift mixer. This software version is the test
//   oracle and the fallback; the codec kernels (src/codec) use AES-NI or VAES where present and
//   are tested to give identical bits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "thinwire/core/rng.hpp"

namespace thinwire {

// A 128-bit AES state as four little-endian 32-bit words (word w holds bytes 4w..4w+3, i.e. AES
// column w), the layout of an __m128i.
using AesBlock = std::array<std::uint32_t, 4>;

namespace aes_detail {

constexpr std::uint8_t gf_mul(std::uint8_t a, std::uint8_t b) noexcept {
  std::uint8_t p = 0;
  for (int i = 0; i < 8; ++i) {
    if ((b & 1) != 0) p ^= a;
    const bool high = (a & 0x80) != 0;
    a = static_cast<std::uint8_t>(a << 1);
    if (high) a ^= 0x1B;  // reduce by x^8 + x^4 + x^3 + x + 1
    b >>= 1;
  }
  return p;
}

constexpr std::uint8_t rotl8(std::uint8_t x, int k) noexcept {
  return static_cast<std::uint8_t>((x << k) | (x >> (8 - k)));
}

// The AES S-box from its definition: the inverse in GF(2^8) (x^254; 0 maps to 0), then the
// affine map b ^ rotl(b, 1..4) ^ 0x63.
constexpr std::array<std::uint8_t, 256> make_sbox() noexcept {
  std::array<std::uint8_t, 256> box{};
  for (int x = 0; x < 256; ++x) {
    const auto b = static_cast<std::uint8_t>(x);
    std::uint8_t inv = 1;
    std::uint8_t power = b;
    for (int e = 254; e != 0; e >>= 1) {  // square-and-multiply
      if ((e & 1) != 0) inv = gf_mul(inv, power);
      power = gf_mul(power, power);
    }
    if (x == 0) inv = 0;
    box[static_cast<std::size_t>(x)] = static_cast<std::uint8_t>(
        inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^ rotl8(inv, 4) ^ 0x63);
  }
  return box;
}

inline constexpr std::array<std::uint8_t, 256> kSbox = make_sbox();

constexpr std::uint8_t xtime(std::uint8_t a) noexcept { return gf_mul(a, 2); }

}  // namespace aes_detail

// One AES encryption round exactly as the AESENC instruction computes it.
constexpr AesBlock aes_round(const AesBlock& state, const AesBlock& round_key) noexcept {
  using aes_detail::kSbox;
  using aes_detail::xtime;
  std::uint8_t s[16] = {};
  for (std::size_t i = 0; i < 16; ++i) {
    s[i] = static_cast<std::uint8_t>(state[i / 4] >> (8 * (i % 4)));
  }
  AesBlock out{};
  for (int c = 0; c < 4; ++c) {
    // ShiftRows (row r of column c comes from column c + r) and SubBytes.
    std::uint8_t a[4] = {};
    for (int r = 0; r < 4; ++r) a[r] = kSbox[s[r + 4 * ((c + r) % 4)]];
    // MixColumns: the column times {2 3 1 1} circulant over GF(2^8).
    const auto all = static_cast<std::uint8_t>(a[0] ^ a[1] ^ a[2] ^ a[3]);
    std::uint32_t column = 0;
    for (int r = 0; r < 4; ++r) {
      const auto b = static_cast<std::uint8_t>(a[r] ^ all ^ xtime(a[r] ^ a[(r + 1) % 4]));
      column |= std::uint32_t{b} << (8 * r);
    }
    out[static_cast<std::size_t>(c)] = column ^ round_key[static_cast<std::size_t>(c)];
  }
  return out;
}

// Elements per quad (one AES block) and per rounding block (one whitening value).
inline constexpr unsigned kRoundingQuadLog2 = 2;
inline constexpr unsigned kRoundingBlockLog2 = 10;
inline constexpr std::uint64_t kRoundingBlock = std::uint64_t{1} << kRoundingBlockLog2;

// The keys of one rounding stream, derived from an RngKey.
class RoundingKey {
 public:
  constexpr explicit RoundingKey(RngKey key) noexcept : key_(key) {
    const RngKey rounds = key.derive(0xA5E5'0F0F'2B7E'1516ULL);
    round1_ = split(rounds.bits(0), rounds.bits(1));
    round2_ = split(rounds.bits(2), rounds.bits(3));
  }

  [[nodiscard]] constexpr const AesBlock& round1() const noexcept { return round1_; }
  [[nodiscard]] constexpr const AesBlock& round2() const noexcept { return round2_; }

  // W_c, the input of the first quad of rounding block c.
  [[nodiscard]] constexpr AesBlock whitening(std::uint64_t block) const noexcept {
    return split(key_.bits(2 * block), key_.bits(2 * block + 1));
  }

  // The four 32-bit words of quad q (elements 4q .. 4q + 3), from the block's whitening.
  [[nodiscard]] constexpr AesBlock quad_words(const AesBlock& whitening,
                                              std::uint64_t q) const noexcept {
    AesBlock x = whitening;
    x[0] += static_cast<std::uint32_t>(q & ((kRoundingBlock >> kRoundingQuadLog2) - 1));
    return aes_round(aes_round(x, round1_), round2_);
  }

  // The 24 random bits of element i (for one-off use; RoundingCursor for runs of elements).
  [[nodiscard]] constexpr std::uint32_t bits24(std::uint64_t i) const noexcept {
    const AesBlock w = quad_words(whitening(i >> kRoundingBlockLog2), i >> kRoundingQuadLog2);
    return w[i & 3] >> 8;
  }

 private:
  static constexpr AesBlock split(std::uint64_t lo, std::uint64_t hi) noexcept {
    return {static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(lo >> 32),
            static_cast<std::uint32_t>(hi), static_cast<std::uint32_t>(hi >> 32)};
  }

  RngKey key_;
  AesBlock round1_{};
  AesBlock round2_{};
};

// Sequential reads of a rounding stream in software: one AES evaluation per quad, one whitening
// per block (the scalar reference encoders walk elements in order).
class RoundingCursor {
 public:
  constexpr explicit RoundingCursor(const RoundingKey& key) noexcept : key_(&key) {}

  [[nodiscard]] constexpr std::uint32_t bits24(std::uint64_t i) noexcept {
    const std::uint64_t q = i >> kRoundingQuadLog2;
    if (!valid_ || q != quad_) {
      const std::uint64_t block = i >> kRoundingBlockLog2;
      if (!valid_ || block != block_) {
        whitening_ = key_->whitening(block);
        block_ = block;
      }
      words_ = key_->quad_words(whitening_, q);
      quad_ = q;
      valid_ = true;
    }
    return words_[i & 3] >> 8;
  }

 private:
  const RoundingKey* key_;
  AesBlock whitening_{};
  AesBlock words_{};
  std::uint64_t block_ = 0;
  std::uint64_t quad_ = 0;
  bool valid_ = false;
};

// The rounding decision from 24 random bits r and the scaled fraction t = frac·2^24 in [0, 2^24]
// (exact in fp32 and double, since frac's bits lie within 24 of its leading one): 1 with
// probability ⌈t⌉/2^24 over r, i.e. [r + ⌈t⌉ >= 2^24]. Written as truncation plus a compare
// instead of std::ceil so that it vectorizes on every x86-64 level.
[[nodiscard]] constexpr std::uint32_t round_up24(std::uint32_t r, float t) noexcept {
  const auto whole = static_cast<std::uint32_t>(static_cast<std::int32_t>(t));
  const std::uint32_t c = whole + static_cast<std::uint32_t>(static_cast<float>(whole) < t);
  return (r + c) >> 24;
}
[[nodiscard]] constexpr std::uint32_t round_up24(std::uint32_t r, double t) noexcept {
  const auto whole = static_cast<std::uint32_t>(static_cast<std::int64_t>(t));
  const std::uint32_t c = whole + static_cast<std::uint32_t>(static_cast<double>(whole) < t);
  return (r + c) >> 24;
}

}  // namespace thinwire
