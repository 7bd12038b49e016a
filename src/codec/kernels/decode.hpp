// Decoders for the byte-aligned packed payloads (issue 7; on Highway since issue 20, every target):
// QSGD with 2, 4 or 8-bit fields (s = 1, 4..7, 64..127) and TernGrad's 2-bit codes. Each call
// decodes a run of consecutive buckets (scale, then fields) straight from the payload bytes into
// the output floats, with the per-bucket value tables (2 and 4 bits) built in registers: no field
// or byte buffer in between and no call per bucket. qsgd.cpp and terngrad.cpp keep their field
// kernels as the oracle (KernelPath::kReference) and for the payloads this does not take (buckets
// that end inside a byte, other field widths).
//
// The values are those of the reference decoders, bit for bit: QSGD's ±(float)(step·level) with
// step = (double)scale / s in double, TernGrad's ±scale, added to or stored over the output.
#pragma once

#include <cstddef>
#include <cstdint>

#include "thinwire/core/bit_io.hpp"

namespace thinwire::codec::kernels {

// The payload's shape: d elements in buckets of `bucket` (the last may be shorter), each bucket a
// raw float32 scale followed, unless the scale is zero, by one field_bits-bit field per element.
struct PackedLayout {
  std::size_t d = 0;
  std::size_t bucket = 0;   // >= 1
  unsigned field_bits = 0;  // 2, 4 or 8
  std::uint32_t s = 0;      // QSGD: the levels (field = level | negative << (field_bits - 1));
                            // 0: TernGrad codes (0 = 0, 1 = +scale, 2 = -scale, 3 invalid)
};

// Where decoding stands; starts zeroed, carried from one call to the next.
struct PackedCursor {
  std::size_t next = 0;          // element of the next field, or of the next bucket's first
  std::size_t left = 0;          // fields left in the current bucket (0: next comes a scale)
  std::size_t first = 0;         // first element of the current (or last finished) bucket
  std::uint32_t scale_bits = 0;  // the current bucket's scale, while left > 0
  bool bad = false;              // an invalid field seen in the current bucket
};

enum class PackedStop : std::uint8_t {
  kDone,       // all d elements decoded
  kNeedInput,  // the input ends before the next scale or field group (or the next scale does not
               // start on a byte): call again with the input from cursor position `used` on
  kBadScale,   // the next scale is negative or not finite; `used` stops before it
  kBadField,   // the bucket starting at cursor.first holds an invalid field (level > s, a
               // signed zero level, TernGrad code 3); its elements are overwritten or partly added
};

// Decodes from in[0..avail_bits) (bits least significant first, in[] readable up to the byte
// holding bit avail_bits - 1), which starts at the cursor's stream position; out is the whole
// d-element vector. `used` receives the bits consumed.
PackedStop decode_packed(const std::uint8_t* in, std::uint64_t avail_bits,
                         const PackedLayout& layout, PackedCursor& cursor, std::uint64_t& used,
                         float* out, bool overwrite) noexcept;

// decode_packed over the stream r from its position (a bucket's scale, cursor zeroed); r ends at
// the cursor's position. From a byte position the kernel reads r's buffer in place, in one call;
// off a byte it gets stack copies of the next stream bits, 8 KiB at a time. Returns kDone,
// kBadField, kBadScale, or kNeedInput where the rest is not for the kernel (the stream ends inside
// a scale, or the next bucket does not start on a byte); cursor.next is then a bucket's first
// element, for the caller's per-bucket decoder to go on from. Throws BitReader's CorruptMessage
// if the stream ends inside a bucket's fields.
PackedStop decode_packed_stream(BitReader& r, const PackedLayout& layout, PackedCursor& cursor,
                                float* out, bool overwrite);

}  // namespace thinwire::codec::kernels
