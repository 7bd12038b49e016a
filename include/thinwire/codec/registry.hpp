// Building codecs from spec strings, and the table that maps wire ids back to codecs.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {

struct CodecEntry {
  CodecId id;
  std::string_view name;
  std::string_view summary;  // one line for --help
  // Builds from a parsed spec; reads its keys (Spec::finish is called by the registry).
  std::unique_ptr<Codec> (*from_spec)(Spec& spec);
  // Builds from a message's params section; throws CorruptMessage for invalid values.
  std::unique_ptr<Codec> (*from_params)(ParamReader& params);
};

// Every codec thinwire knows, in id order.
[[nodiscard]] std::span<const CodecEntry> codec_registry();
[[nodiscard]] const CodecEntry* find_codec(CodecId id) noexcept;

// A spec string split into the codec and the "+ef" error-feedback request.
struct CodecChoice {
  std::unique_ptr<Codec> codec;
  bool error_feedback = false;
};

// Parses "name[:k=v,...][+ef]". Throws InvalidArgument naming the codec and parameter.
[[nodiscard]] CodecChoice parse_codec(std::string_view spec);
// Parses a spec without "+ef" (rejects it).
[[nodiscard]] std::unique_ptr<Codec> make_codec(std::string_view spec);

// One spec per codec and notable option combination; drives the contract tests, the fuzzer's
// seed corpus and the codec demo.
[[nodiscard]] std::vector<std::string> example_codec_specs();

}  // namespace thinwire::codec
