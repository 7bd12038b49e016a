// A compressed all-reduce across four ranks of the embedded threads backend: every rank holds its
// own vector, and after the call every rank holds the same estimate of their average. The
// simulated link (100 Mbit/s, 50 us) gives each rank a clock, so the time the messages would take
// on that link is known without a network.
//
//   ./threads_allreduce
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "thinwire/thinwire.hpp"

int main() {
  namespace tw = thinwire;
  constexpr int kRanks = 4;
  constexpr std::size_t kDim = 100000;
  const auto qsgd = tw::codec::make_codec("qsgd:s=15,bucket=512,norm=max,coding=packed");

  tw::comm::ThreadsWorldOptions world;
  world.size = kRanks;
  world.link = tw::comm::LinkModel::parse("bandwidth=100Mbit,latency=50us");
  std::mutex print;
  try {
    tw::comm::run_threads_world(world, [&](tw::comm::Transport& transport) {
      const int rank = transport.rank();
      // Rank r holds x_i = sin(i + r); the exact average is known in closed form.
      std::vector<float> x(kDim);
      for (std::size_t i = 0; i < kDim; ++i) x[i] = std::sin(static_cast<float>(i + rank));
      const tw::collective::Result sent = tw::collective::allreduce(
          transport, x, *qsgd, {.algorithm = tw::collective::AllreduceAlgorithm::kRing, .seed = 1});
      double err2 = 0.0;
      double norm2 = 0.0;
      for (std::size_t i = 0; i < kDim; ++i) {
        double mean = 0.0;
        for (int r = 0; r < kRanks; ++r) mean += std::sin(static_cast<double>(i + r));
        mean /= kRanks;
        err2 += (x[i] - mean) * (x[i] - mean);
        norm2 += mean * mean;
      }
      const std::scoped_lock lock(print);
      std::printf(
          "rank %d: sent %llu bytes in %llu messages, %.2f ms on the simulated link, "
          "relative error of the average %.3g\n",
          rank, static_cast<unsigned long long>(sent.bytes_sent),
          static_cast<unsigned long long>(sent.messages_sent), 1e3 * sent.seconds,
          std::sqrt(err2 / norm2));
      // 4-bit QSGD keeps the average within 10 % (a check, so that the example doubles as a test).
      if (!(err2 < 0.01 * norm2)) throw std::runtime_error("the average is off");
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
