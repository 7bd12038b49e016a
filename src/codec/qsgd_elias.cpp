// The table-driven decoder of QSGD's Elias-gamma buckets (qsgd_elias.hpp).
#include "qsgd_elias.hpp"

#include <algorithm>
#include <array>
#include <bit>

#include "thinwire/core/error.hpp"

namespace thinwire::codec::qsgd_detail {
namespace {

// Table-driven Elias-gamma parsing: for every kTripleBits-bit window (least significant bit
// first), the (gap, sign, level) triples that lie wholly inside it, up to kMaxTriples. With
// s = √d most non-zeros are "gap 1, level 1" (3 bits), so one lookup parses several of them.
constexpr unsigned kTripleBits = 10;
constexpr unsigned kMaxTriples = 3;  // 3 bits per triple at least

// 16 bytes, aligned: a window's entry never straddles cache lines (10 unaligned bytes decoded
// about 8 % slower).
struct alignas(16) TripleWindow {
  std::uint8_t count = 0;                 // complete triples in the window
  std::uint8_t bits = 0;                  // bits they occupy
  std::uint8_t span = 0;                  // the sum of their gaps
  std::uint8_t max_level = 0;             // their largest level
  std::uint8_t offset[kMaxTriples] = {};  // index of triple t past the previous non-zero
  std::int8_t level[kMaxTriples] = {};    // their levels (>= 1), negated for a set sign bit
};

// Elias gamma of the value at bit `at` of `window` within `limit` bits: its value, or 0 if it
// does not end before `limit`; `end` receives the bit after it.
constexpr unsigned gamma_in(unsigned window, unsigned at, unsigned limit, unsigned& end) {
  unsigned zeros = 0;
  while (at + zeros < limit && ((window >> (at + zeros)) & 1U) == 0) ++zeros;
  if (at + 2 * zeros + 1 > limit) return 0;
  const unsigned low = (window >> (at + zeros + 1)) & ((1U << zeros) - 1);
  end = at + 2 * zeros + 1;
  return (1U << zeros) | low;
}

constexpr std::array<TripleWindow, std::size_t{1} << kTripleBits> make_triple_table() {
  std::array<TripleWindow, std::size_t{1} << kTripleBits> table{};
  for (unsigned w = 0; w < table.size(); ++w) {
    TripleWindow& e = table[w];
    unsigned at = 0;
    while (e.count < kMaxTriples) {
      unsigned gap_end = 0;
      const unsigned gap = gamma_in(w, at, kTripleBits, gap_end);
      if (gap == 0 || gap_end >= kTripleBits) break;  // the sign bit must fit as well
      unsigned end = 0;
      const unsigned level = gamma_in(w, gap_end + 1, kTripleBits, end);
      if (level == 0) break;
      const bool negative = ((w >> gap_end) & 1U) != 0;
      e.offset[e.count] = static_cast<std::uint8_t>(e.span + gap - 1);
      e.span = static_cast<std::uint8_t>(e.span + gap);
      e.max_level = static_cast<std::uint8_t>(std::max<unsigned>(e.max_level, level));
      e.level[e.count] =
          static_cast<std::int8_t>(negative ? -static_cast<int>(level) : static_cast<int>(level));
      ++e.count;
      e.bits = static_cast<std::uint8_t>(end);
      at = end;
    }
  }
  // Unused slots store the neutral value (level 0, see table_value) one past the window's last
  // non-zero: a position no triple has written yet.
  for (TripleWindow& e : table) {
    for (unsigned t = e.count; t < kMaxTriples; ++t) e.offset[t] = e.span;
  }
  return table;
}

constexpr auto kTripleTable = make_triple_table();

// A window's triples span fewer than kMaxSpan elements: kMaxTriples gaps whose codes fit the
// window, each below 2^((kTripleBits - 3) / 2 + 1).
constexpr std::uint64_t kMaxSpan = kMaxTriples << ((kTripleBits - 3) / 2 + 1);
static_assert(std::ranges::all_of(kTripleTable,
                                  [](const TripleWindow& e) { return e.span < kMaxSpan; }));

// Table lookups per 57-bit window (each takes at most kTripleBits bits, and the last still needs
// kTripleBits of the window).
constexpr unsigned kWindowSteps = (57 - kTripleBits) / kTripleBits + 1;
static_assert((kWindowSteps - 1) * kTripleBits + kTripleBits <= 57);

// Elements zeroed at a time ahead of the overwriting decoder's stores (16 KiB: stays in L1/L2).
constexpr std::uint64_t kZeroBlock = 4096;

}  // namespace

template <bool kOverwrite>
void decode_bucket_elias_gamma_fast(BitReader& reader, float scale, std::uint32_t s,
                                    std::span<float> out, std::size_t first) {
  // A local copy (the reader's state stays in registers); written back where the bucket ends.
  BitReader r = reader;
  const double step = static_cast<double>(scale) / static_cast<double>(s);
  const std::uint64_t b = out.size();
  // The table's levels are below 2^((kTripleBits - 3) / 2 + 1) = 16: their signed magnitudes,
  // once, at 16 + level.
  std::array<float, 32> table_value{};
  for (std::uint32_t l = 0; l < 16; ++l) {
    table_value[16 + l] = magnitude(step, l);
    table_value[16 - l] = -magnitude(step, l);
  }
  // Level 0 is the unused slots' value: +0 over the zeros written below, or -0 added (x + -0 = x
  // for every x, -0 included).
  table_value[16] = kOverwrite ? 0.0f : -0.0f;
  std::uint64_t next = 0;  // one past the previous non-zero index
  // Overwriting: the values between non-zeros are zeros, filled a block at a time just ahead of
  // the stores (one memset of the whole output first would write it twice through memory). On a
  // corrupt message the output is unspecified either way.
  std::uint64_t zeroed = 0;  // out[0 .. zeroed) is zero or already decoded
  const auto zero_to = [&](std::uint64_t upto) {
    if (kOverwrite && upto > zeroed) {
      const std::uint64_t end = std::min(b, std::max(upto, zeroed + kZeroBlock));
      std::fill(out.begin() + static_cast<std::ptrdiff_t>(zeroed),
                out.begin() + static_cast<std::ptrdiff_t>(end), 0.0f);
      zeroed = end;
    }
  };
  constexpr unsigned kMask = (1U << kTripleBits) - 1;
  const auto table_step = [&](const TripleWindow& e) {
    // Every triple lands inside the bucket with a valid level, and so does the unused slots'
    // position: no checks, and always kMaxTriples stores, so no branch depends on the data.
    for (unsigned t = 0; t < kMaxTriples; ++t) {
      store<kOverwrite>(out[next + e.offset[t]],
                        table_value[static_cast<std::size_t>(16 + e.level[t])]);
    }
    next += e.span;
  };
  for (;;) {
    // kWindowSteps lookups from one 57-bit window: the dependency from one lookup to the next is
    // a shift of a register instead of a load at the new bit position.
    while (r.remaining() >= 64) {
      const std::uint64_t window = r.peek57();
      zero_to(std::min(b, next + kWindowSteps * kMaxSpan));
      unsigned used = 0;
      bool stop = false;
      for (unsigned k = 0; k < kWindowSteps; ++k) {
        const TripleWindow& e = kTripleTable[(window >> used) & kMask];
        if (e.count == 0 || next + e.span >= b || e.max_level > s) {
          stop = true;
          break;
        }
        table_step(e);
        used += e.bits;
      }
      r.skip(used);
      if (stop) break;
    }
    if (r.remaining() >= kTripleBits) {
      const TripleWindow& e = kTripleTable[r.peek57() & kMask];
      if (e.count > 0 && next + e.span < b && e.max_level <= s) {
        // Otherwise (the bucket's end, a damaged level, a long code) one triple goes below.
        zero_to(std::min(b, next + kMaxSpan));
        table_step(e);
        r.skip(e.bits);
        continue;
      }
    }
    const std::uint64_t window = r.peek();
    const std::uint64_t avail = std::min<std::uint64_t>(64, r.remaining());
    const unsigned z1 = window == 0 ? 64 : static_cast<unsigned>(std::countr_zero(window));
    const unsigned gap_bits = 2 * z1 + 1;
    const bool gap_fits = gap_bits < avail;  // < : leaves the sign bit in the window as well
    const std::uint64_t gap = gap_fits ? (std::uint64_t{1} << z1) |
                                             ((window >> (z1 + 1)) & ((std::uint64_t{1} << z1) - 1))
                                       : EliasGamma::get(r);
    if (gap > b + 1 - next) {
      corrupt("an index gap runs past the end of the bucket starting at element " +
              std::to_string(first));
    }
    const std::uint64_t index = next + gap - 1;  // <= b
    if (index == b) {
      if (gap_fits) r.skip(gap_bits);
      zero_to(b);
      reader = r;
      return;
    }
    bool negative = false;
    std::uint64_t level = 0;
    if (gap_fits) {
      const std::uint64_t rest = window >> gap_bits;
      negative = (rest & 1) != 0;
      const std::uint64_t lv = rest >> 1;
      const unsigned z2 = lv == 0 ? 64 : static_cast<unsigned>(std::countr_zero(lv));
      const unsigned total = gap_bits + 1 + 2 * z2 + 1;
      if (total <= avail) {
        level = (std::uint64_t{1} << z2) | ((lv >> (z2 + 1)) & ((std::uint64_t{1} << z2) - 1));
        r.skip(total);
      } else {
        r.skip(gap_bits + 1);
        level = EliasGamma::get(r);
      }
    } else {
      negative = r.get_bit();
      level = EliasGamma::get(r);
    }
    if (level > s) {
      corrupt("level " + std::to_string(level) + " above s = " + std::to_string(s) +
              " at element " + std::to_string(first + index));
    }
    const float m = magnitude(step, level);
    zero_to(index + 1);
    store<kOverwrite>(out[index], negative ? -m : m);
    next = index + 1;
  }
}

template void decode_bucket_elias_gamma_fast<true>(BitReader&, float, std::uint32_t,
                                                   std::span<float>, std::size_t);
template void decode_bucket_elias_gamma_fast<false>(BitReader&, float, std::uint32_t,
                                                    std::span<float>, std::size_t);

}  // namespace thinwire::codec::qsgd_detail
