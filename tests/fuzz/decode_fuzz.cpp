// libFuzzer target for message decoding: any byte string must decode or throw CorruptMessage,
// never read or write out of bounds, never hit undefined behaviour (built with ASan + UBSan).
//
// Input layout: byte 0 picks the path, the rest is the message.
//   bit 0: 0 = decode() (checksum verified), 1 = decode_unverified() (reaches the payload
//          decoders with arbitrary bytes, which is where the bugs would be)
//   bit 1: 0 = overwrite, 1 = accumulate (into a buffer of ones)
// The output length comes from the message's element count, as a receiver would size it; counts
// above kMaxElements are skipped so that the fuzzer explores decoders instead of allocators.
//
// -simd_target=NAME (one of thinwire::codec::simd_targets(): AVX2, SSE4, ...) runs the decoders'
// kernels on that SIMD target instead of the best (libFuzzer warns that it does not know the flag
// and passes it on), so that every target's kernels are fuzzed: scripts/fuzz SECONDS TARGET.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/message.hpp"
#include "thinwire/codec/simd.hpp"
#include "thinwire/core/error.hpp"

namespace {

constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 20;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  constexpr std::string_view kFlag = "-simd_target=";
  for (int i = 1; i < *argc; ++i) {
    const std::string_view arg((*argv)[i]);
    if (arg.starts_with(kFlag)) thinwire::codec::limit_simd_target(arg.substr(kFlag.size()));
  }
  std::printf("simd target: %s\n", thinwire::codec::simd_target().c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using thinwire::codec::DecodeMode;
  if (size < 1) return 0;
  const bool verified = (data[0] & 1) == 0;
  const DecodeMode mode = (data[0] & 2) == 0 ? DecodeMode::kOverwrite : DecodeMode::kAccumulate;
  const std::span<const std::byte> message(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  try {
    const std::uint64_t elements = thinwire::codec::message_elements(message);
    if (elements > kMaxElements) return 0;
    std::vector<float> out(elements, 1.0f);
    if (verified) {
      thinwire::codec::decode(message, out, mode);
    } else {
      thinwire::codec::decode_unverified(message, out, mode);
    }
  } catch (const thinwire::CorruptMessage&) {
    // The documented outcome for bad input. Anything else escapes and libFuzzer reports it.
  }
  return 0;
}
