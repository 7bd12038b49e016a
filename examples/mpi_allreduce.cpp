// The same compressed all-reduce over OpenMPI: one process per rank.
//
//   mpiexec -n 4 ./mpi_allreduce
#include <cmath>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <vector>

#include "thinwire/comm/mpi.hpp"
#include "thinwire/thinwire.hpp"

int main(int argc, char** argv) {
  namespace tw = thinwire;
  const tw::comm::MpiSession session(&argc, &argv);
  try {
    tw::comm::MpiTransport transport;
    const int rank = transport.rank();
    const int size = transport.size();
    constexpr std::size_t kDim = 100000;
    std::vector<float> x(kDim);
    for (std::size_t i = 0; i < kDim; ++i) x[i] = std::sin(static_cast<float>(i + rank));
    const auto qsgd = tw::codec::make_codec("qsgd:s=15,bucket=512,norm=max,coding=packed");
    const tw::collective::Result sent = tw::collective::allreduce(transport, x, *qsgd, {.seed = 1});
    double err2 = 0.0;
    double norm2 = 0.0;
    for (std::size_t i = 0; i < kDim; ++i) {
      double mean = 0.0;
      for (int r = 0; r < size; ++r) mean += std::sin(static_cast<double>(i + r));
      mean /= size;
      err2 += (x[i] - mean) * (x[i] - mean);
      norm2 += mean * mean;
    }
    std::printf("rank %d of %d: sent %llu bytes, %.3f ms, relative error of the average %.3g\n",
                rank, size, static_cast<unsigned long long>(sent.bytes_sent), 1e3 * sent.seconds,
                std::sqrt(err2 / norm2));
    if (!(err2 < 0.01 * norm2)) throw std::runtime_error("the average is off");
  } catch (const std::exception& e) {
    tw::comm::abort_world(e);
  }
  return 0;
}
