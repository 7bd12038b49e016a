// Codec throughput: BM_Encode and BM_Decode for every spec in example_codec_specs() at
// d = 2^10, 2^12, ..., 2^24 (multiplier 4), and BM_MemcpyCeiling, a plain memcpy of the same
// float bytes, in the same run, so each codec reads as a fraction of what the machine can move.
//
// Counters: bytes_per_second counts the *input* float bytes (4·d per call) for both directions,
// so encode and decode rates compare directly with memcpy's; bits_per_element is the real message
// size (header included) · 8 / d.
//
// The input is gradient-like: a Gaussian scale mixture, v_i = z_i · exp(w_i / 2) with z, w ~
// N(0,1), heavy-tailed like real gradients so that sparsifiers and Elias codes see realistic value
// spreads. Stochastic codecs get a new iteration number per call (fresh random numbers, as in
// training).
//
// Extra flag (before Google Benchmark's own): --table_out=FILE writes a Markdown table (spec, d,
// encode GB/s, decode GB/s, bits/element, fractions of memcpy) for docs/results.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/rng.hpp"

namespace {

using thinwire::codec::Codec;

constexpr std::int64_t kMinSize = std::int64_t{1} << 10;
constexpr std::int64_t kMaxSize = std::int64_t{1} << 24;
constexpr int kMultiplier = 4;

const std::vector<float>& bench_input(std::size_t d) {
  static std::map<std::size_t, std::vector<float>> cache;
  auto it = cache.find(d);
  if (it != cache.end()) return it->second;
  std::vector<float> v(d);
  thinwire::RngStream rng(thinwire::RngKey::make(2024, 0, d, thinwire::RngPurpose::kTest));
  for (float& x : v) {
    const double z = rng.next_normal();
    x = static_cast<float>(z * std::exp(0.5 * rng.next_normal()));
  }
  return cache.emplace(d, std::move(v)).first->second;
}

void set_counters(benchmark::State& state, std::size_t d, std::size_t message_bytes) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * d));
  state.counters["bits_per_element"] =
      8.0 * static_cast<double>(message_bytes) / static_cast<double>(d);
}

void BM_Encode(benchmark::State& state, const std::shared_ptr<const Codec>& codec) {
  const auto d = static_cast<std::size_t>(state.range(0));
  const std::vector<float>& v = bench_input(d);
  std::vector<std::byte> out(codec->max_encoded_bytes(d));
  thinwire::codec::EncodeContext ctx{.seed = 1};
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = codec->encode_into(v, ctx, out);
    ++ctx.iteration;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, d, bytes);
}

void BM_Decode(benchmark::State& state, const std::shared_ptr<const Codec>& codec) {
  const auto d = static_cast<std::size_t>(state.range(0));
  const std::vector<std::byte> message = codec->encode(bench_input(d), {.seed = 1});
  std::vector<float> out(d);
  for (auto _ : state) {
    thinwire::codec::decode(message, out, thinwire::codec::DecodeMode::kOverwrite);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, d, message.size());
}

void BM_MemcpyCeiling(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0));
  const std::vector<float>& src = bench_input(d);
  std::vector<float> dst(d);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), 4 * d);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(4 * d));
}

// Console output as usual, plus the Markdown table for docs/results.md at the end.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  explicit TableReporter(std::string path)
      : benchmark::ConsoleReporter(OO_Tabular), path_(std::move(path)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      const std::string& name = run.run_name.function_name;
      const std::int64_t d = std::stoll(run.run_name.args);
      const auto rate = run.counters.find("bytes_per_second");
      if (rate == run.counters.end()) continue;
      if (name == "BM_MemcpyCeiling") {
        memcpy_[d] = rate->second.value;
        continue;
      }
      const bool encode = name.starts_with("BM_Encode/");
      const std::string spec = name.substr(name.find('/') + 1);
      if (!rows_.contains(spec)) order_.push_back(spec);
      Cell& cell = rows_[spec][d];
      (encode ? cell.encode : cell.decode) = rate->second.value;
      cell.bits = run.counters.at("bits_per_element").value;
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    if (path_.empty()) return;
    std::ofstream out(path_);
    out << "| spec | d | encode GB/s | decode GB/s | bits/element | encode / memcpy | "
           "decode / memcpy |\n|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& [d, rate] : memcpy_) {
      out << "| memcpy (ceiling) | 2^" << log2(d) << " | " << fixed(rate / 1e9, 2) << " | "
          << fixed(rate / 1e9, 2) << " | 32 | 1 | 1 |\n";
    }
    for (const std::string& spec : order_) {
      for (const auto& [d, cell] : rows_[spec]) {
        const double ceiling = memcpy_.contains(d) ? memcpy_[d] : 0.0;
        out << "| `" << spec << "` | 2^" << log2(d) << " | " << fixed(cell.encode / 1e9, 2) << " | "
            << fixed(cell.decode / 1e9, 2) << " | " << fixed(cell.bits, 3) << " | "
            << (ceiling > 0 ? fixed(cell.encode / ceiling, 3) : "-") << " | "
            << (ceiling > 0 ? fixed(cell.decode / ceiling, 3) : "-") << " |\n";
      }
    }
  }

 private:
  struct Cell {
    double encode = 0;
    double decode = 0;
    double bits = 0;
  };
  static int log2(std::int64_t d) {
    int k = 0;
    while ((std::int64_t{1} << (k + 1)) <= d) ++k;
    return k;
  }
  static std::string fixed(double x, int digits) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(digits);
    s << x;
    return s.str();
  }

  std::string path_;
  std::vector<std::string> order_;
  std::map<std::string, std::map<std::int64_t, Cell>> rows_;
  std::map<std::int64_t, double> memcpy_;
};

void apply_sizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(kMultiplier)->Range(kMinSize, kMaxSize);
}

}  // namespace

int main(int argc, char** argv) {
  // Take --table_out=FILE out of argv before Google Benchmark sees it.
  std::string table_out;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("--table_out=")) {
      table_out = arg.substr(std::strlen("--table_out="));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  apply_sizes(benchmark::RegisterBenchmark("BM_MemcpyCeiling", BM_MemcpyCeiling));
  std::vector<std::string> seen;
  for (const std::string& example : thinwire::codec::example_codec_specs()) {
    // Error feedback wraps a codec; the codec's own speed is what is measured here.
    const std::shared_ptr<const Codec> codec = thinwire::codec::parse_codec(example).codec;
    const std::string spec = example.substr(0, example.find('+'));
    if (std::find(seen.begin(), seen.end(), spec) != seen.end()) continue;
    seen.push_back(spec);
    apply_sizes(benchmark::RegisterBenchmark(("BM_Encode/" + spec).c_str(), BM_Encode, codec));
    apply_sizes(benchmark::RegisterBenchmark(("BM_Decode/" + spec).c_str(), BM_Decode, codec));
  }

  TableReporter reporter(table_out);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
