#include "thinwire/codec/topk.hpp"

#include <algorithm>
#include <vector>

#include "sparse_coding.hpp"
#include "thinwire/codec/select.hpp"

namespace thinwire::codec {
namespace {

constexpr std::string_view kName = "topk";
constexpr std::uint8_t kValuesFp32 = 0;
constexpr std::uint8_t kValuesQsgd = 1;

}  // namespace

TopKCodec::TopKCodec(double k, IndexCoding index, std::optional<QsgdParams> qsgd)
    : k_(k), index_(index), qsgd_(qsgd) {
  if (std::string problem = sparse::count_param_problem(k); !problem.empty()) {
    throw InvalidArgument("topk: k " + problem);
  }
  if (index != IndexCoding::kElias && index != IndexCoding::kFixed) {
    throw InvalidArgument("topk: unknown index coding");
  }
}

std::unique_ptr<Codec> TopKCodec::at_level(const Level& level) const {
  std::optional<QsgdParams> qsgd = qsgd_;
  if (qsgd && level.second != 0) {
    if (level.second > kQsgdMaxLevels) {
      throw InvalidArgument("topk: QSGD levels must be in [1, 2^20], got " +
                            std::to_string(level.second));
    }
    qsgd->levels = level.second;
  }
  return std::make_unique<TopKCodec>(level.value, index_, qsgd);
}

std::size_t TopKCodec::kept(std::size_t d) const noexcept { return sparse::kept_count(k_, d); }

std::string TopKCodec::spec() const {
  std::string s = "topk:k=" + sparse::format_number(k_) + ",index=";
  s += index_ == IndexCoding::kFixed ? "fixed" : "elias";
  s += qsgd_ ? ",values=qsgd," + qsgd_params_spec(*qsgd_) : ",values=fp32";
  return s;
}

std::size_t TopKCodec::params_bytes() const noexcept {
  return kParamsBytes + (qsgd_ ? kQsgdParamsBytes : 0);
}

std::size_t TopKCodec::max_encoded_bytes(std::size_t d) const {
  const std::size_t k = kept(d);
  const std::uint64_t value_bits = qsgd_ ? qsgd_payload_max_bits(k, *qsgd_) : 32 * std::uint64_t{k};
  return sparse::message_bytes(
      params_bytes(), sparse::index_bits_bound(index_ == IndexCoding::kFixed, k, d) + value_bits);
}

std::size_t TopKCodec::encode_into(std::span<const float> v, const EncodeContext& ctx,
                                   std::span<std::byte> out) const {
  require_finite(v, kName);
  sparse::require_indexable(v.size(), kName);
  const std::size_t d = v.size();
  std::vector<std::uint32_t> indices;
  select_top_k(v, kept(d), indices);

  MessageWriter w(out, id(), d);
  write_params(w.params());
  BitWriter bits(w.payload_area());
  sparse::IndexWriter(index_ == IndexCoding::kFixed, d).put_all(bits, indices);
  if (qsgd_) {
    std::vector<float> values(indices.size());
    for (std::size_t j = 0; j < indices.size(); ++j) values[j] = v[indices[j]];
    qsgd_encode_payload(values, *qsgd_, ctx.key(RngPurpose::kQuantize), bits);
  } else {
    for (const std::uint32_t i : indices) sparse::put_f32(bits, v[i]);
  }
  return w.finish(bits.finish());
}

void TopKCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                               DecodeMode mode) const {
  const std::size_t d = out.size();
  if (d > sparse::kMaxElements) {
    throw CorruptMessage("topk: message announces " + std::to_string(d) + " elements (> 2^32-1)");
  }
  // Decode everything into scratch first, so that a corrupt payload leaves out untouched.
  const std::size_t k = kept(d);
  BitReader r(payload);
  std::vector<std::uint32_t> indices(k);
  sparse::IndexReader(index_ == IndexCoding::kFixed, d, kName).get_all(r, indices);
  std::vector<float> values(k);
  if (qsgd_) {
    qsgd_decode_payload(r, *qsgd_, values, DecodeMode::kOverwrite);
  } else {
    sparse::get_finite_f32s(r, values, kName);
  }
  sparse::finish_payload(r, kName);

  sparse::scatter<std::uint32_t>(indices, values, out, mode);
}

void TopKCodec::write_params(ParamWriter& w) const {
  w.put_f64(k_);
  w.put_u8(static_cast<std::uint8_t>(index_));
  w.put_u8(qsgd_ ? kValuesQsgd : kValuesFp32);
  if (qsgd_) write_qsgd_params(w, *qsgd_);
}

std::unique_ptr<Codec> TopKCodec::from_spec(Spec& spec) {
  const double k = sparse::parse_count_param(spec, kName);
  const IndexCoding index = spec.get_choice("index", "elias", {"elias", "fixed"}) == "fixed"
                                ? IndexCoding::kFixed
                                : IndexCoding::kElias;
  std::optional<QsgdParams> qsgd;
  if (spec.get_choice("values", "fp32", {"fp32", "qsgd"}) == "qsgd") qsgd = parse_qsgd_params(spec);
  return std::make_unique<TopKCodec>(k, index, qsgd);
}

std::unique_ptr<Codec> TopKCodec::from_params(ParamReader& params) {
  const double k = sparse::read_count_param(params, kName);
  const std::uint8_t index = params.get_u8();
  if (index > static_cast<std::uint8_t>(IndexCoding::kFixed)) {
    throw CorruptMessage("topk: unknown index coding " + std::to_string(index) + " in message");
  }
  const std::uint8_t values = params.get_u8();
  std::optional<QsgdParams> qsgd;
  if (values == kValuesQsgd) {
    qsgd = read_qsgd_params(params);
  } else if (values != kValuesFp32) {
    throw CorruptMessage("topk: unknown value coding " + std::to_string(values) + " in message");
  }
  return std::make_unique<TopKCodec>(k, static_cast<IndexCoding>(index), qsgd);
}

}  // namespace thinwire::codec
