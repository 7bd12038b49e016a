// The dynamic tuner's selector against what it must stay cheap relative to (issue 6, acceptance
// 2): one full-batch gradient of the Fashion-MNIST binary logistic regression (classes 0/6,
// 12 000 rows, d = 785). The selector runs on that gradient, once per family and cost model;
// compare its time with BM_LogisticGradient (the criterion is < 10 %).
#include <benchmark/benchmark.h>

#include <memory>
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

}  // namespace

BENCHMARK_MAIN();
