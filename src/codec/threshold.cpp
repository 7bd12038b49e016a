#include "thinwire/codec/threshold.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "sparse_coding.hpp"

namespace thinwire::codec {
namespace {

constexpr std::string_view kName = "threshold";

std::string tau_problem(double tau) {
  if (std::isfinite(tau) && tau >= 0.0) return {};
  return "tau must be finite and >= 0, got " + sparse::format_number(tau);
}

}  // namespace

ThresholdCodec::ThresholdCodec(double tau) : tau_(tau) {
  if (std::string problem = tau_problem(tau); !problem.empty()) {
    throw InvalidArgument("threshold: " + problem);
  }
}

std::string ThresholdCodec::spec() const { return "threshold:tau=" + sparse::format_number(tau_); }

std::size_t ThresholdCodec::max_encoded_bytes(std::size_t d) const {
  const std::uint64_t bits = sparse::count_bits_bound(d) +
                             sparse::index_bits_bound_any_count(false, d) + 32 * std::uint64_t{d};
  return sparse::message_bytes(8, bits);
}

std::size_t ThresholdCodec::encode_into(std::span<const float> v, const EncodeContext& /*ctx*/,
                                        std::span<std::byte> out) const {
  require_finite(v, kName);
  const std::size_t d = v.size();
  // Three passes over v (count, indices, values) instead of a scratch list of the kept indices.
  const auto count = static_cast<std::uint64_t>(
      std::count_if(v.begin(), v.end(), [this](float x) { return keeps(x); }));

  MessageWriter w(out, id(), d);
  write_params(w.params());
  BitWriter bits(w.payload_area());
  sparse::put_count(bits, count);
  sparse::IndexWriter index_writer(/*fixed_width=*/false, d);
  for (std::size_t i = 0; i < d; ++i) {
    if (keeps(v[i])) index_writer.put(bits, i);
  }
  for (const float x : v) {
    if (keeps(x)) sparse::put_f32(bits, x);
  }
  return w.finish(bits.finish());
}

void ThresholdCodec::decode_payload(std::span<const std::byte> payload, std::span<float> out,
                                    DecodeMode mode) const {
  const std::size_t d = out.size();
  BitReader r(payload);
  const std::uint64_t count = sparse::get_count(r, d, kName);
  std::vector<std::uint64_t> indices(count);
  sparse::IndexReader(/*fixed_width=*/false, d, kName).get_all(r, indices);
  std::vector<float> values(count);
  for (float& x : values) {
    x = sparse::get_finite_f32(r, kName);
    if (!keeps(x)) throw CorruptMessage("threshold: kept value below tau in payload");
  }
  sparse::finish_payload(r, kName);

  sparse::scatter<std::uint64_t>(indices, values, out, mode);
}

void ThresholdCodec::write_params(ParamWriter& w) const { w.put_f64(tau_); }

std::unique_ptr<Codec> ThresholdCodec::from_spec(Spec& spec) {
  if (!spec.has("tau")) {
    throw InvalidArgument("threshold: missing parameter tau (e.g. threshold:tau=0.001)");
  }
  return std::make_unique<ThresholdCodec>(spec.get_double("tau", 0.0));
}

std::unique_ptr<Codec> ThresholdCodec::from_params(ParamReader& params) {
  const double tau = params.get_f64();
  if (std::string problem = tau_problem(tau); !problem.empty()) {
    throw CorruptMessage("threshold: message parameter " + problem);
  }
  return std::make_unique<ThresholdCodec>(tau);
}

}  // namespace thinwire::codec
