// `thinwire demo`: the README's main job. Builds one realistic gradient and compresses it with
// every example codec spec, printing size, bits per element, error and speed in one table.
//
// The vector is the minibatch gradient of the softmax cross-entropy loss of a linear classifier
// (10 classes) at a small random initialization, on synthetic data shaped like the sparse,
// clustered, unevenly scaled features of real tasks:
//   x_ij = s_j · (μ_{y_i, j} + ε_ij / 2) on a random 5 % of features, 0 elsewhere,
//   s_j = exp(z_j) (log-normal per-feature scale), μ_cj, ε_ij, z_j ~ N(0, 1),
//   G_cj = (1/n) Σ_i (softmax(W x_i)_c − [y_i = c]) · x_ij      (∂ loss / ∂ W_cj).
// Its entries are heavy-tailed (a few features dominate the norm), which is exactly what makes
// the codecs differ: top-k keeps most of the norm with few entries, QSGD's error depends on the
// norm's spread, and so on.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace thinwire::cli {
namespace {

constexpr std::size_t kClasses = 10;
constexpr std::size_t kSamples = 128;
constexpr double kActiveFraction = 0.05;
constexpr double kInitScale = 0.01;
constexpr std::size_t kMaxSize = std::size_t{1} << 28;

constexpr std::string_view kVectorDescription =
    "softmax-regression gradient (10 classes, minibatch of 128 synthetic samples with sparse "
    "clustered features and log-normal feature scales, at a random initialization)";

struct DemoOptions {
  std::size_t size = std::size_t{1} << 20;
  std::uint64_t seed = 1;
  std::string seed_text = "1";  // parsed by parse_unsigned: CLI11 would wrap -1 and 2^64
  std::vector<std::string> specs;
};

// The gradient described at the top of this file, truncated to `size` entries (row-major by
// class, so the first `size / 10` features of every class are kept when size is a multiple of 10).
std::vector<float> softmax_regression_gradient(std::size_t size, std::uint64_t seed) {
  const std::size_t features = (size + kClasses - 1) / kClasses;
  RngStream data(RngKey::make(seed, 0, 0, RngPurpose::kData));
  RngStream init(RngKey::make(seed, 0, 0, RngPurpose::kInit));

  std::vector<double> scale(features);
  for (double& s : scale) s = std::exp(data.next_normal());
  std::vector<double> means(kClasses * features);
  for (double& m : means) m = data.next_normal();
  std::vector<double> weights(kClasses * features);
  for (double& w : weights) w = kInitScale * init.next_normal();

  std::vector<double> grad(kClasses * features, 0.0);
  std::vector<std::size_t> active;
  std::vector<double> values;
  const double log_keep = std::log1p(-kActiveFraction);
  for (std::size_t i = 0; i < kSamples; ++i) {
    const std::size_t label = i % kClasses;
    // Active features by geometric gaps: P(gap = g) = (1 - q)^g · q.
    active.clear();
    values.clear();
    for (std::size_t j = 0;; ++j) {
      j += static_cast<std::size_t>(std::floor(std::log1p(-data.next_uniform_double()) / log_keep));
      if (j >= features) break;
      active.push_back(j);
      values.push_back(scale[j] * (means[label * features + j] + 0.5 * data.next_normal()));
    }
    // softmax(W x) with the usual max shift for stability.
    std::array<double, kClasses> logits{};
    for (std::size_t c = 0; c < kClasses; ++c) {
      double z = 0.0;
      for (std::size_t a = 0; a < active.size(); ++a) {
        z += weights[c * features + active[a]] * values[a];
      }
      logits[c] = z;
    }
    const double top = *std::max_element(logits.begin(), logits.end());
    double total = 0.0;
    for (double& z : logits) total += (z = std::exp(z - top));
    for (std::size_t c = 0; c < kClasses; ++c) {
      const double residual = logits[c] / total - (c == label ? 1.0 : 0.0);
      for (std::size_t a = 0; a < active.size(); ++a) {
        grad[c * features + active[a]] += residual * values[a] / static_cast<double>(kSamples);
      }
    }
  }
  std::vector<float> v(size);
  for (std::size_t k = 0; k < size; ++k) v[k] = static_cast<float>(grad[k]);
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best-of-several wall time of fn(); repeats while the total stays under ~0.2 s.
template <typename Fn>
double best_time(Fn&& fn) {
  double best = 1e300;
  double total = 0.0;
  for (int rep = 0; rep < 5 && (rep == 0 || total < 0.2); ++rep) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    const double t = seconds_since(start);
    best = std::min(best, t);
    total += t;
  }
  return best;
}

struct Row {
  std::string spec;
  std::size_t bytes = 0;
  double bits_per_element = 0;
  double rel_error = 0;
  double encode_ms = 0;
  double decode_ms = 0;
};

Row measure(const std::string& spec, const std::vector<float>& v, std::uint64_t seed) {
  const codec::CodecChoice choice = as_usage("--codec", [&] { return codec::parse_codec(spec); });
  const codec::EncodeContext ctx{.seed = seed};
  std::vector<std::byte> buffer(choice.codec->max_encoded_bytes(v.size()));
  std::size_t bytes = 0;
  Row row;
  row.spec = spec;
  if (choice.error_feedback) {
    // One vector: error feedback from a zero residual (a fresh worker), timed with its residual
    // update; the message equals the plain codec's apart from the header flag.
    const auto ef = codec::make_error_feedback(choice, v.size());
    row.encode_ms = 1e3 * best_time([&] {
                      ef->reset();
                      bytes = ef->encode_into(v, ctx, buffer);
                    });
  } else {
    row.encode_ms = 1e3 * best_time([&] { bytes = choice.codec->encode_into(v, ctx, buffer); });
  }
  const std::span<const std::byte> message(buffer.data(), bytes);
  std::vector<float> decoded(v.size());
  row.decode_ms =
      1e3 * best_time([&] { codec::decode(message, decoded, codec::DecodeMode::kOverwrite); });
  double err = 0.0;
  double norm = 0.0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double diff = static_cast<double>(decoded[i]) - static_cast<double>(v[i]);
    err += diff * diff;
    norm += static_cast<double>(v[i]) * static_cast<double>(v[i]);
  }
  row.bytes = bytes;
  row.bits_per_element =
      v.empty() ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(v.size());
  row.rel_error = norm > 0.0 ? std::sqrt(err / norm) : std::sqrt(err);
  return row;
}

void print_table(const std::vector<Row>& rows, const DemoOptions& opt) {
  std::size_t width = 4;
  for (const Row& r : rows) width = std::max(width, r.spec.size());
  const int w = static_cast<int>(width);
  std::printf("Vector: %s; d = %zu, seed %llu.\n", std::string(kVectorDescription).c_str(),
              opt.size, static_cast<unsigned long long>(opt.seed));
  std::printf(
      "Error is ||decode(encode(v)) - v|| / ||v||; bits include the 32-byte header; "
      "times are the best of up to 5 runs on one thread.\n\n");
  std::printf("%-*s %12s %10s %8s %12s %11s %11s\n", w, "spec", "bytes", "bits/elem", "ratio",
              "rel_l2_err", "encode_ms", "decode_ms");
  std::printf("%s\n", std::string(width + 71, '-').c_str());
  for (const Row& r : rows) {
    const double ratio = r.bits_per_element > 0 ? 32.0 / r.bits_per_element : 0.0;
    std::printf("%-*s %12zu %10.3f %7.1fx %12.3e %11.3f %11.3f\n", w, r.spec.c_str(), r.bytes,
                r.bits_per_element, ratio, r.rel_error, r.encode_ms, r.decode_ms);
  }
}

void run_demo(DemoOptions opt) {
  opt.seed = parse_unsigned(opt.seed_text, "--seed", 0, UINT64_MAX, "[0, 2^64-1]");
  const std::vector<std::string> specs =
      opt.specs.empty() ? codec::example_codec_specs() : opt.specs;
  // Validate every spec before spending time on the vector.
  for (const std::string& spec : specs) {
    (void)as_usage("--codec", [&] { return codec::parse_codec(spec); });
  }
  const std::vector<float> v = softmax_regression_gradient(opt.size, opt.seed);
  std::vector<Row> rows;
  rows.reserve(specs.size());
  for (const std::string& spec : specs) rows.push_back(measure(spec, v, opt.seed));
  print_table(rows, opt);
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Compress a realistic gradient with every codec; print a comparison table");
  demo->add_option("--size", opt->size, "Number of elements d of the gradient")
      ->check(CLI::Range(std::size_t{1}, kMaxSize))
      ->capture_default_str();
  demo->add_option("--seed", opt->seed_text, "Seed of the synthetic data, the model and the codecs")
      ->type_name("UINT")
      ->capture_default_str();
  demo->add_option("--codec", opt->specs,
                   "Use these specs instead of every example spec (repeatable)");
  demo->footer(
      "The vector is the minibatch gradient of the softmax cross-entropy loss of a 10-class\n"
      "linear model at a small random initialization, on 128 synthetic samples whose features\n"
      "are sparse (5 % active), clustered by class and scaled by log-normal per-feature factors,\n"
      "so its entries are heavy-tailed like real gradients.\n\n"
      "Columns: bytes of the message (32-byte header included), bits per element, compression\n"
      "ratio against float32, relative L2 error ||decode(encode(v)) - v|| / ||v||, and the best\n"
      "of up to 5 encode and decode times on one thread. 'thinwire codecs' lists the specs.");
  demo->callback([opt] { run_demo(*opt); });
}

}  // namespace thinwire::cli
