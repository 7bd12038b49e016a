#include "thinwire/core/bit_io.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace thinwire
