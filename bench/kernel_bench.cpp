// Kernel throughput for issue 7: best-of-N wall time of encode and decode (overwrite and
// accumulate) for codec specs given on the command line, at given sizes, next to a memcpy
// ceiling; plus exact top-k selection against
// std::nth_element. Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time, so
// that time slices lost to other processes on a shared machine do not count; every figure is the
// best of --reps runs. Memory bandwidth is still shared, so figures are lower bounds.
//
// --spawn=N: the cost of handing one part of an encode to a second thread, the pool of
// src/codec/parallel.hpp against a std::jthread started and joined per call (mean of N calls with
// an empty part each, wall clock), which decided the pool.
//
// Usage: thinwire_kernel_bench [--reps=N] [--sizes=22,24] [--topk=10000000] [--spawn=N] spec...
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "parallel.hpp"
#include "thinwire/codec/codec.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/codec/select.hpp"
#include "thinwire/core/rng.hpp"

namespace {

std::vector<float> make_input(std::size_t d) {
  std::vector<float> v(d);
  const thinwire::RngKey key = thinwire::RngKey::make(2024, 0, d, thinwire::RngPurpose::kTest);
  for (std::size_t i = 0; i < d; ++i) {
    // Cheap heavy-tailed data: a uniform in (-1, 1) times 2^(uniform·8 - 4).
    const double u = 2.0 * key.uniform_double(2 * i) - 1.0;
    v[i] = static_cast<float>(u * std::exp2(8.0 * key.uniform_double(2 * i + 1) - 4.0));
  }
  return v;
}

double best_seconds(int reps, const std::function<void()>& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    timespec t0{};
    timespec t1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    f();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    best = std::min(best, static_cast<double>(t1.tv_sec - t0.tv_sec) +
                              1e-9 * static_cast<double>(t1.tv_nsec - t0.tv_nsec));
  }
  return best;
}

// Mean wall time of one two-part region with empty parts, pool or std::jthread per call.
void spawn_costs(int calls) {
  using thinwire::codec::parallel::run_parts_spawned;
  using thinwire::codec::parallel::try_run_parts;
  std::atomic<std::uint64_t> sink{0};
  const std::function<void(std::size_t)> part = [&](std::size_t p) { sink += p; };
  const auto mean_us = [&](const std::function<void()>& f) {
    f();  // warm-up (starts the pool's worker)
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; ++c) f();
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / calls;
  };
  const double pool = mean_us([&] { (void)try_run_parts(2, part); });
  const double spawned = mean_us([&] { run_parts_spawned(2, part); });
  std::printf("two-part region, empty parts, mean of %d: pool %.2f us, jthread per call %.2f us\n",
              calls, pool, spawned);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  std::vector<int> sizes = {22, 24};
  std::size_t topk_d = 10'000'000;
  std::vector<std::string> specs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.starts_with("--reps=")) {
      reps = std::stoi(a.substr(7));
    } else if (a.starts_with("--sizes=")) {
      sizes.clear();
      std::string rest = a.substr(8);
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        sizes.push_back(std::stoi(rest.substr(0, comma)));
        rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
      }
    } else if (a.starts_with("--spawn=")) {
      spawn_costs(std::stoi(a.substr(8)));
    } else if (a.starts_with("--topk=")) {
      topk_d = std::stoull(a.substr(7));
    } else {
      specs.push_back(a);
    }
  }
  std::printf(
      "| spec | d | encode Gel/s | decode Gel/s | accumulate Gel/s | bits/el | "
      "enc/ceil | dec/ceil |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int lg : sizes) {
    const std::size_t d = std::size_t{1} << lg;
    const std::vector<float> v = make_input(d);
    const auto dd = static_cast<double>(d);
    std::vector<float> out(d);
    const double t_memcpy = best_seconds(reps, [&] { std::memcpy(out.data(), v.data(), 4 * d); });
    std::printf("| memcpy | 2^%d | %.2f | %.2f | | 32 | 1 | 1 |\n", lg, dd / t_memcpy / 1e9,
                dd / t_memcpy / 1e9);
    for (const std::string& spec : specs) {
      const auto codec = thinwire::codec::parse_codec(spec).codec;
      std::vector<std::byte> msg(codec->max_encoded_bytes(d));
      std::size_t n = 0;
      std::uint64_t it = 0;
      const double te = best_seconds(
          reps, [&] { n = codec->encode_into(v, {.seed = 1, .rank = 0, .iteration = it++}, msg); });
      const std::span<const std::byte> m(msg.data(), n);
      const double td = best_seconds(
          reps, [&] { thinwire::codec::decode(m, out, thinwire::codec::DecodeMode::kOverwrite); });
      const double ta = best_seconds(
          reps, [&] { thinwire::codec::decode(m, out, thinwire::codec::DecodeMode::kAccumulate); });
      std::printf("| `%s` | 2^%d | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f |\n", spec.c_str(), lg,
                  dd / te / 1e9, dd / td / 1e9, dd / ta / 1e9, 8.0 * static_cast<double>(n) / dd,
                  t_memcpy / te, t_memcpy / td);
    }
  }
  if (topk_d > 0) {
    const std::vector<float> v = make_input(topk_d);
    const std::size_t k = topk_d / 100;
    std::vector<std::uint32_t> idx;
    const double ts = best_seconds(reps, [&] { thinwire::codec::select_top_k(v, k, idx); });
    std::vector<float> mags(topk_d);
    const double tn = best_seconds(reps, [&] {
      for (std::size_t i = 0; i < topk_d; ++i) mags[i] = std::fabs(v[i]);
      std::nth_element(mags.begin(), mags.begin() + static_cast<std::ptrdiff_t>(k - 1), mags.end(),
                       std::greater<>());
    });
    std::printf(
        "\ntop-k 1%% of %zu floats: select_top_k %.2f ms, std::nth_element %.2f ms "
        "(%.1fx)\n",
        topk_d, ts * 1e3, tn * 1e3, tn / ts);
  }
  return 0;
}
