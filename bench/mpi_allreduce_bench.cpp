// OpenMPI's uncompressed MPI_Allreduce against thinwire's compressed all-reduce, measured in the
// same run on the same ranks. Meant to run across experiments/netlab namespaces, where the link
// is a real rate-limited one (SPEC §4, NETLAB.md):
//
//   experiments/netlab/netlab run 2 --rate 100mbit --
//       build/release/bench/thinwire_mpi_allreduce_bench --mib 16 --reps 5
//       --codec identity --codec qsgd:s=7,bucket=512,norm=max      (one command line)
//
// Every timing is the median over --reps repetitions after one warm-up, of the slowest rank
// (each repetition starts after a barrier and ends with an MPI_Allreduce(MAX) of the elapsed
// times). thinwire's time includes encoding, sending, decoding and accumulating. Rank 0 prints a
// table and, with --json, one JSON object per row.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/comm/mpi.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace {

struct Options {
  double mib = 16;
  int reps = 5;
  std::string algorithm = "allgather";
  std::vector<std::string> codecs;
  bool json = false;
};

[[noreturn]] void usage(const std::string& problem) {
  throw thinwire::InvalidArgument(problem +
                                  "\nusage: thinwire_mpi_allreduce_bench [--mib M] [--reps R] "
                                  "[--algorithm allgather|ring] [--codec SPEC]... [--json]");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--mib") {
      o.mib = thinwire::parse_double(value(), "--mib");
    } else if (arg == "--reps") {
      o.reps = static_cast<int>(thinwire::parse_int(value(), "--reps"));
    } else if (arg == "--algorithm") {
      o.algorithm = value();
    } else if (arg == "--codec") {
      o.codecs.push_back(value());
    } else if (arg == "--json") {
      o.json = true;
    } else {
      usage("unknown argument '" + arg + "'");
    }
  }
  if (o.mib <= 0 || o.reps < 1) usage("--mib and --reps must be positive");
  if (o.codecs.empty()) o.codecs = {"identity", "qsgd:s=7,bucket=512,norm=max"};
  return o;
}

// Slowest rank's elapsed time for one repetition of `body`.
template <typename Body>
double time_slowest(Body&& body) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  body();
  double elapsed = MPI_Wtime() - start;
  double slowest = 0;
  MPI_Allreduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

template <typename Body>
double median_seconds(int reps, Body&& body) {
  (void)time_slowest(body);  // warm-up: connections, page faults
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) times.push_back(time_slowest(body));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void print_row(const Options& o, int size, const std::string& name, double seconds,
               double bytes_per_rank, double baseline, std::size_t d) {
  const double gbit = 8.0 * bytes_per_rank / seconds / 1e9;
  std::printf("%-40s %10.4f s %14.0f B %9.2f Gbit/s %8.2fx\n", name.c_str(), seconds,
              bytes_per_rank, gbit, baseline / seconds);
  if (o.json) {
    std::printf(
        "{\"name\":\"%s\",\"ranks\":%d,\"elements\":%zu,\"seconds\":%.6f,"
        "\"bytes_sent_per_rank\":%.0f,\"speedup_vs_mpi_allreduce\":%.4f}\n",
        name.c_str(), size, d, seconds, bytes_per_rank, baseline / seconds);
  }
}

int run(int argc, char** argv, int rank, int size) {
  const Options o = parse(argc, argv);
  const auto d = static_cast<std::size_t>(o.mib * 1048576.0 / 4.0);
  // A gradient-like input: Gaussian with a rank-dependent offset, fixed by the seed.
  std::vector<float> input(d);
  thinwire::RngStream rng(
      thinwire::RngKey::make(1, static_cast<std::uint64_t>(rank), 0, thinwire::RngPurpose::kTest));
  for (float& x : input) x = static_cast<float>(0.01 * rng.next_normal());
  std::vector<float> work(d);
  std::vector<float> result(d);

  const double mpi_seconds = median_seconds(o.reps, [&] {
    MPI_Allreduce(input.data(), result.data(), static_cast<int>(d), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
  });
  // Ring all-reduce sends 2(M-1)/M of the data per rank; MPI picks its own algorithm, so this is
  // the bandwidth-optimal lower bound on what it sends.
  const double mpi_bytes = 2.0 * (size - 1) / size * 4.0 * static_cast<double>(d);
  if (rank == 0) {
    std::printf("%d ranks, %zu float32 (%.1f MiB), median of %d, slowest rank\n", size, d, o.mib,
                o.reps);
    print_row(o, size, "MPI_Allreduce (fp32)", mpi_seconds, mpi_bytes, mpi_seconds, d);
  }

  thinwire::comm::MpiTransport transport;
  thinwire::collective::AllreduceOptions options;
  options.algorithm = thinwire::collective::parse_allreduce_algorithm(o.algorithm);
  options.reduction = thinwire::collective::Reduction::kSum;
  for (const std::string& spec : o.codecs) {
    const auto codec = thinwire::codec::make_codec(spec);
    thinwire::collective::Result last;
    std::uint64_t iteration = 0;
    const double seconds = median_seconds(o.reps, [&] {
      std::copy(input.begin(), input.end(), work.begin());
      options.iteration = iteration++;
      last = thinwire::collective::allreduce(transport, work, *codec, options);
    });
    if (rank == 0) {
      print_row(o, size, "thinwire " + o.algorithm + " " + spec, seconds,
                static_cast<double>(last.bytes_sent), mpi_seconds, d);
    }
  }
  transport.flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  thinwire::comm::MpiSession session(&argc, &argv);
  try {
    return run(argc, argv, session.rank(), session.size());
  } catch (const std::exception& e) {
    thinwire::comm::abort_world(e);
  }
}
