#include "thinwire/codec/registry.hpp"

#include <array>
#include <string>

#include "thinwire/codec/identity.hpp"

namespace thinwire::codec {
namespace {

// One row per codec; the wire id is the lookup key for decoding, the name for spec strings.
const std::array kRegistry{
    CodecEntry{CodecId::kIdentity, "identity", "lossless float32 (the uncompressed baseline)",
               &IdentityCodec::from_spec, &IdentityCodec::from_params},
};

constexpr std::string_view kErrorFeedbackSuffix = "+ef";

}  // namespace

std::span<const CodecEntry> codec_registry() { return kRegistry; }

const CodecEntry* find_codec(CodecId id) noexcept {
  for (const CodecEntry& entry : kRegistry) {
    if (entry.id == id) return &entry;
  }
  return nullptr;
}

CodecChoice parse_codec(std::string_view text) {
  CodecChoice choice;
  if (text.ends_with(kErrorFeedbackSuffix)) {
    choice.error_feedback = true;
    text.remove_suffix(kErrorFeedbackSuffix.size());
  }
  Spec spec = Spec::parse(text);
  for (const CodecEntry& entry : kRegistry) {
    if (entry.name == spec.name()) {
      choice.codec = entry.from_spec(spec);
      spec.finish();
      return choice;
    }
  }
  std::string names;
  for (const CodecEntry& entry : kRegistry) {
    if (!names.empty()) names += ", ";
    names += entry.name;
  }
  throw InvalidArgument("unknown codec '" + spec.name() + "' (known: " + names + ")");
}

std::unique_ptr<Codec> make_codec(std::string_view text) {
  CodecChoice choice = parse_codec(text);
  if (choice.error_feedback) {
    throw InvalidArgument("codec '" + std::string(text) +
                          "': '+ef' needs a per-worker ErrorFeedback object here");
  }
  return std::move(choice.codec);
}

std::vector<std::string> example_codec_specs() {
  return {
      "identity",
  };
}

}  // namespace thinwire::codec
