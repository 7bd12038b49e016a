// The bulk readers of sparse_coding.hpp against the one-at-a-time readers they replace: same
// values, same final position, and for damaged input the same exception at the same element.
// The bulk index writer against put(), and the bitmap listers against a loop over the bits.
#include "sparse_coding.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sparse_test_util.hpp"

namespace thinwire::codec::sparse {
namespace {

using codec::testing::test_key;

// What a reader left behind: the values it produced, where it stopped, and what it threw.
template <typename T>
struct Outcome {
  std::vector<T> values;
  std::uint64_t position = 0;
  std::optional<std::string> error;
};

template <typename T, typename Read>
Outcome<T> run(std::span<const std::byte> bytes, std::size_t n, Read read) {
  Outcome<T> outcome;
  outcome.values.assign(n, T{});
  BitReader r(bytes);
  try {
    read(r, std::span<T>(outcome.values));
  } catch (const CorruptMessage& e) {
    outcome.error = e.what();
  }
  outcome.position = r.position();
  return outcome;
}

// A bulk reader stops where the one-at-a-time loop throws, with the same elements written
// before it, and otherwise ends at the same bit.
template <typename T>
void expect_same(const Outcome<T>& bulk, const Outcome<T>& one_by_one, const std::string& what) {
  EXPECT_EQ(bulk.error, one_by_one.error) << what;
  EXPECT_EQ(bulk.position, one_by_one.position) << what;
  ASSERT_EQ(bulk.values.size(), one_by_one.values.size());
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  for (std::size_t j = 0; j < bulk.values.size(); ++j) {
    ASSERT_EQ(std::bit_cast<Bits>(bulk.values[j]), std::bit_cast<Bits>(one_by_one.values[j]))
        << what << ", element " << j;
  }
}

// Ascending indices in [0, d): k of them, with gaps from tiny to huge.
std::vector<std::uint64_t> some_indices(std::uint64_t seed, std::uint64_t d, std::size_t k) {
  RngStream rng(test_key(seed));
  std::vector<std::uint64_t> out;
  std::uint64_t next = 0;
  for (std::size_t j = 0; j < k && next < d; ++j) {
    const std::uint64_t room = d - next;
    // Mostly short gaps, sometimes one of up to the whole remaining range.
    const std::uint64_t span = rng.next_below(8) == 0 ? room : std::min<std::uint64_t>(room, 300);
    const std::uint64_t index = next + rng.next_below(span);
    out.push_back(index);
    next = index + 1;
  }
  return out;
}

std::vector<std::byte> written(bool fixed_width, std::uint64_t d,
                               const std::vector<std::uint64_t>& indices, unsigned tail_bits) {
  std::vector<std::byte> bytes(8 * (indices.size() * 9 + 4));
  BitWriter w(bytes);
  IndexWriter writer(fixed_width, d);
  for (const std::uint64_t i : indices) writer.put(w, i);
  w.put(0x5A5A5A5A5A5A5A5AULL, tail_bits);  // whatever follows the indices in a payload
  bytes.resize(w.finish());
  return bytes;
}

template <typename Index>
void check_indices(bool fixed_width, std::uint64_t d, std::span<const std::byte> bytes,
                   std::size_t k, const std::string& what) {
  const auto bulk = run<Index>(bytes, k, [&](BitReader& r, std::span<Index> out) {
    IndexReader(fixed_width, d, "test").get_all(r, out);
  });
  const auto one = run<Index>(bytes, k, [&](BitReader& r, std::span<Index> out) {
    IndexReader reader(fixed_width, d, "test");
    for (Index& i : out) i = static_cast<Index>(reader.get(r));
  });
  expect_same(bulk, one, what);
}

TEST(IndexReaderTest, GetAllMatchesGetOnValidStreams) {
  for (const bool fixed : {false, true}) {
    for (const std::uint64_t d : {1ULL, 2ULL, 1000ULL, 1ULL << 22, (1ULL << 32) - 1}) {
      for (const std::size_t k : {0U, 1U, 3U, 40U, 2000U}) {
        for (const unsigned tail : {0U, 7U, 64U}) {
          const auto indices = some_indices(d * 31 + k + tail, d, k);
          const auto bytes = written(fixed, d, indices, tail);
          const std::string what = "fixed " + std::to_string(fixed) + " d " + std::to_string(d) +
                                   " k " + std::to_string(indices.size()) + " tail " +
                                   std::to_string(tail);
          check_indices<std::uint32_t>(fixed, d, bytes, indices.size(), what);
          check_indices<std::uint64_t>(fixed, d, bytes, indices.size(), what);
          // Reading one index more than was written runs into the tail or the end.
          check_indices<std::uint64_t>(fixed, d, bytes, indices.size() + 1, what + " +1");
        }
      }
    }
  }
}

// put_all writes the bits of a put() per index, from any bit position, and put() carries on
// after it (blocks of 256 codes and the eight-wide code path meet at every offset here).
TEST(IndexWriterTest, PutAllMatchesPut) {
  for (const bool fixed : {false, true}) {
    for (const std::uint64_t d : {1ULL, 1000ULL, 1ULL << 22, (1ULL << 32) - 1}) {
      for (const std::size_t k : {0U, 1U, 7U, 8U, 9U, 255U, 256U, 257U, 1000U, 5000U}) {
        for (const unsigned lead : {0U, 5U, 63U}) {
          const auto wide = some_indices(d * 17 + k + lead, d, k + 1);
          if (wide.empty()) continue;
          const std::vector<std::uint32_t> indices(wide.begin(), wide.end() - 1);
          const auto write = [&](bool bulk) {
            std::vector<std::byte> bytes(8 * (wide.size() * 9 + 4));
            BitWriter w(bytes);
            w.put(0x2DULL, lead);
            IndexWriter writer(fixed, d);
            if (bulk) {
              writer.put_all(w, indices);
            } else {
              for (const std::uint32_t i : indices) writer.put(w, i);
            }
            writer.put(w, wide.back());
            bytes.resize(w.finish());
            return bytes;
          };
          EXPECT_EQ(write(true), write(false))
              << "fixed " << fixed << " d " << d << " k " << indices.size() << " lead " << lead;
        }
      }
    }
  }
}

std::vector<std::uint32_t> set_bits_one_by_one(const std::vector<std::uint64_t>& words,
                                               std::uint32_t base) {
  std::vector<std::uint32_t> out;
  for (std::size_t w = 0; w < words.size(); ++w) {
    for (unsigned b = 0; b < 64; ++b) {
      if (((words[w] >> b) & 1) != 0) out.push_back(base + static_cast<std::uint32_t>(64 * w + b));
    }
  }
  return out;
}

// Both listers, on bitmaps from empty to full: sparse ones with words of up to four bits (the
// eight-wide path) and with denser words among them (its fallback), at every length mod 8.
TEST(ListSetBitsTest, MatchesALoopOverTheBits) {
  RngStream rng(test_key(77));
  for (const double bits_per_word : {0.0, 0.2, 0.64, 1.0, 3.0, 64.0}) {
    for (std::size_t n = 0; n <= 41; ++n) {
      for (const std::uint32_t base : {0U, 4160U, 0xFFFFFFFFU - 64U * 41U}) {
        std::vector<std::uint64_t> words(n, 0);
        for (std::uint64_t& word : words) {
          if (bits_per_word == 64.0) {
            word = ~std::uint64_t{0};
            continue;
          }
          for (unsigned b = 0; b < 64; ++b) {
            if (rng.next_uniform_double() < bits_per_word / 64.0) word |= std::uint64_t{1} << b;
          }
          if (rng.next_below(16) == 0) word |= 0x8000000000000001ULL;  // both ends of a word
          if (rng.next_below(40) == 0) word |= 0x0F000000000F0000ULL;  // eight bits
        }
        const std::vector<std::uint32_t> expected = set_bits_one_by_one(words, base);
        const std::string what =
            "density " + std::to_string(bits_per_word) + " n " + std::to_string(n);
        // Exactly the promised room, so that ASan sees any write past it.
        std::vector<std::uint32_t> out(expected.size() + kListSlack);
        ASSERT_EQ(list_set_bits(words.data(), n, base, out.data()), expected.size()) << what;
        out.resize(expected.size());
        EXPECT_EQ(out, expected) << what;
        // set_bits = 0 takes the eight-wide path (where the CPU has it) whatever the density.
        for (const std::size_t hint : {std::size_t{0}, expected.size()}) {
          out.assign(expected.size() + kListSlack, 0);
          ASSERT_EQ(list_sparse_set_bits(words.data(), n, base, out.data(), hint), expected.size())
              << what;
          out.resize(expected.size());
          EXPECT_EQ(out, expected) << what << " hint " << hint;
        }
      }
    }
  }
}

TEST(IndexReaderTest, GetAllMatchesGetOnDamagedStreams) {
  RngStream rng(test_key(77));
  int failures_seen = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const bool fixed = trial % 5 == 0;
    const std::uint64_t d = trial % 2 == 0 ? 5000 : (1ULL << 32) - 1;
    const auto indices = some_indices(1000 + trial, d, 200);
    auto bytes = written(fixed, d, indices, 0);
    if (trial % 3 == 0) {
      bytes.resize(rng.next_below(bytes.size() + 1));  // truncated
    } else {
      for (int flip = 0; flip < 1 + trial % 4; ++flip) {
        const std::uint64_t bit = rng.next_below(8 * bytes.size());
        bytes[bit / 8] ^= static_cast<std::byte>(1U << (bit % 8));
      }
    }
    const auto one =
        run<std::uint64_t>(bytes, indices.size(), [&](BitReader& r, std::span<std::uint64_t> out) {
          IndexReader reader(fixed, d, "test");
          for (auto& i : out) i = reader.get(r);
        });
    failures_seen += one.error ? 1 : 0;
    check_indices<std::uint64_t>(fixed, d, bytes, indices.size(), "trial " + std::to_string(trial));
  }
  EXPECT_GT(failures_seen, 100);  // the damage reaches the error paths
}

TEST(GetFiniteF32sTest, MatchesGetFiniteF32) {
  RngStream rng(test_key(5));
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t n = rng.next_below(70);
    const auto offset = static_cast<unsigned>(rng.next_below(40));
    std::vector<std::byte> bytes(8 * (n + 2));
    BitWriter w(bytes);
    w.put(0, offset);
    for (std::size_t j = 0; j < n; ++j) {
      float x = static_cast<float>(rng.next_normal());
      if (trial % 4 == 0 && j == n / 2) {
        x = trial % 8 == 0 ? std::numeric_limits<float>::quiet_NaN()
                           : std::numeric_limits<float>::infinity();
      }
      put_f32(w, x);
    }
    bytes.resize(w.finish());
    if (trial % 5 == 1)
      bytes.resize(bytes.size() - rng.next_below(std::min<std::size_t>(9, bytes.size()) + 1));
    const auto read = [&](bool bulk) {
      return run<float>(bytes, n, [&](BitReader& r, std::span<float> out) {
        r.skip(std::min<std::uint64_t>(offset, r.remaining()));
        if (bulk) {
          get_finite_f32s(r, out, "test");
        } else {
          for (float& x : out) x = get_finite_f32(r, "test");
        }
      });
    };
    expect_same(read(true), read(false), "trial " + std::to_string(trial));
  }
}

TEST(ScatterTest, OverwriteZeroesEverythingElse) {
  for (const std::size_t d : {0U, 1U, 17U, 5000U}) {
    const auto indices = some_indices(d + 3, d, d / 3 + 1);
    std::vector<std::uint32_t> narrow(indices.begin(), indices.end());
    std::vector<float> values(indices.size());
    for (std::size_t j = 0; j < values.size(); ++j) values[j] = static_cast<float>(j) + 0.5f;
    std::vector<float> out(d, 9.0f);
    scatter<std::uint32_t>(narrow, values, out, DecodeMode::kOverwrite);
    std::vector<float> expected(d, 0.0f);
    for (std::size_t j = 0; j < indices.size(); ++j) expected[indices[j]] = values[j];
    EXPECT_EQ(out, expected) << "d = " << d;
  }
}

}  // namespace
}  // namespace thinwire::codec::sparse
