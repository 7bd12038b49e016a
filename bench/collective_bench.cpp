// Compressed all-reduce on the threads backend: M = 4 ranks, d = 2^20 floats, a 100 Mbit/s link
// (50 µs latency) driving the simulated clock.
//
// Counters (averaged over iterations):
//   sim_s           simulated seconds of the slowest rank: its measured encode/decode CPU time
//                   plus the link model's cost of its messages (comm/threads.hpp)
//   link_s          the same with compute not counted: the link model alone
//   wall_s          wall seconds of the slowest rank inside the collective (2 cores shared by 4
//                   ranks here, so compute-heavy codecs read slower than on real nodes)
//   bytes_per_rank  bytes one rank sends, headers included (mean over ranks)
//   bits_per_elem   8·bytes_per_rank / d
// The benchmark's own time also includes starting the 4 threads and copying the inputs.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/comm/link_model.hpp"
#include "thinwire/comm/threads.hpp"
#include "thinwire/core/rng.hpp"

namespace {

using namespace thinwire;

constexpr int kRanks = 4;
constexpr std::size_t kElements = std::size_t{1} << 20;
const char* const kCodecs[] = {"identity", "qsgd:s=7,coding=packed", "topk:k=0.01"};

std::vector<std::vector<float>> make_inputs() {
  std::vector<std::vector<float>> inputs(kRanks);
  for (int r = 0; r < kRanks; ++r) {
    RngStream rng(RngKey::make(1, static_cast<std::uint64_t>(r), 0, RngPurpose::kTest));
    inputs[static_cast<std::size_t>(r)].resize(kElements);
    for (float& x : inputs[static_cast<std::size_t>(r)]) x = static_cast<float>(rng.next_normal());
  }
  return inputs;
}

struct RankStats {
  double sim_s = 0;
  double wall_s = 0;
  std::uint64_t bytes = 0;
};

// One all-reduce on a fresh world; per-rank results.
std::vector<RankStats> run_once(const std::vector<std::vector<float>>& inputs,
                                const codec::Codec& codec, collective::AllreduceAlgorithm algorithm,
                                bool count_compute, std::uint64_t iteration) {
  std::vector<RankStats> stats(kRanks);
  comm::ThreadsWorldOptions options;
  options.size = kRanks;
  options.link = comm::LinkModel::parse("bandwidth=100Mbit,latency=50us");
  options.count_compute = count_compute;
  comm::run_threads_world(options, [&](comm::Transport& t) {
    const auto r = static_cast<std::size_t>(t.rank());
    std::vector<float> data = inputs[r];
    const auto start = std::chrono::steady_clock::now();
    const collective::Result result = collective::allreduce(
        t, data, codec, {.algorithm = algorithm, .seed = 7, .iteration = iteration});
    stats[r].wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats[r].sim_s = result.seconds;
    stats[r].bytes = result.bytes_sent;
    benchmark::DoNotOptimize(data.data());
  });
  return stats;
}

void BM_Allreduce(benchmark::State& state) {
  static const std::vector<std::vector<float>> inputs = make_inputs();
  const auto codec = codec::make_codec(kCodecs[state.range(0)]);
  const auto algorithm = static_cast<collective::AllreduceAlgorithm>(state.range(1));
  state.SetLabel(std::string(kCodecs[state.range(0)]) + " " +
                 std::string(collective::allreduce_algorithm_name(algorithm)));
  double sim = 0;
  double link = 0;
  double wall = 0;
  double bytes = 0;
  std::uint64_t iteration = 0;
  for (auto _ : state) {
    const auto with_compute = run_once(inputs, *codec, algorithm, true, iteration);
    state.PauseTiming();
    const auto link_only = run_once(inputs, *codec, algorithm, false, iteration);
    state.ResumeTiming();
    ++iteration;
    double slowest_sim = 0;
    double slowest_link = 0;
    double slowest_wall = 0;
    double total_bytes = 0;
    for (int r = 0; r < kRanks; ++r) {
      const auto i = static_cast<std::size_t>(r);
      slowest_sim = std::max(slowest_sim, with_compute[i].sim_s);
      slowest_link = std::max(slowest_link, link_only[i].sim_s);
      slowest_wall = std::max(slowest_wall, with_compute[i].wall_s);
      total_bytes += static_cast<double>(with_compute[i].bytes);
    }
    sim += slowest_sim;
    link += slowest_link;
    wall += slowest_wall;
    bytes += total_bytes / kRanks;
  }
  const auto avg = benchmark::Counter::kAvgIterations;
  state.counters["sim_s"] = benchmark::Counter(sim, avg);
  state.counters["link_s"] = benchmark::Counter(link, avg);
  state.counters["wall_s"] = benchmark::Counter(wall, avg);
  state.counters["bytes_per_rank"] = benchmark::Counter(bytes, avg);
  state.counters["bits_per_elem"] =
      benchmark::Counter(8 * bytes / static_cast<double>(kElements), avg);
}

BENCHMARK(BM_Allreduce)
    ->ArgNames({"codec", "algo"})
    ->ArgsProduct({{0, 1, 2},
                   {static_cast<int>(collective::AllreduceAlgorithm::kAllgather),
                    static_cast<int>(collective::AllreduceAlgorithm::kRing)}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
