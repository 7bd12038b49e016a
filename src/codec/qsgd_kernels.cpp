#include "qsgd_kernels.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

// Field packing and the byte-level helpers around the Highway kernels (kernels/fields.cpp holds
// the element-wise kernels declared in qsgd_kernels.hpp).

namespace thinwire::codec::kernels {

void put_bytes(BitWriter& w, const std::uint8_t* bytes, std::size_t nb) {
  w.put_stream(std::span(reinterpret_cast<const std::byte*>(bytes), nb), 8 * std::uint64_t{nb});
}

void get_bytes(BitReader& r, std::uint8_t* bytes, std::size_t nb) {
  r.get_words(reinterpret_cast<std::byte*>(bytes), nb / 8);
  for (std::size_t k = nb / 8 * 8; k < nb; ++k) bytes[k] = static_cast<std::uint8_t>(r.get(8));
}

// bytes[j] = the 8/FW fields f[j·8/FW ...] packed least significant first (FW in {2, 4, 8}).
template <unsigned FW>
inline void pack_bytes_t(const std::uint32_t* f, std::size_t nb, std::uint8_t* bytes) noexcept {
  constexpr std::size_t kPerByte = 8 / FW;
  for (std::size_t j = 0; j < nb; ++j) {
    std::uint32_t b = 0;
    for (std::size_t t = 0; t < kPerByte; ++t) b |= f[j * kPerByte + t] << (t * FW);
    bytes[j] = static_cast<std::uint8_t>(b);
  }
}

template <unsigned FW>
inline void unpack_bytes_t(const std::uint8_t* bytes, std::size_t nb, std::uint32_t* f) noexcept {
  constexpr std::size_t kPerByte = 8 / FW;
  constexpr std::uint32_t kMask = (std::uint32_t{1} << FW) - 1;
  for (std::size_t j = 0; j < nb; ++j) {
    for (std::size_t t = 0; t < kPerByte; ++t) {
      f[j * kPerByte + t] = (std::uint32_t{bytes[j]} >> (t * FW)) & kMask;
    }
  }
}

static void pack_bytes(const std::uint32_t* f, std::size_t nb, unsigned fw,
                       std::uint8_t* bytes) noexcept {
  if (fw == 2) return pack_bytes_t<2>(f, nb, bytes);
  if (fw == 4) return pack_bytes_t<4>(f, nb, bytes);
  pack_bytes_t<8>(f, nb, bytes);
}

static void unpack_bytes(const std::uint8_t* bytes, std::size_t nb, unsigned fw,
                         std::uint32_t* f) noexcept {
  if (fw == 2) return unpack_bytes_t<2>(bytes, nb, f);
  if (fw == 4) return unpack_bytes_t<4>(bytes, nb, f);
  unpack_bytes_t<8>(bytes, nb, f);
}

namespace {

// Packs 64/FW fields per 64-bit word: one BitWriter call per word instead of one per field.
template <unsigned FW>
void put_fields_fixed(BitWriter& w, const std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPer = 64 / FW;
  std::size_t i = 0;
  for (; i + kPer <= n; i += kPer) {
    std::uint64_t word = 0;
    for (std::size_t t = 0; t < kPer; ++t) word |= std::uint64_t{fields[i + t]} << (t * FW);
    w.put(word, static_cast<unsigned>(kPer * FW));
  }
  for (; i < n; ++i) w.put(fields[i], FW);
}

template <unsigned FW>
void get_fields_fixed(BitReader& r, std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPer = 64 / FW;
  constexpr std::uint64_t kMask = (std::uint64_t{1} << FW) - 1;
  std::size_t i = 0;
  for (; i + kPer <= n; i += kPer) {
    const std::uint64_t word = r.get(static_cast<unsigned>(kPer * FW));
    for (std::size_t t = 0; t < kPer; ++t) {
      fields[i + t] = static_cast<std::uint32_t>((word >> (t * FW)) & kMask);
    }
  }
  for (; i < n; ++i) fields[i] = static_cast<std::uint32_t>(r.get(FW));
}

// Widths that divide 8: pack whole bytes in a vectorizable loop, then hand the bytes to the
// writer 64 bits at a time.
template <unsigned FW>
void put_fields_bytes(BitWriter& w, const std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPerByte = 8 / FW;
  std::uint8_t bytes[kQsgdChunk];
  std::size_t done = 0;
  while (done < n) {
    const std::size_t nb = std::min(kQsgdChunk, (n - done) / kPerByte);
    if (nb == 0) break;
    pack_bytes(fields + done, nb, FW, bytes);
    put_bytes(w, bytes, nb);
    done += nb * kPerByte;
  }
  for (; done < n; ++done) w.put(fields[done], FW);
}

template <unsigned FW>
void get_fields_bytes(BitReader& r, std::uint32_t* fields, std::size_t n) {
  constexpr std::size_t kPerByte = 8 / FW;
  std::uint8_t bytes[kQsgdChunk];
  std::size_t done = 0;
  while (done < n) {
    const std::size_t nb = std::min(kQsgdChunk, (n - done) / kPerByte);
    if (nb == 0) break;
    get_bytes(r, bytes, nb);
    unpack_bytes(bytes, nb, FW, fields + done);
    done += nb * kPerByte;
  }
  for (; done < n; ++done) fields[done] = static_cast<std::uint32_t>(r.get(FW));
}

// Dispatch on the field width to a specialisation; widths 2..21 cover s in [1, 2^20].
template <unsigned FW = 2>
void put_dispatch(BitWriter& w, const std::uint32_t* fields, std::size_t n, unsigned bits) {
  if constexpr (FW > 21) {
    for (std::size_t i = 0; i < n; ++i) w.put(fields[i], bits);
  } else {
    if constexpr (8 % FW == 0) {
      if (bits == FW) return put_fields_bytes<FW>(w, fields, n);
    } else {
      if (bits == FW) return put_fields_fixed<FW>(w, fields, n);
    }
    put_dispatch<FW + 1>(w, fields, n, bits);
  }
}

template <unsigned FW = 2>
void get_dispatch(BitReader& r, std::uint32_t* fields, std::size_t n, unsigned bits) {
  if constexpr (FW > 21) {
    for (std::size_t i = 0; i < n; ++i) fields[i] = static_cast<std::uint32_t>(r.get(bits));
  } else {
    if constexpr (8 % FW == 0) {
      if (bits == FW) return get_fields_bytes<FW>(r, fields, n);
    } else {
      if (bits == FW) return get_fields_fixed<FW>(r, fields, n);
    }
    get_dispatch<FW + 1>(r, fields, n, bits);
  }
}

}  // namespace

void put_fields(BitWriter& w, const std::uint32_t* fields, std::size_t n, unsigned field_bits) {
  put_dispatch(w, fields, n, field_bits);
}

void get_fields(BitReader& r, std::uint32_t* fields, std::size_t n, unsigned field_bits) {
  get_dispatch(r, fields, n, field_bits);
}

}  // namespace thinwire::codec::kernels
