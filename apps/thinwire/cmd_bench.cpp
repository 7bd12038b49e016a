// `thinwire bench`: codec throughput on one synthetic vector, next to the machine's streaming
// ceiling measured in the same run (issue 7, SPEC §6).
//
// For a codec spec and a size d it times encode, decode (overwrite) and decode (accumulate), best
// of --reps wall-clock runs, and three streaming passes that bound what any codec could do:
//   ceiling:            read the d input floats, write the message's bytes (what an encoder must
//                       move);
//   decode ceiling:     read the message's bytes, write the d floats (what a decoder must move);
//   accumulate ceiling: read the message's bytes, read and write the d floats (what an
//                       accumulating decoder must move: y += x reads y as well);
// each a simple vectorized loop (an OR-reduction of every input word, then the output stored, or
// a constant derived from it added), so the ratios read as "fraction of the machine's streaming
// limit": decode against the decode ceiling, accumulate against the accumulate ceiling. For topk
// it also times std::nth_element selecting the same k on the magnitudes of the same data.
// With --threads T (or threads=T in the spec) encode, decode and accumulate all get T threads;
// decode_threads reports how many parts the decoder actually cuts the message into (1 for codecs
// that do not split, see codec::decode). The ceiling passes stay one-threaded loops.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/codec/select.hpp"
#include "thinwire/codec/simd.hpp"
#include "thinwire/codec/topk.hpp"
#include "thinwire/core/checksum.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::cli {
namespace {

// Codecs whose spec takes the local `threads` key (multi-threaded encode).
constexpr std::string_view kThreadedCodecs[] = {"qsgd", "terngrad", "sign"};
constexpr std::uint64_t kMaxSize = 0xFFFFFFFFULL;  // sparse codecs address with 32-bit indices

// Most runs per measurement: enough for any best-of timing, and a typo cannot run for days.
constexpr std::uint64_t kMaxReps = 1000000;

struct BenchOptions {
  std::string codec;
  std::uint64_t size = 0;
  unsigned threads = 0;  // 0: not given
  int reps = 5;
  std::uint64_t seed = 1;
  bool json = false;
  std::string simd_target;  // empty: the best target of this CPU
};

// The integer flags as given; parse_unsigned checks their ranges (CLI11 would wrap -1).
struct BenchFlags {
  std::string size;
  std::string reps = "5";
  std::string seed = "1";
};

// Gradient-like input: a uniform in (-1, 1) times 2^(8u - 4), heavy-tailed like real gradients
// (as bench/kernel_bench.cpp), a pure function of (seed, d).
std::vector<float> make_input(std::size_t d, std::uint64_t seed) {
  std::vector<float> v(d);
  const RngKey key = RngKey::make(seed, 0, d, RngPurpose::kTest);
  for (std::size_t i = 0; i < d; ++i) {
    const double u = 2.0 * key.uniform_double(2 * i) - 1.0;
    v[i] = static_cast<float>(u * std::exp2(8.0 * key.uniform_double(2 * i + 1) - 4.0));
  }
  return v;
}

double best_seconds(int reps, const std::function<void()>& f) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

// Reads every word of in[0..n_in) block by block and hands each block's OR and its share [o0, o1)
// of an n_out-element output to emit, so that the reads and the writes run at once as in a codec.
// Blocks of >= 1024 input words (at most 4096 blocks): long enough that the per-block call does
// not dominate, short enough that reads and writes interleave. Returns the OR of the input (kept
// so that the reads are not optimized away).
template <typename In, typename Emit>
std::uint64_t blocked_pass(const In* in, std::size_t n_in, std::size_t n_out, Emit emit) {
  const std::size_t kBlocks = std::clamp<std::size_t>(n_in / 1024, 1, 4096);
  std::uint64_t seen = 0;
  std::size_t done = 0;
  for (std::size_t b = 0; b < kBlocks; ++b) {
    const std::size_t i0 = n_in * b / kBlocks;
    const std::size_t i1 = n_in * (b + 1) / kBlocks;
    In acc = 0;
    for (std::size_t i = i0; i < i1; ++i) acc |= in[i];
    seen |= acc;
    const std::size_t o1 = n_out * (b + 1) / kBlocks;
    emit(acc, done, o1);
    done = o1;
  }
  return seen;
}

// Reads in[0..n_in) and stores out[0..n_out) (the bytes an encoder or decoder must move).
template <typename In>
std::uint64_t streaming_pass(const In* in, std::size_t n_in, std::byte* out, std::size_t n_out) {
  return blocked_pass(in, n_in, n_out, [out](In acc, std::size_t o0, std::size_t o1) {
    std::memset(out + o0, static_cast<int>(acc & 0xFF), o1 - o0);
  });
}

// Reads in[0..n_in) and adds to y[0..d) (what an accumulating decoder must move): per block,
// y[i] += a value derived from the block's OR, so that neither the reads nor the adds can be
// dropped.
template <typename In>
std::uint64_t accumulate_pass(const In* in, std::size_t n_in, float* y, std::size_t d) {
  return blocked_pass(in, n_in, d, [y](In acc, std::size_t o0, std::size_t o1) {
    // 0 or 2^-40: y stays put to the eye over any number of runs, and the adds are real.
    const float c = static_cast<float>(acc & 1) * 0x1.0p-40f;
    for (std::size_t i = o0; i < o1; ++i) y[i] += c;
  });
}

nlohmann::json run_one(const BenchOptions& opt, const std::string& spec, unsigned threads) {
  const std::unique_ptr<codec::Codec> codec = codec::make_codec(spec);
  const auto d = static_cast<std::size_t>(opt.size);
  const std::vector<float> v = make_input(d, opt.seed);
  std::vector<std::byte> msg(codec->max_encoded_bytes(d));
  std::vector<float> out(d, 0.0f);
  const auto dd = static_cast<double>(d);
  const int reps = opt.reps;

  std::size_t n = 0;
  std::uint64_t iteration = 0;
  // Each run a new iteration: fresh random numbers, as in training.
  const double t_encode = best_seconds(reps, [&] {
    n = codec->encode_into(v, {.seed = opt.seed, .rank = 0, .iteration = iteration++}, msg);
  });
  const std::span<const std::byte> message(msg.data(), n);
  const double t_decode = best_seconds(
      reps, [&] { codec::decode(message, out, codec::DecodeMode::kOverwrite, threads); });
  const double t_accumulate = best_seconds(
      reps, [&] { codec::decode(message, out, codec::DecodeMode::kAccumulate, threads); });
  const unsigned decode_threads = codec->max_decode_threads(d, threads);

  // The ceilings, on the same buffers (input floats as words; output sized as the message).
  std::vector<std::byte> sink(n);
  std::vector<std::byte> floats_out(4 * d);
  std::vector<std::uint32_t> in_words(d);
  std::memcpy(in_words.data(), v.data(), 4 * d);
  std::vector<std::uint64_t> msg_words((n + 7) / 8, 0);
  std::memcpy(msg_words.data(), msg.data(), n);
  std::uint64_t guard = 0;
  const double t_ceiling = best_seconds(
      reps, [&] { guard ^= streaming_pass(in_words.data(), d, sink.data(), sink.size()); });
  const double t_decode_ceiling = best_seconds(reps, [&] {
    guard ^= streaming_pass(msg_words.data(), msg_words.size(), floats_out.data(), 4 * d);
  });
  std::vector<float> acc_out(d, 0.0f);
  const double t_accumulate_ceiling = best_seconds(reps, [&] {
    guard ^= accumulate_pass(msg_words.data(), msg_words.size(), acc_out.data(), d);
  });
  guard ^= std::bit_cast<std::uint32_t>(acc_out[d / 2]);  // the sums are used, so they stay
  const double t_memcpy =
      best_seconds(reps, [&] { std::memcpy(floats_out.data(), v.data(), 4 * d); });
  // The XXH3-64 message checksum alone, which every encode stamps and every decode verifies: how
  // much of those passes is the checksum rather than the codec.
  const double t_checksum = best_seconds(reps, [&] { guard ^= checksum64(message); });

  nlohmann::json j;
  j["codec"] = codec->spec();
  j["size"] = opt.size;
  j["threads"] = threads;
  j["decode_threads"] = decode_threads;
  j["reps"] = reps;
  j["timer"] = "wall clock, best of reps";
  j["simd_target"] = codec::simd_target();
  j["message_bytes"] = n;
  j["bits_per_element"] = d == 0 ? 0.0 : 8.0 * static_cast<double>(n) / dd;
  j["encode_elems_per_s"] = dd / t_encode;
  j["decode_elems_per_s"] = dd / t_decode;
  j["accumulate_elems_per_s"] = dd / t_accumulate;
  j["ceiling_elems_per_s"] = dd / t_ceiling;
  j["decode_ceiling_elems_per_s"] = dd / t_decode_ceiling;
  j["accumulate_ceiling_elems_per_s"] = dd / t_accumulate_ceiling;
  j["memcpy_elems_per_s"] = dd / t_memcpy;
  j["checksum_elems_per_s"] = dd / t_checksum;
  j["encode_vs_ceiling"] = t_ceiling / t_encode;
  j["decode_vs_ceiling"] = t_decode_ceiling / t_decode;
  j["accumulate_vs_ceiling"] = t_accumulate_ceiling / t_accumulate;
  if (const auto* topk = dynamic_cast<const codec::TopKCodec*>(codec.get())) {
    const std::size_t k = topk->kept(d);
    j["k"] = k;
    std::vector<std::uint32_t> indices;
    const double t_select = best_seconds(reps, [&] { codec::select_top_k(v, k, indices); });
    std::vector<float> mags(d);
    const double t_nth = best_seconds(reps, [&] {
      for (std::size_t i = 0; i < d; ++i) mags[i] = std::fabs(v[i]);
      if (k > 0) {
        std::nth_element(mags.begin(), mags.begin() + static_cast<std::ptrdiff_t>(k - 1),
                         mags.end(), std::greater<>());
      }
    });
    j["select_elems_per_s"] = dd / t_select;
    j["nth_element_elems_per_s"] = dd / t_nth;
    j["select_vs_nth_element"] = t_nth / t_select;
  }
  j["guard"] = guard & 1;  // keeps the ceiling passes observable; meaningless otherwise
  return j;
}

void print_table(const nlohmann::json& j) {
  const auto g = [&](const char* key) { return j[key].get<double>() / 1e9; };
  std::printf("codec      %s\n", j["codec"].get<std::string>().c_str());
  std::printf("size       %llu elements, %.3f bits/element, encode threads %u, decode threads %u\n",
              static_cast<unsigned long long>(j["size"].get<std::uint64_t>()),
              j["bits_per_element"].get<double>(), j["threads"].get<unsigned>(),
              j["decode_threads"].get<unsigned>());
  std::printf("simd       %s\n", j["simd_target"].get<std::string>().c_str());
  std::printf("%-26s %10s %12s\n", "pass", "G elem/s", "vs ceiling");
  std::printf("%-26s %10.3f %12.2f\n", "encode", g("encode_elems_per_s"),
              j["encode_vs_ceiling"].get<double>());
  std::printf("%-26s %10.3f %12.2f\n", "decode (overwrite)", g("decode_elems_per_s"),
              j["decode_vs_ceiling"].get<double>());
  std::printf("%-26s %10.3f %12.2f\n", "decode (accumulate)", g("accumulate_elems_per_s"),
              j["accumulate_vs_ceiling"].get<double>());
  std::printf("%-26s %10.3f\n", "ceiling (encode)", g("ceiling_elems_per_s"));
  std::printf("%-26s %10.3f\n", "ceiling (decode)", g("decode_ceiling_elems_per_s"));
  std::printf("%-26s %10.3f\n", "ceiling (accumulate)", g("accumulate_ceiling_elems_per_s"));
  std::printf("%-26s %10.3f\n", "memcpy", g("memcpy_elems_per_s"));
  std::printf("%-26s %10.3f\n", "checksum (of the message)", g("checksum_elems_per_s"));
  if (j.contains("nth_element_elems_per_s")) {
    std::printf("%-26s %10.3f\n", "select_top_k", g("select_elems_per_s"));
    std::printf("%-26s %10.3f %12s\n", "std::nth_element", g("nth_element_elems_per_s"), "");
    std::printf("select_top_k is %.1fx std::nth_element (k = %llu)\n",
                j["select_vs_nth_element"].get<double>(),
                static_cast<unsigned long long>(j["k"].get<std::uint64_t>()));
  }
  std::printf("(wall clock, best of %d runs)\n", j["reps"].get<int>());
}

void run_bench(BenchOptions opt, const BenchFlags& flags) {
  opt.size = parse_unsigned(flags.size, "--size", 1, kMaxSize, "[1, 2^32 - 1]");
  opt.reps = static_cast<int>(parse_unsigned(flags.reps, "--reps", 1, kMaxReps, "[1, 10^6]"));
  opt.seed = parse_unsigned(flags.seed, "--seed", 0, UINT64_MAX, "[0, 2^64-1]");
  if (!opt.simd_target.empty()) {
    as_usage("--simd-target", [&] {
      codec::limit_simd_target(opt.simd_target);
      return 0;
    });
  }
  Spec parsed = as_usage("--codec", [&] { return Spec::parse(opt.codec); });
  const bool spec_has_threads = parsed.has("threads");
  // Validates the whole spec (unknown codec, bad parameters) as a usage error.
  const std::unique_ptr<codec::Codec> probe =
      as_usage("--codec", [&] { return codec::make_codec(opt.codec); });
  const bool threaded = std::find(std::begin(kThreadedCodecs), std::end(kThreadedCodecs),
                                  parsed.name()) != std::end(kThreadedCodecs);
  unsigned threads = 1;
  std::string spec = opt.codec;
  if (opt.threads != 0) {
    if (spec_has_threads) {
      throw UsageError("--threads: the codec spec already sets threads; give one of the two");
    }
    if (opt.threads > 1 && !threaded) {
      throw UsageError("--threads: codec '" + parsed.name() +
                       "' encodes on one thread (threads are supported by qsgd, terngrad, sign)");
    }
    threads = opt.threads;
    if (threaded) {
      spec += (spec.find(':') == std::string::npos ? ":threads=" : ",threads=") +
              std::to_string(threads);
      (void)as_usage("--threads", [&] { return codec::make_codec(spec); });
    }
  } else if (spec_has_threads) {
    threads = static_cast<unsigned>(parsed.get_uint("threads", 1));
  }
  const nlohmann::json j = run_one(opt, spec, threads);
  if (opt.json) {
    std::cout << j.dump() << '\n';
  } else {
    print_table(j);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* bench = app.add_subcommand(
      "bench", "Codec encode/decode throughput next to the streaming ceiling of this machine");
  bench->add_option("--codec", opt->codec, "Codec spec, e.g. qsgd:s=7,bucket=512,norm=max")
      ->required();
  bench->add_option("--size", flags->size, "Number of float32 elements in the vector")
      ->type_name("UINT")
      ->required();
  bench
      ->add_option("--threads", opt->threads,
                   "Encode and decode threads (qsgd, terngrad, sign; a local setting, same "
                   "bytes and values)")
      ->check(CLI::Range(1U, 64U));
  bench->add_option("--reps", flags->reps, "Runs per measurement, 1 to 10^6; the best is reported")
      ->type_name("UINT");
  bench
      ->add_option("--seed", flags->seed, "Seed of the input vector and the codec's random numbers")
      ->type_name("UINT");
  bench->add_flag("--json", opt->json, "Print one JSON object instead of a table");
  bench->add_option("--simd-target", opt->simd_target,
                    "Run the kernels on this SIMD target (AVX3_DL, AVX3, AVX2, SSE4, SCALAR; one "
                    "this CPU has) instead of its best: e.g. the AVX2 kernels on an AVX-512 host");
  bench->callback([opt, flags] { run_bench(*opt, *flags); });
}

}  // namespace thinwire::cli
