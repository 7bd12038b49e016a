// The dynamic tuner's selector against what it must stay cheap relative to (issue 6, acceptance
// 2): one full-batch gradient of the Fashion-MNIST binary logistic regression (classes 0/6,
// 12 000 rows, d = 785). The selector runs on that gradient, once per family and cost model;
// compare its time with BM_LogisticGradient (the criterion is < 10 %).
//
// The cost of a dynamic decision against one memcpy of the same vector (issue 18, acceptance 3):
// BM_Memcpy/d copies d floats, BM_Decide/family/d runs the dynamic selector (cost model "bits",
// QSGD s = 16 bucket = 512 packed, top-k Elias indices) on a synthetic gradient of d elements;
// bench/decision_cost.py runs both with repetitions and prints the median ratio.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "thinwire/data/load.hpp"
#include "thinwire/problem/problem.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/selector.hpp"

namespace {

struct Setup {
  thinwire::data::TrainTest data;
  std::unique_ptr<thinwire::problem::Problem> problem;
  std::vector<float> params;
  std::vector<float> grad;
};

Setup& setup() {
  static Setup s = [] {
    Setup out;
    out.data = thinwire::data::load_dataset("fashion-mnist:classes=0/6");
    out.problem = thinwire::problem::make_problem("logistic:lambda=1e-3", out.data.train);
    out.params.assign(out.problem->dim(), 0.01f);
    out.grad.assign(out.problem->dim(), 0.0f);
    (void)out.problem->loss_and_gradient(out.params, thinwire::data::Batch::all(out.data.train),
                                         out.grad);
    return out;
  }();
  return s;
}

void BM_LogisticGradient(benchmark::State& state) {
  Setup& s = setup();
  const auto batch = thinwire::data::Batch::all(s.data.train);
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.problem->loss_and_gradient(s.params, batch, s.grad));
  }
  state.counters["d"] = static_cast<double>(s.grad.size());
  state.counters["rows"] = static_cast<double>(batch.size());
}
BENCHMARK(BM_LogisticGradient)->Unit(benchmark::kMicrosecond);

const char* const kCosts[] = {"bits", "linear:latency=50us,bandwidth=100Mbit",
                              "packet:payload=1460B", "energy"};

void BM_Select(benchmark::State& state) {
  Setup& s = setup();
  const auto family = static_cast<thinwire::tune::Family>(state.range(0));
  const auto cost = thinwire::tune::make_cost_model(kCosts[state.range(1)]);
  const thinwire::tune::SelectorOptions options{.qsgd = {.levels = 16, .bucket = 512}};
  for (auto _ : state) {
    benchmark::DoNotOptimize(thinwire::tune::select_level(family, s.grad, *cost, options));
  }
  state.SetLabel(std::string(thinwire::tune::family_name(family)) + " / " + kCosts[state.range(1)]);
}
BENCHMARK(BM_Select)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMicrosecond);

// A synthetic gradient: Gaussian entries scaled by 2^(4u), u uniform in [0, 1) (a moderately
// heavy tail, like tests/unit/tune's inputs), from a fixed seed.
const std::vector<float>& synthetic_gradient(std::size_t d) {
  static std::vector<std::vector<float>> cache;
  for (const auto& v : cache) {
    if (v.size() == d) return v;
  }
  std::mt19937_64 rng(18);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> uniform;
  std::vector<float> v(d);
  for (float& x : v) x = normal(rng) * std::exp2(4.0f * uniform(rng));
  cache.push_back(std::move(v));
  return cache.back();
}

void BM_Memcpy(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0));
  const std::vector<float>& v = synthetic_gradient(d);
  std::vector<float> out(d, 1.0f);
  for (auto _ : state) {
    std::memcpy(out.data(), v.data(), d * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(d * sizeof(float)));
}
BENCHMARK(BM_Memcpy)->Arg(1 << 20)->Arg(1 << 24)->Unit(benchmark::kMicrosecond);

void BM_Decide(benchmark::State& state) {
  const auto family = static_cast<thinwire::tune::Family>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const std::vector<float>& v = synthetic_gradient(d);
  const auto cost = thinwire::tune::make_cost_model("bits");
  const thinwire::tune::SelectorOptions options{.qsgd = {.levels = 16, .bucket = 512}};
  thinwire::tune::Choice c;
  for (auto _ : state) {
    c = thinwire::tune::select_level(family, v, *cost, options);
    benchmark::DoNotOptimize(c);
  }
  state.SetLabel(c.codec_spec(options));
}
BENCHMARK(BM_Decide)
    ->ArgsProduct({{static_cast<int>(thinwire::tune::Family::kQsgd),
                    static_cast<int>(thinwire::tune::Family::kTopK)},
                   {1 << 20, 1 << 24}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
