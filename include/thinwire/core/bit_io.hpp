// Bit-level I/O over byte buffers and the integer codes used in messages.
//
// Bits are packed least-significant first into little-endian 64-bit words, so a field of w bits
// costs one shift and one or two word operations. BitWriter writes into caller-provided storage
// (sized beforehand from a codec's max_encoded_bytes); BitReader checks every read against the
// end of its buffer and throws CorruptMessage instead of reading past it, so decoders built on it
// are safe for any input.
//
// Integer codes are types satisfying the IntegerCode concept; decoders and encoders take them as
// template parameters, so the per-element loop contains no virtual or indirect calls.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire {

static_assert(std::endian::native == std::endian::little,
              "thinwire's bit I/O assumes a little-endian host");

class BitWriter {
 public:
  explicit BitWriter(std::span<std::byte> out) noexcept : out_(out) {}

  // Appends the low `width` bits of `value` (width in [0, 64]).
  void put(std::uint64_t value, unsigned width) {
    if (width == 0) return;
    if (width < 64) value &= (std::uint64_t{1} << width) - 1;
    acc_ |= value << used_;
    const unsigned total = used_ + width;
    if (total >= 64) {
      flush_word(acc_);
      acc_ = used_ == 0 ? 0 : value >> (64 - used_);
      used_ = total - 64;
    } else {
      used_ = total;
    }
  }

  void put_bit(bool bit) { put(bit ? 1 : 0, 1); }

  // Appends n whole 64-bit words, exactly as n calls of put(words[i], 64) would, with one bounds
  // check for the lot (bulk output of the packed kernels).
  void put_words(const std::uint64_t* words, std::size_t n) {
    put_words_impl(n, [words](std::size_t i) { return words[i]; });
  }

  // Appends the first `bits` bits of a stream another BitWriter wrote into `bytes` (least
  // significant first): how per-thread streams are concatenated.
  void put_stream(std::span<const std::byte> bytes, std::uint64_t bits) {
    const std::size_t words = static_cast<std::size_t>(bits / 64);
    put_words_impl(words, [&bytes](std::size_t i) {
      std::uint64_t word = 0;
      std::memcpy(&word, bytes.data() + 8 * i, 8);
      return word;
    });
    const auto rest = static_cast<unsigned>(bits % 64);
    std::uint64_t tail = 0;
    for (unsigned b = 0; 8 * b < rest; ++b) {
      tail |= static_cast<std::uint64_t>(bytes[8 * words + b]) << (8 * b);
    }
    put(tail, rest);
  }

  // For kernels that write whole bytes straight into the output: if the stream is at a byte
  // boundary and n more bytes fit, returns where they go (the caller then writes at most n bytes
  // there and calls commit_bytes with how many it wrote); otherwise nullptr, and nothing changes
  // but that pending whole bytes may have been written out.
  [[nodiscard]] std::byte* reserve_bytes(std::size_t n) {
    settle_bytes();
    if (used_ != 0 || n > out_.size() - pos_) return nullptr;
    return out_.data() + pos_;
  }
  void commit_bytes(std::size_t n) noexcept { pos_ += n; }

  // Flushes the partial word; returns the number of bytes written in total.
  std::size_t finish() {
    const std::size_t tail = (used_ + 7) / 8;
    if (pos_ + tail > out_.size()) overflow();
    for (std::size_t i = 0; i < tail; ++i) {
      out_[pos_ + i] = static_cast<std::byte>((acc_ >> (8 * i)) & 0xFF);
    }
    pos_ += tail;
    acc_ = 0;
    used_ = 0;
    return pos_;
  }

  [[nodiscard]] std::uint64_t bits_written() const noexcept { return pos_ * 8 + used_; }

 private:
  template <typename Load>
  void put_words_impl(std::size_t n, Load load) {
    if (pos_ + 8 * n > out_.size()) {
      for (std::size_t i = 0; i < n; ++i) put(load(i), 64);  // near the end: checked writes
      return;
    }
    std::byte* dst = out_.data() + pos_;
    if (used_ == 0) {
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t word = load(i);
        std::memcpy(dst + 8 * i, &word, 8);
      }
    } else {
      // put(x, 64) flushes acc | x << used and keeps x >> (64 - used); used does not change.
      const unsigned back = 64 - used_;
      std::uint64_t acc = acc_;
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t x = load(i);
        const std::uint64_t word = acc | (x << used_);
        std::memcpy(dst + 8 * i, &word, 8);
        acc = x >> back;
      }
      acc_ = acc;
    }
    pos_ += 8 * n;
  }

  void flush_word(std::uint64_t word) {
    if (pos_ + 8 > out_.size()) {
      // Near the end of the buffer: write byte by byte so an exact-size buffer still works.
      for (int i = 0; i < 8; ++i) {
        if (pos_ >= out_.size()) overflow();
        out_[pos_++] = static_cast<std::byte>((word >> (8 * i)) & 0xFF);
      }
      return;
    }
    std::memcpy(out_.data() + pos_, &word, 8);
    pos_ += 8;
  }
  [[noreturn]] static void overflow() {
    throw Error("internal: bit writer overflow (a codec exceeded its max_encoded_bytes)");
  }
  // Writes the whole bytes of the pending bits, leaving fewer than 8 pending (BitAppender).
  void settle_bytes() {
    for (; used_ >= 8; used_ -= 8, acc_ >>= 8) {
      if (pos_ >= out_.size()) overflow();
      out_[pos_++] = static_cast<std::byte>(acc_ & 0xFF);
    }
  }

  friend class BitAppender;
  std::span<std::byte> out_;
  std::size_t pos_ = 0;
  std::uint64_t acc_ = 0;
  unsigned used_ = 0;
};

// The state of a BitAppender, for kernels that append codes themselves with BitAppender::put's
// exact steps (kernels::qsgd_elias_gamma): the byte where the next 8-byte store goes, and the
// pending bits there (acc < 2^used, used < 8).
struct BitCursor {
  std::byte* dst = nullptr;
  std::uint64_t acc = 0;
  unsigned used = 0;

  // BitAppender::put without its bounds check: the caller guarantees 8 writable bytes at dst.
  void put_unchecked(std::uint64_t value, unsigned width) noexcept {
    acc |= value << used;
    used += width;
    std::memcpy(dst, &acc, 8);
    const unsigned bytes = used >> 3;
    dst += bytes;
    acc >>= 8 * bytes;  // used <= 63 here, so at most 56
    used &= 7;
  }
};

// Appends short codes to a BitWriter for hot loops, with no data-dependent branch: each put()
// stores 8 bytes at the current byte and advances by the whole bytes it completed (the bytes past
// them are rewritten by the next put). The same bits as BitWriter::put. It holds the writer's
// state while it lives (do not use the writer meanwhile) and hands it back when destroyed. Within
// 8 bytes of the buffer's end it falls back to the writer's checked put.
class BitAppender {
 public:
  explicit BitAppender(BitWriter& w) : w_(w) { take(); }
  ~BitAppender() { give_back(); }
  BitAppender(const BitAppender&) = delete;
  BitAppender& operator=(const BitAppender&) = delete;

  // Appends the low `width` bits of `value`: 1 <= width <= 56, value < 2^width.
  void put(std::uint64_t value, unsigned width) {
    if (end_ - c_.dst < 8) [[unlikely]] {
      put_checked(value, width);
      return;
    }
    c_.put_unchecked(value, width);
  }
  // Any code put() does not take (width in [0, 64]), through the writer's checked put.
  void put_checked(std::uint64_t value, unsigned width) {
    give_back();
    w_.put(value, width);
    take();
  }

  // The state itself, for a kernel that appends through BitCursor::put_unchecked while it stays
  // 8 bytes or more before the end (room() bytes are left after cursor().dst).
  [[nodiscard]] BitCursor& cursor() noexcept { return c_; }
  [[nodiscard]] std::size_t room() const noexcept {
    return static_cast<std::size_t>(end_ - c_.dst);
  }

 private:
  void take() {
    w_.settle_bytes();
    c_.dst = w_.out_.data() + w_.pos_;
    end_ = w_.out_.data() + w_.out_.size();
    c_.acc = w_.acc_;
    c_.used = w_.used_;
  }
  void give_back() noexcept {
    w_.pos_ = static_cast<std::size_t>(c_.dst - w_.out_.data());
    w_.acc_ = c_.acc;
    w_.used_ = c_.used;
  }

  BitWriter& w_;
  BitCursor c_;
  std::byte* end_ = nullptr;
};

class BitReader {
 public:
  explicit BitReader(std::span<const std::byte> in) noexcept
      : in_(in), total_bits_(static_cast<std::uint64_t>(in.size()) * 8) {}

  // Reads `width` bits (width in [0, 64]); throws CorruptMessage past the end.
  std::uint64_t get(unsigned width) {
    if (width == 0) return 0;
    require(width);
    std::uint64_t value = peek64() & mask(width);
    pos_ += width;
    return value;
  }

  bool get_bit() { return get(1) != 0; }

  // The whole input, read-only, for kernels that decode in place from a byte position.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return in_; }

  // Reads n whole 64-bit words into out (8·n bytes, little-endian), exactly as n calls of
  // get(64) would, with one bounds check for the lot (bulk input of the packed decoders).
  void get_words(std::byte* out, std::size_t n) {
    require(64 * static_cast<std::uint64_t>(n));
    const std::byte* src = in_.data() + pos_ / 8;
    const auto shift = static_cast<unsigned>(pos_ % 8);
    if (shift == 0) {
      std::memcpy(out, src, 8 * n);
    } else {
      // pos + 64·n <= 8·size with shift > 0 puts byte 8·n of src inside the buffer.
      for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t lo = 0;
        std::memcpy(&lo, src + 8 * i, 8);
        const auto hi = static_cast<std::uint64_t>(src[8 * i + 8]);
        const std::uint64_t word = (lo >> shift) | (hi << (64 - shift));
        std::memcpy(out + 8 * i, &word, 8);
      }
    }
    pos_ += 64 * static_cast<std::uint64_t>(n);
  }

  // Number of consecutive zero bits from the current position (at most 64), not consumed.
  // Throws CorruptMessage if the buffer ends before a one bit.
  unsigned count_zeros() {
    const std::uint64_t word = peek64();
    const unsigned avail = remaining() < 64 ? static_cast<unsigned>(remaining()) : 64;
    const unsigned zeros = word == 0 ? 64 : static_cast<unsigned>(std::countr_zero(word));
    if (zeros >= avail) {
      if (avail < 64) throw CorruptMessage("message ends inside an integer code");
    }
    return zeros;
  }

  // The 64 bits starting at the current position, zero-filled past the end of the buffer; not
  // consumed. For decoders that parse several short codes from one word, then skip() them
  // (checking remaining() first).
  [[nodiscard]] std::uint64_t peek() const noexcept { return peek64(); }
  // The same in its low 57 bits (the bits above them are unspecified), with one unaligned load
  // where the buffer allows: for decoders that need only a short window per step.
  [[nodiscard]] std::uint64_t peek57() const noexcept {
    const std::size_t byte = static_cast<std::size_t>(pos_ / 8);
    if (byte + 8 > in_.size()) return peek64();
    std::uint64_t word = 0;
    std::memcpy(&word, in_.data() + byte, 8);
    return word >> (pos_ % 8);
  }

  void skip(std::uint64_t width) {
    require(width);
    pos_ += width;
  }

  [[nodiscard]] std::uint64_t position() const noexcept { return pos_; }
  [[nodiscard]] std::uint64_t remaining() const noexcept { return total_bits_ - pos_; }

 private:
  static constexpr std::uint64_t mask(unsigned width) noexcept {
    return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
  }
  void require(std::uint64_t width) const {
    if (width > remaining()) throw CorruptMessage("message ends before its payload does");
  }
  // The 64 bits starting at pos_, zero-filled past the end of the buffer.
  [[nodiscard]] std::uint64_t peek64() const noexcept {
    const std::size_t byte = static_cast<std::size_t>(pos_ / 8);
    const unsigned shift = static_cast<unsigned>(pos_ % 8);
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    if (byte + 9 <= in_.size()) {
      std::memcpy(&lo, in_.data() + byte, 8);
      hi = static_cast<std::uint64_t>(in_[byte + 8]);
    } else {
      for (std::size_t i = 0; i < 8 && byte + i < in_.size(); ++i) {
        lo |= static_cast<std::uint64_t>(in_[byte + i]) << (8 * i);
      }
      if (byte + 8 < in_.size()) hi = static_cast<std::uint64_t>(in_[byte + 8]);
    }
    return shift == 0 ? lo : (lo >> shift) | (hi << (64 - shift));
  }

  std::span<const std::byte> in_;
  std::uint64_t total_bits_;
  std::uint64_t pos_ = 0;
};

// An integer code maps positive integers (n >= 1) to bit strings.
template <typename C>
concept IntegerCode = requires(BitWriter& w, BitReader& r, std::uint64_t n) {
  { C::bits(n) } -> std::convertible_to<unsigned>;
  C::put(w, n);
  { C::get(r) } -> std::same_as<std::uint64_t>;
};

// Elias gamma: floor(log2 n) zeros, a one, then the floor(log2 n) low bits of n.
// Good for small values (QSGD levels); 2·floor(log2 n) + 1 bits.
struct EliasGamma {
  [[nodiscard]] static constexpr unsigned bits(std::uint64_t n) noexcept {
    return 2 * static_cast<unsigned>(std::bit_width(n) - 1) + 1;
  }
  // The code of n as one value of `width` bits, least significant bit first (the bits put
  // writes), for hot loops that write several codes at once; n < 2^32, so that it fits 64 bits.
  [[nodiscard]] static constexpr std::uint64_t word(std::uint64_t n, unsigned& width) noexcept {
    const auto len = static_cast<unsigned>(std::bit_width(n)) - 1;
    width = 2 * len + 1;
    return (std::uint64_t{1} << len) | ((n & ((std::uint64_t{1} << len) - 1)) << (len + 1));
  }
  static void put(BitWriter& w, std::uint64_t n) {
    const unsigned len = static_cast<unsigned>(std::bit_width(n)) - 1;
    w.put(std::uint64_t{1} << len, len + 1);
    w.put(n, len);
  }
  static std::uint64_t get(BitReader& r) {
    const unsigned len = r.count_zeros();
    if (len > 63) throw CorruptMessage("elias-gamma code longer than 64 bits");
    r.skip(len + 1);
    return (std::uint64_t{1} << len) | r.get(len);
  }
};

// Elias delta: the bit length L of n in Elias gamma, then the L - 1 low bits of n.
// Good for large values (index gaps); about log2 n + 2·log2 log2 n bits.
struct EliasDelta {
  [[nodiscard]] static constexpr unsigned bits(std::uint64_t n) noexcept {
    const auto len = static_cast<std::uint64_t>(std::bit_width(n));
    return EliasGamma::bits(len) + static_cast<unsigned>(len) - 1;
  }
  // As EliasGamma::word, for n < 2^32 (at most 42 bits).
  [[nodiscard]] static constexpr std::uint64_t word(std::uint64_t n, unsigned& width) noexcept {
    const auto len = static_cast<unsigned>(std::bit_width(n));
    unsigned gamma_width = 0;
    const std::uint64_t gamma = EliasGamma::word(len, gamma_width);
    width = gamma_width + len - 1;
    return gamma | ((n & ((std::uint64_t{1} << (len - 1)) - 1)) << gamma_width);
  }
  // The inverse of word: the n < 2^32 whose code starts at bit 0 of `window` (at least
  // kMaxWordBits valid bits there) and its width; 0 if those bits start the code of no such n (a
  // longer code, which get reads or rejects).
  static constexpr unsigned kMaxWordBits = 42;
  [[nodiscard]] static constexpr std::uint64_t from_word(std::uint64_t window,
                                                         unsigned& width) noexcept {
    // n < 2^32 has a bit length L <= 32, whose gamma code has at most 5 leading zeros.
    const auto zeros = static_cast<unsigned>(std::countr_zero(window | (std::uint64_t{1} << 6)));
    if (zeros > 5) return 0;
    const std::uint64_t len =
        (std::uint64_t{1} << zeros) | ((window >> (zeros + 1)) & ((std::uint64_t{1} << zeros) - 1));
    if (len > 32) return 0;
    const unsigned gamma_width = 2 * zeros + 1;
    const auto low = static_cast<unsigned>(len - 1);
    width = gamma_width + low;
    return (std::uint64_t{1} << low) | ((window >> gamma_width) & ((std::uint64_t{1} << low) - 1));
  }
  static void put(BitWriter& w, std::uint64_t n) {
    const auto len = static_cast<unsigned>(std::bit_width(n));
    EliasGamma::put(w, len);
    w.put(n, len - 1);
  }
  static std::uint64_t get(BitReader& r) {
    const std::uint64_t len = EliasGamma::get(r);
    if (len > 64) throw CorruptMessage("elias-delta code longer than 64 bits");
    const auto width = static_cast<unsigned>(len - 1);
    return (width == 64 ? 0 : (std::uint64_t{1} << width)) | r.get(width);
  }
};

static_assert(IntegerCode<EliasGamma>);
static_assert(IntegerCode<EliasDelta>);

}  // namespace thinwire
