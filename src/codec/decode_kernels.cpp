// AVX-512 packed decoders (see decode_kernels.hpp). Per group of fields:
#include "kernels/targets.hpp"
//   2-bit: broadcast 4 bytes, shift lane i right by 2i (vpsrlvd), one 16-entry vpermps lookup;
//   4-bit: broadcast 8 bytes, move nibble i to lane i (vpmultishiftqb), one vpermps lookup;
//   8-bit: 64 fields at once through byte planes: the 128 possible values' bytes 0..3 sit in four
//          pairs of registers, four vpermi2b lookups give each field's four bytes, two rounds of
//          unpacks interleave them into floats (the input is pre-shuffled so that they land in
//          element order), and the field's sign bit is ORed into the top byte.
// The invalid fields are a 16-entry 0/1 table for 2 and 4 bits and, for 8 bits, the largest level
// and the signed zeros of the bucket, checked once at the bucket's end. The value tables are built
// per bucket in registers from the reference formula (double step, one rounding to float), so the
// decoded floats are the reference ones; the compiler does not turn table loops into register
// lookups by itself, hence intrinsics.
#include "decode_kernels.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "qsgd_kernels.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define THINWIRE_FAST_DECODE 1
// prfchw: prefetchw for the output lines (on CPUs without it the opcode is a no-op).
#define THINWIRE_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,prfchw")))
#endif

namespace thinwire::codec::kernels {

#if defined(THINWIRE_FAST_DECODE)
namespace {

// All-lanes masks on the zero-masking forms: GCC 12's unmasked forms of some intrinsics start
// from an "undefined" register and trip -Wmaybe-uninitialized (as in packed_kernels.cpp).
constexpr __mmask16 kAll = 0xFFFF;
constexpr __mmask8 kAll8 = 0xFF;
constexpr __mmask64 kAll64 = ~__mmask64{0};

struct alignas(64) Levels {
  double v[128];
};
constexpr Levels make_levels() {
  Levels t{};
  for (int i = 0; i < 128; ++i) t.v[i] = i;
  return t;
}
constexpr Levels kLevels = make_levels();  // 0, 1, ..., 127 as doubles

// The reference step: scale / s in double (qsgd.cpp, magnitude()).
inline double qsgd_step(std::uint32_t scale_bits, std::uint32_t s) noexcept {
  return static_cast<double>(std::bit_cast<float>(scale_bits)) / static_cast<double>(s);
}

// (float)(step · level) for the 8 levels 8j .. 8j + 7: a double multiply and one rounding, as the
// scalar reference computes each.
THINWIRE_AVX512 inline __m256 magnitudes8(__m512d step, int j) noexcept {
  return _mm512_maskz_cvtpd_ps(kAll8, _mm512_mul_pd(_mm512_load_pd(kLevels.v + 8 * j), step));
}

// 2 and 4-bit fields: the value and the invalid flag (0/1) of each index's low 4 bits.
struct SmallTable {
  __m512 values;
  __m512i bad;
};

// 4-bit QSGD fields f = level | negative << 3 (s <= 7); for s = 1, 2-bit fields f = level |
// negative << 1, each repeated four times so that only an index's low 2 bits matter. s = 0:
// TernGrad codes, also repeated.
THINWIRE_AVX512 SmallTable small_table(std::uint32_t scale_bits, std::uint32_t s,
                                       unsigned field_bits) noexcept {
  if (s == 0) {
    const auto sb = static_cast<int>(scale_bits);
    const auto nb = static_cast<int>(scale_bits | 0x80000000U);
    return {_mm512_castsi512_ps(
                _mm512_setr_epi32(0, sb, nb, 0, 0, sb, nb, 0, 0, sb, nb, 0, 0, sb, nb, 0)),
            _mm512_setr_epi32(0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1)};
  }
  const __m256 m = magnitudes8(_mm512_set1_pd(qsgd_step(scale_bits, s)), 0);
  __m512i v = _mm512_castps_si512(_mm512_maskz_broadcast_f32x8(kAll, m));
  v = _mm512_mask_or_epi32(v, 0xFF00, v, _mm512_set1_epi32(static_cast<int>(0x80000000U)));
  const __m512i level = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
  // level > s, or index 8 (a negative zero level).
  const auto bad_mask = static_cast<__mmask16>(
      _mm512_cmpgt_epu32_mask(level, _mm512_set1_epi32(static_cast<int>(s))) | 0x0100U);
  SmallTable t{_mm512_castsi512_ps(v), _mm512_maskz_mov_epi32(bad_mask, _mm512_set1_epi32(1))};
  if (field_bits == 2) {
    const __m512i two = _mm512_setr_epi32(0, 1, 8, 9, 0, 1, 8, 9, 0, 1, 8, 9, 0, 1, 8, 9);
    t.values = _mm512_maskz_permutexvar_ps(kAll, two, t.values);
    t.bad = _mm512_maskz_permutexvar_epi32(kAll, two, t.bad);
  }
  return t;
}

// 8-bit QSGD fields f = level | negative << 7 (64 <= s <= 127): byte k of the 128 magnitudes,
// plane[2k] for levels 0..63 and plane[2k + 1] for 64..127.
struct ByteTable {
  __m512i plane[8];
  __m512i s;
};

[[gnu::always_inline]] THINWIRE_AVX512 inline void byte_table(std::uint32_t scale_bits,
                                                              std::uint32_t s,
                                                              ByteTable& t) noexcept {
  const __m512d step = _mm512_set1_pd(qsgd_step(scale_bits, s));
  // Bytes of the 16 magnitudes in two 8-float registers (levels 16m .. 16m + 15, the registers'
  // upper halves unused): byte k of each in 128-bit lane k, level order within the lane.
  alignas(64) static constexpr std::uint8_t kIdx[64] = {
      0,  4,  8,  12, 16, 20, 24, 28, 64, 68, 72, 76, 80, 84, 88, 92, 1,  5,  9,  13, 17, 21,
      25, 29, 65, 69, 73, 77, 81, 85, 89, 93, 2,  6,  10, 14, 18, 22, 26, 30, 66, 70, 74, 78,
      82, 86, 90, 94, 3,  7,  11, 15, 19, 23, 27, 31, 67, 71, 75, 79, 83, 87, 91, 95};
  const __m512i idx = _mm512_load_si512(kIdx);
  __m512i lanes[8];
  for (int m = 0; m < 8; ++m) {
    lanes[m] = _mm512_permutex2var_epi8(
        _mm512_castps_si512(_mm512_castps256_ps512(magnitudes8(step, 2 * m))), idx,
        _mm512_castps_si512(_mm512_castps256_ps512(magnitudes8(step, 2 * m + 1))));
  }
  // A 4×4 transpose of 128-bit lanes per half: plane k, levels 64h .. 64h + 63, is lane k of
  // lanes[4h .. 4h + 3].
  for (int h = 0; h < 2; ++h) {
    const __m512i* q = lanes + 4 * h;
    // 0x44: lanes 0, 1 of each operand; 0xEE: lanes 2, 3; 0x88: lanes 0, 2; 0xDD: lanes 1, 3.
    const __m512i t01 = _mm512_maskz_shuffle_i64x2(kAll8, q[0], q[1], 0x44);
    const __m512i t23 = _mm512_maskz_shuffle_i64x2(kAll8, q[0], q[1], 0xEE);
    const __m512i u01 = _mm512_maskz_shuffle_i64x2(kAll8, q[2], q[3], 0x44);
    const __m512i u23 = _mm512_maskz_shuffle_i64x2(kAll8, q[2], q[3], 0xEE);
    t.plane[0 + h] = _mm512_maskz_shuffle_i64x2(kAll8, t01, u01, 0x88);
    t.plane[2 + h] = _mm512_maskz_shuffle_i64x2(kAll8, t01, u01, 0xDD);
    t.plane[4 + h] = _mm512_maskz_shuffle_i64x2(kAll8, t23, u23, 0x88);
    t.plane[6 + h] = _mm512_maskz_shuffle_i64x2(kAll8, t23, u23, 0xDD);
  }
  t.s = _mm512_set1_epi8(static_cast<char>(s));
}

// Floats ahead of the output position to prefetch for writing: the stores then find their lines
// (mostly) owned already, and the arithmetic overlaps the memory stream instead of waiting behind
// it (about +20 % for overwrite at 2^22 elements on the development machine; the distance matters
// little between 256 and 2048).
#ifndef THINWIRE_DECODE_AHEAD
#define THINWIRE_DECODE_AHEAD 512
#endif
constexpr std::size_t kAhead = THINWIRE_DECODE_AHEAD;

// Prefetches (for writing) the cache line kAhead floats past dst; past the vector's end it is a
// harmless hint.
THINWIRE_AVX512 inline void prefetch_out(const float* dst) noexcept {
  _mm_prefetch(reinterpret_cast<const char*>(dst + kAhead), _MM_HINT_ET0);
}

template <bool kOverwrite>
THINWIRE_AVX512 inline void put(float* dst, __m512 v) noexcept {
  if constexpr (!kOverwrite) v = _mm512_add_ps(_mm512_loadu_ps(dst), v);
  _mm512_storeu_ps(dst, v);
}

template <bool kOverwrite>
THINWIRE_AVX512 inline void put_masked(float* dst, __m512 v, __mmask16 k) noexcept {
  if constexpr (!kOverwrite) v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dst), v);
  _mm512_mask_storeu_ps(dst, k, v);
}

// 16 fields of FW = 2 or 4 bits from `word` (field i at bit FW·i): field i in the low bits of
// lane i (the bits above it are other fields, ignored by the 16-entry lookups).
template <unsigned FW>
THINWIRE_AVX512 inline __m512i spread16(std::uint64_t word) noexcept {
  if constexpr (FW == 2) {
    const __m512i shifts =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_maskz_srlv_epi32(kAll, _mm512_set1_epi32(static_cast<int>(word)), shifts);
  } else {
    // Byte p of the result takes the 8 bits at offset p of its 64-bit lane: lane i's low byte
    // (p = 4i) starts at field i.
    const __m512i offsets =
        _mm512_setr_epi32(0x03020100, 0x07060504, 0x0B0A0908, 0x0F0E0D0C, 0x13121110, 0x17161514,
                          0x1B1A1918, 0x1F1E1D1C, 0x23222120, 0x27262524, 0x2B2A2928, 0x2F2E2D2C,
                          0x33323130, 0x37363534, 0x3B3A3938, 0x3F3E3D3C);
    return _mm512_maskz_multishift_epi64_epi8(kAll64, offsets,
                                              _mm512_set1_epi64(static_cast<long long>(word)));
  }
}

// Decodes n fields of FW = 2 or 4 bits from in[] into out; true if any is invalid.
template <unsigned FW, bool kOverwrite>
THINWIRE_AVX512 bool decode_small(const std::uint8_t* in, std::size_t n, const SmallTable& t,
                                  float* out) noexcept {
  constexpr std::size_t kBytes = 2 * FW;  // per 16 fields
  __m512i bad = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    std::uint64_t word = 0;
    std::memcpy(&word, in + i / 16 * kBytes, kBytes);
    const __m512i idx = spread16<FW>(word);
    bad = _mm512_or_si512(bad, _mm512_maskz_permutexvar_epi32(kAll, idx, t.bad));
    prefetch_out(out + i);
    put<kOverwrite>(out + i, _mm512_maskz_permutexvar_ps(kAll, idx, t.values));
  }
  if (i < n) {
    // The last < 16 fields: their bits only (zero fields above them are valid and not stored).
    const std::size_t bits = (n - i) * FW;
    std::uint64_t word = 0;
    std::memcpy(&word, in + i / 16 * kBytes, (bits + 7) / 8);
    word &= (std::uint64_t{1} << bits) - 1;
    const __m512i idx = spread16<FW>(word);
    bad = _mm512_or_si512(bad, _mm512_maskz_permutexvar_epi32(kAll, idx, t.bad));
    put_masked<kOverwrite>(out + i, _mm512_maskz_permutexvar_ps(kAll, idx, t.values),
                           static_cast<__mmask16>((1U << (n - i)) - 1));
  }
  return _mm512_test_epi32_mask(bad, bad) != 0;
}

// Running invalid-field summary of 8-bit fields: the largest level and the signed zeros.
struct ByteChecks {
  __m512i max_level;
  __mmask64 negative_zero;
};

// The values of the 64 fields in x into dst[0..64), of which `valid` (a prefix) are stored.
template <bool kOverwrite>
THINWIRE_AVX512 inline void decode64(__m512i x, __mmask64 valid, const ByteTable& t,
                                     ByteChecks& checks, float* dst) noexcept {
  // After the two unpack rounds, register r's 128-bit lane L holds the fields at input positions
  // 16L + 4r .. 16L + 4r + 3; the dword shuffle puts fields 16r + 4L .. there, so that register r
  // is fields 16r .. 16r + 15 in order (a 4×4 transpose of 4-byte groups).
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  checks.max_level = _mm512_max_epu8(checks.max_level, _mm512_and_si512(x, _mm512_set1_epi8(0x7F)));
  checks.negative_zero |= _mm512_cmpeq_epi8_mask(x, sign);
  // The lookups use each index byte's low 7 bits: the level.
  const __m512i xp = _mm512_maskz_permutexvar_epi32(kAll, order, x);
  const __m512i b0 = _mm512_permutex2var_epi8(t.plane[0], xp, t.plane[1]);
  const __m512i b1 = _mm512_permutex2var_epi8(t.plane[2], xp, t.plane[3]);
  const __m512i b2 = _mm512_permutex2var_epi8(t.plane[4], xp, t.plane[5]);
  // The top byte, with the field's sign bit ORed in: b3 | (xp & 0x80).
  const __m512i b3 = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(t.plane[6], xp, t.plane[7]),
                                               xp, sign, 0xF8);
  const __m512i a01 = _mm512_unpacklo_epi8(b0, b1);
  const __m512i c01 = _mm512_unpackhi_epi8(b0, b1);
  const __m512i a23 = _mm512_unpacklo_epi8(b2, b3);
  const __m512i c23 = _mm512_unpackhi_epi8(b2, b3);
  const __m512 r0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(a01, a23));
  const __m512 r1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(a01, a23));
  const __m512 r2 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(c01, c23));
  const __m512 r3 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(c01, c23));
  if (valid == kAll64) {
    for (int k = 0; k < 4; ++k) prefetch_out(dst + 16 * k);
    put<kOverwrite>(dst, r0);
    put<kOverwrite>(dst + 16, r1);
    put<kOverwrite>(dst + 32, r2);
    put<kOverwrite>(dst + 48, r3);
  } else {
    put_masked<kOverwrite>(dst, r0, static_cast<__mmask16>(valid));
    put_masked<kOverwrite>(dst + 16, r1, static_cast<__mmask16>(valid >> 16));
    put_masked<kOverwrite>(dst + 32, r2, static_cast<__mmask16>(valid >> 32));
    put_masked<kOverwrite>(dst + 48, r3, static_cast<__mmask16>(valid >> 48));
  }
}

// Decodes n 8-bit fields from in[] into out; true if any is invalid.
template <bool kOverwrite>
THINWIRE_AVX512 bool decode_bytes(const std::uint8_t* in, std::size_t n, const ByteTable& t,
                                  float* out) noexcept {
  ByteChecks checks{_mm512_setzero_si512(), 0};
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    decode64<kOverwrite>(_mm512_loadu_si512(in + i), kAll64, t, checks, out + i);
  }
  if (i < n) {
    // Masked-off bytes load as zero: level 0, valid.
    const __mmask64 valid = (__mmask64{1} << (n - i)) - 1;
    decode64<kOverwrite>(_mm512_maskz_loadu_epi8(valid, in + i), valid, t, checks, out + i);
  }
  return checks.negative_zero != 0 || _mm512_cmpgt_epu8_mask(checks.max_level, t.s) != 0;
}

template <bool kOverwrite>
THINWIRE_AVX512 void zero_fill(float* out, std::size_t n) noexcept {
  if constexpr (kOverwrite) std::memset(out, 0, n * sizeof(float));
}

template <unsigned FW>
struct TableFor {
  using type = SmallTable;
};
template <>
struct TableFor<8> {
  using type = ByteTable;
};

template <unsigned FW>
THINWIRE_AVX512 inline void build(typename TableFor<FW>::type& t, std::uint32_t scale_bits,
                                  std::uint32_t s) noexcept {
  if constexpr (FW == 8) {
    byte_table(scale_bits, s, t);
  } else {
    t = small_table(scale_bits, s, FW);
  }
}

template <unsigned FW, bool kOverwrite>
THINWIRE_AVX512 bool decode_fields(const std::uint8_t* in, std::size_t n,
                                   const typename TableFor<FW>::type& t, float* out) noexcept {
  if constexpr (FW == 8) {
    return decode_bytes<kOverwrite>(in, n, t, out);
  } else {
    return decode_small<FW, kOverwrite>(in, n, t, out);
  }
}

template <unsigned FW, bool kOverwrite>
THINWIRE_AVX512 PackedStop run(const std::uint8_t* in, std::uint64_t avail, const PackedLayout& L,
                               PackedCursor& c, std::uint64_t& used, float* out) noexcept {
  // Fields per step, a whole number of bytes: stops inside a bucket leave the stream on a byte.
  constexpr std::size_t kGroup = FW == 8 ? 64 : 16;
  typename TableFor<FW>::type table{};
  if (c.left > 0) build<FW>(table, c.scale_bits, L.s);
  std::uint64_t pos = 0;
  const auto stop = [&](PackedStop why) {
    used = pos;
    return why;
  };
  for (;;) {
    if (c.left == 0) {
      if (c.next >= L.d) return stop(PackedStop::kDone);
      if (pos % 8 != 0 || avail - pos < 32) return stop(PackedStop::kNeedInput);
      std::uint32_t bits = 0;
      std::memcpy(&bits, in + pos / 8, 4);
      if (!valid_scale_bits(bits)) return stop(PackedStop::kBadScale);  // as read_bucket_scale
      pos += 32;
      const std::size_t len = std::min(L.bucket, L.d - c.next);
      c.first = c.next;
      if (bits == 0) {  // a zero bucket sends only its scale
        zero_fill<kOverwrite>(out + c.next, len);
        c.next += len;
        continue;
      }
      c.left = len;
      c.scale_bits = bits;
      c.bad = false;
      build<FW>(table, bits, L.s);
    }
    std::size_t n = c.left;
    const std::uint64_t fields = (avail - pos) / FW;
    if (fields < n) {
      n = static_cast<std::size_t>(fields / kGroup * kGroup);
      if (n == 0) return stop(PackedStop::kNeedInput);
    }
    c.bad |= decode_fields<FW, kOverwrite>(in + pos / 8, n, table, out + c.next);
    pos += std::uint64_t{n} * FW;
    c.next += n;
    c.left -= n;
    if (c.left == 0 && c.bad) return stop(PackedStop::kBadField);
  }
}

}  // namespace

bool has_fast_decode() noexcept { return avx512_dl_target(); }

PackedStop decode_packed(const std::uint8_t* in, std::uint64_t avail_bits,
                         const PackedLayout& layout, PackedCursor& cursor, std::uint64_t& used,
                         float* out, bool overwrite) noexcept {
  switch (layout.field_bits) {
    case 2:
      return overwrite ? run<2, true>(in, avail_bits, layout, cursor, used, out)
                       : run<2, false>(in, avail_bits, layout, cursor, used, out);
    case 4:
      return overwrite ? run<4, true>(in, avail_bits, layout, cursor, used, out)
                       : run<4, false>(in, avail_bits, layout, cursor, used, out);
    default:
      return overwrite ? run<8, true>(in, avail_bits, layout, cursor, used, out)
                       : run<8, false>(in, avail_bits, layout, cursor, used, out);
  }
}

PackedStop decode_packed_stream(BitReader& r, const PackedLayout& layout, PackedCursor& cursor,
                                float* out, bool overwrite) {
  constexpr std::size_t kWords = 1024;
  alignas(64) std::uint64_t buf[kWords];
  for (;;) {
    const std::uint8_t* in = nullptr;
    std::uint64_t bits = r.remaining();
    if (r.position() % 8 == 0) {
      in = reinterpret_cast<const std::uint8_t*>(r.bytes().data()) + r.position() / 8;
    } else {
      bits = std::min<std::uint64_t>(bits, 64 * kWords);
      BitReader ahead = r;
      ahead.get_words(reinterpret_cast<std::byte*>(buf), static_cast<std::size_t>(bits / 64));
      if (bits % 64 != 0) buf[bits / 64] = ahead.get(static_cast<unsigned>(bits % 64));
      in = reinterpret_cast<const std::uint8_t*>(buf);
    }
    const bool all = bits == r.remaining();
    std::uint64_t used = 0;
    const PackedStop stop = decode_packed(in, bits, layout, cursor, used, out, overwrite);
    r.skip(used);
    if (stop != PackedStop::kNeedInput) return stop;
    if (all || used == 0) {
      // Fields missing at the end of the stream: the reference decoder's read fails there too.
      if (cursor.left > 0) r.skip(r.remaining() + 1);
      return stop;
    }
  }
}

#else

bool has_fast_decode() noexcept { return false; }
PackedStop decode_packed(const std::uint8_t*, std::uint64_t, const PackedLayout&, PackedCursor&,
                         std::uint64_t& used, float*, bool) noexcept {
  used = 0;
  return PackedStop::kNeedInput;
}
PackedStop decode_packed_stream(BitReader&, const PackedLayout&, PackedCursor&, float*, bool) {
  return PackedStop::kNeedInput;
}

#endif

}  // namespace thinwire::codec::kernels
