#include "thinwire/codec/registry.hpp"

#include <array>
#include <string>

#include "thinwire/codec/float_cast.hpp"
#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/qsgd.hpp"
#include "thinwire/codec/randk.hpp"
#include "thinwire/codec/sign.hpp"
#include "thinwire/codec/terngrad.hpp"
#include "thinwire/codec/threshold.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/codec/wangni.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec {
namespace {

// One row per codec; the wire id is the lookup key for decoding, the name for spec strings.
const std::array kRegistry{
    CodecEntry{CodecId::kIdentity, "identity", "lossless float32 (the uncompressed baseline)",
               &IdentityCodec::from_spec, &IdentityCodec::from_params},
    CodecEntry{CodecId::kFp16, "fp16", "IEEE half precision, round to nearest even, saturating",
               &FloatCastCodec::fp16_from_spec, &FloatCastCodec::fp16_from_params},
    CodecEntry{CodecId::kBf16, "bf16", "bfloat16, round to nearest even, saturating",
               &FloatCastCodec::bf16_from_spec, &FloatCastCodec::bf16_from_params},
    CodecEntry{CodecId::kQsgd, "qsgd",
               "stochastic quantization, s levels per bucket (s, bucket, norm=l2|max, "
               "coding=packed|elias)",
               &QsgdCodec::from_spec, &QsgdCodec::from_params},
    CodecEntry{CodecId::kTernGrad, "terngrad", "ternary stochastic quantization (bucket, clip)",
               &TernGradCodec::from_spec, &TernGradCodec::from_params},
    CodecEntry{CodecId::kSign, "sign", "scaled sign, 1 bit per element (bucket)",
               &SignCodec::from_spec, &SignCodec::from_params},
    CodecEntry{CodecId::kTopK, "topk",
               "k largest magnitudes (k, index=elias|fixed, values=fp32|qsgd + qsgd params)",
               &TopKCodec::from_spec, &TopKCodec::from_params},
    CodecEntry{CodecId::kRandK, "randk", "k uniform random indices scaled by d/k (k, shared_seed)",
               &RandKCodec::from_spec, &RandKCodec::from_params},
    CodecEntry{CodecId::kWangni, "wangni",
               "unbiased sparsification, keep probability proportional to |v_i| (density)",
               &WangniCodec::from_spec, &WangniCodec::from_params},
    CodecEntry{CodecId::kThreshold, "threshold", "keep |v_i| >= tau (tau)",
               &ThresholdCodec::from_spec, &ThresholdCodec::from_params},
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
  if (text.find(kErrorFeedbackSuffix) != std::string_view::npos) {
    throw InvalidArgument("codec spec '" + clip_text(text) +
                          "': '+ef' (error feedback) goes once, at the end of the spec");
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
      "fp16",
      "bf16",
      "qsgd",
      "qsgd:s=1,bucket=0,norm=l2,coding=elias",
      "qsgd:s=7,bucket=512,norm=max,coding=packed",    // 4 bits/element
      "qsgd:s=127,bucket=512,norm=max,coding=packed",  // 8 bits/element
      "qsgd:s=16,bucket=64,norm=l2,coding=elias",
      "qsgd:s=1024,bucket=0,norm=l2,coding=elias",
      "qsgd:s=2,bucket=4096,norm=l2,coding=elias",
      "terngrad",
      "terngrad:bucket=0,clip=2.5",
      "sign",
      "sign:bucket=64",
      "topk:k=1",
      "topk:k=0.01",
      "topk:k=0.1,index=fixed",
      "topk:k=0.5,index=fixed",
      "topk:k=0.05,values=qsgd,s=16,bucket=512,norm=l2,coding=packed",
      "topk:k=0.2,index=fixed,values=qsgd,s=4,bucket=0,norm=max,coding=elias",
      "randk:k=1",
      "randk:k=0.01",
      "randk:k=0.5",
      "randk:k=0.1,shared_seed=7",
      "wangni:density=0.01",
      "wangni:density=0.25",
      "wangni:density=1",
      "threshold:tau=0",
      "threshold:tau=0.5",
  };
}

}  // namespace thinwire::codec
