#include "thinwire/core/bit_io.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "thinwire/core/rng.hpp"

namespace thinwire {
namespace {

TEST(BitIoTest, RoundTripsEveryWidth) {
  std::vector<std::byte> buffer(65 * 64 * 8);
  BitWriter w(buffer);
  RngStream rng(RngKey::make(1, 0, 0, RngPurpose::kTest));
  std::vector<std::uint64_t> values;
  for (unsigned width = 0; width <= 64; ++width) {
    for (int rep = 0; rep < 7; ++rep) {
      const std::uint64_t v = rng.next_bits();
      values.push_back(width == 64 ? v : v & ((std::uint64_t{1} << width) - 1));
      w.put(v, width);
    }
  }
  const std::size_t bytes = w.finish();
  BitReader r(std::span<const std::byte>(buffer.data(), bytes));
  std::size_t k = 0;
  for (unsigned width = 0; width <= 64; ++width) {
    for (int rep = 0; rep < 7; ++rep) EXPECT_EQ(r.get(width), values[k++]) << "width " << width;
  }
  EXPECT_LT(r.remaining(), 8u);
}

template <typename Code>
void expect_code_round_trip() {
  std::vector<std::uint64_t> values = {
      1, 2, 3, 4, 5, 7, 8, 255, 256, 1u << 20, (std::uint64_t{1} << 63) + 5, ~std::uint64_t{0}};
  std::vector<std::byte> buffer(4096);
  BitWriter w(buffer);
  std::uint64_t expected_bits = 0;
  for (auto v : values) {
    Code::put(w, v);
    expected_bits += Code::bits(v);
  }
  EXPECT_EQ(w.bits_written(), expected_bits);
  const std::size_t bytes = w.finish();
  BitReader r(std::span<const std::byte>(buffer.data(), bytes));
  for (auto v : values) EXPECT_EQ(Code::get(r), v);
}

TEST(BitIoTest, EliasGammaRoundTrips) { expect_code_round_trip<EliasGamma>(); }
TEST(BitIoTest, EliasDeltaRoundTrips) { expect_code_round_trip<EliasDelta>(); }

// Code::word gives the bits and width Code::put writes, for n below 2^32.
template <typename Code>
void expect_word_matches_put() {
  for (std::uint64_t n : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3}, std::uint64_t{255},
                          std::uint64_t{256}, std::uint64_t{12345}, std::uint64_t{1} << 31,
                          (std::uint64_t{1} << 32) - 1}) {
    std::vector<std::byte> buffer(16);
    BitWriter w(buffer);
    Code::put(w, n);
    const std::uint64_t written = w.bits_written();
    w.finish();
    BitReader r(buffer);
    unsigned width = 0;
    const std::uint64_t word = Code::word(n, width);
    EXPECT_EQ(width, written) << "n=" << n;
    EXPECT_EQ(word, r.get(width)) << "n=" << n;
  }
}

TEST(BitIoTest, EliasGammaWordMatchesPut) { expect_word_matches_put<EliasGamma>(); }
TEST(BitIoTest, EliasDeltaWordMatchesPut) { expect_word_matches_put<EliasDelta>(); }

TEST(BitIoTest, EliasDeltaFromWordInvertsWord) {
  for (std::uint64_t n :
       {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{3}, std::uint64_t{100},
        std::uint64_t{12345}, std::uint64_t{1} << 31, (std::uint64_t{1} << 32) - 1}) {
    unsigned width = 0;
    const std::uint64_t code = EliasDelta::word(n, width);
    // Bits above the code must not matter.
    const std::uint64_t window = code | (~std::uint64_t{0} << width);
    unsigned read_width = 0;
    EXPECT_EQ(EliasDelta::from_word(window, read_width), n);
    EXPECT_EQ(read_width, width) << "n=" << n;
  }
  // Codes of n >= 2^32 (bit length 33, or a length code with six leading zeros) are not read.
  std::vector<std::byte> buffer(16);
  BitWriter w(buffer);
  EliasDelta::put(w, std::uint64_t{1} << 32);
  w.finish();
  unsigned width = 0;
  EXPECT_EQ(EliasDelta::from_word(BitReader(buffer).peek(), width), 0u);
  EXPECT_EQ(EliasDelta::from_word(std::uint64_t{1} << 6, width), 0u);
}

TEST(BitIoTest, EliasGammaLengths) {
  EXPECT_EQ(EliasGamma::bits(1), 1u);
  EXPECT_EQ(EliasGamma::bits(2), 3u);
  EXPECT_EQ(EliasGamma::bits(4), 5u);
  EXPECT_EQ(EliasDelta::bits(1), 1u);
  EXPECT_EQ(EliasDelta::bits(2), 4u);
}

TEST(BitIoTest, ReaderThrowsPastTheEnd) {
  const std::vector<std::byte> buffer(3, std::byte{0xFF});
  BitReader r(buffer);
  EXPECT_EQ(r.get(20), 0xFFFFFu);
  EXPECT_THROW((void)r.get(5), CorruptMessage);
  const std::vector<std::byte> zeros(3, std::byte{0});
  BitReader z(zeros);
  EXPECT_THROW((void)EliasGamma::get(z), CorruptMessage);
  const std::vector<std::byte> many_zeros(32, std::byte{0});
  BitReader mz(many_zeros);
  EXPECT_THROW((void)EliasDelta::get(mz), CorruptMessage);
}

TEST(BitIoTest, WriterRejectsOverflow) {
  std::vector<std::byte> buffer(2);
  BitWriter w(buffer);
  w.put(0xFFFF, 16);
  w.put(1, 1);
  EXPECT_THROW((void)w.finish(), Error);
}

// BitAppender writes the bits BitWriter::put writes, in an exact-size buffer too (its last
// 8 bytes go through the checked put), and hands the writer back in a state it continues from.
TEST(BitIoTest, AppenderMatchesWriter) {
  const RngKey key = RngKey::make(5, 0, 0, RngPurpose::kTest);
  std::vector<std::pair<std::uint64_t, unsigned>> codes;
  std::uint64_t bits = 0;
  for (std::uint64_t i = 0; i < 3000; ++i) {
    const auto width = 1 + static_cast<unsigned>(key.uniform_double(2 * i) * 56.0);  // 1..56
    const auto value = static_cast<std::uint64_t>(key.uniform_double(2 * i + 1) * 0x1p56) &
                       ((std::uint64_t{1} << width) - 1);
    codes.emplace_back(value, width);
    bits += width;
  }
  const std::size_t exact = static_cast<std::size_t>((bits + 3 + 5 + 7) / 8);
  std::vector<std::byte> expected(exact);
  BitWriter reference(expected);
  reference.put(5, 3);
  for (const auto& [value, width] : codes) reference.put(value, width);
  reference.put(17, 5);
  ASSERT_EQ(reference.finish(), exact);

  std::vector<std::byte> got(exact);
  BitWriter w(got);
  w.put(5, 3);  // the appender starts mid-byte
  {
    BitAppender a(w);
    for (std::size_t i = 0; i < codes.size(); ++i) {
      if (i % 500 == 0)
        a.put_checked(codes[i].first, codes[i].second);  // the checked path
      else
        a.put(codes[i].first, codes[i].second);
    }
  }
  w.put(17, 5);  // and the writer goes on after it
  ASSERT_EQ(w.finish(), exact);
  EXPECT_EQ(got, expected);

  std::vector<std::byte> small(4);
  BitWriter tight(small);
  BitAppender a(tight);
  a.put(0xFFFFFF, 24);
  EXPECT_THROW(a.put(0xFFFFFFFFFF, 40), Error);  // 64 bits in 4 bytes: the overflow error
}

}  // namespace
}  // namespace thinwire
