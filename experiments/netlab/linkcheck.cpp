// linkcheck — what an MPI job actually gets from a netlab link.
//
// Plain MPI (no thinwire code), built by `netlab` with mpicxx. It measures, between the ranks that
// `netlab run` places one per network namespace:
//   * MPI_Allreduce (float32, sum) of 1, 4 and 16 MiB buffers (configurable);
//   * a one-way MPI_Send from rank 0 to rank 1;
//   * a ring shift, every rank sending to rank+1 while receiving from rank-1 (both directions of
//     every host's link busy at once; with two ranks this is a simultaneous 0<->1 exchange);
//   * an incast, every other rank sending to rank 0 at once (rate = all bits rank 0 receives);
//   * the half round trip of a 1-byte ping-pong between ranks 0 and 1 on the idle link;
//   * one step of a ring of 1-byte messages with every rank taking part.
// and prints a table of achieved Mbit/s against the configured link rate (NETLAB_RATE_BPS, which
// `netlab` passes with -x, or --rate-mbit).
//
// Achieved rate of an all-reduce counts the bytes each rank must send at least: 2(P-1)/P times the
// buffer (the ring algorithm's volume, which is optimal for bandwidth; Patarasuk & Yuan 2009), so
// the percentage is the efficiency against the best possible algorithm on that link. Note that tbf
// meters whole Ethernet frames: TCP over a 1500-byte MTU carries at most 1448/1514 = 95.6 % of the
// configured rate as payload, the ceiling for every row.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Options {
  std::vector<double> sizes_mib{1.0, 4.0, 16.0};
  double send_mib = 16.0;
  int reps = 3;
  double configured_bps = 0.0;  // 0: unknown, percentages are not printed
};

struct Row {
  std::string op;
  double mib = 0.0;
  double bits_per_rank = 0.0;  // payload bits the busiest rank sends in one repetition
  double t_median = 0.0;
  double t_min = 0.0;
};

constexpr double kMiB = 1024.0 * 1024.0;

[[noreturn]] void usage_error(const std::string& what) { throw std::invalid_argument(what); }

double parse_positive(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    usage_error(flag + ": expected a number, got '" + text + "'");
  }
  if (used != text.size() || !(value > 0.0)) {
    usage_error(flag + ": expected a positive number, got '" + text + "'");
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options opt;
  if (const char* env = std::getenv("NETLAB_RATE_BPS"); env != nullptr && *env != '\0') {
    opt.configured_bps = parse_positive("NETLAB_RATE_BPS", env);
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + ": missing value");
      return argv[++i];
    };
    if (arg == "--sizes") {
      opt.sizes_mib.clear();
      const std::string list = value();
      std::size_t start = 0;
      while (start <= list.size()) {
        const std::size_t comma = std::min(list.find(',', start), list.size());
        opt.sizes_mib.push_back(parse_positive("--sizes", list.substr(start, comma - start)));
        start = comma + 1;
      }
    } else if (arg == "--send-mib") {
      opt.send_mib = parse_positive(arg, value());
    } else if (arg == "--reps") {
      opt.reps = static_cast<int>(parse_positive(arg, value()));
      if (opt.reps < 1 || opt.reps > 1000) usage_error("--reps: expected 1..1000");
    } else if (arg == "--rate-mbit") {
      opt.configured_bps = parse_positive(arg, value()) * 1e6;
    } else if (arg == "--help" || arg == "-h") {
      usage_error(
          "usage: linkcheck [--sizes MiB,MiB,...] [--send-mib MiB] [--reps N] [--rate-mbit R]");
    } else {
      usage_error("unknown argument '" + arg + "'");
    }
  }
  return opt;
}

std::size_t elements_for(double mib) {
  return static_cast<std::size_t>(mib * kMiB / sizeof(float));
}

// Runs `body` reps times between barriers; each repetition's time is the slowest rank's.
template <typename Body>
Row time_op(const std::string& op, double mib, double bits_per_rank, int reps, Body&& body) {
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    body();
    double local = MPI_Wtime() - t0;
    double slowest = 0.0;
    MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    times.push_back(slowest);
  }
  std::sort(times.begin(), times.end());
  return Row{op, mib, bits_per_rank, times[times.size() / 2], times.front()};
}

// The 1-minute load average: ranks, softirq shaping and other jobs share this machine's cores,
// so a table is only comparable to another taken at a similar load.
std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  char buf[32] = {};
  const bool ok = std::fscanf(f, "%31s", buf) == 1;
  std::fclose(f);
  return ok ? buf : "?";
}

// Half the round trip of a 1-byte message between ranks 0 and 1 on an idle link over kPings
// round trips: the alpha of the alpha + bytes/beta link model (netns has no propagation delay, so
// this is software and scheduling cost only). The median is the typical message; the mean is what
// a sum over many messages costs per message, and on a loaded machine the two differ by the
// scheduling delays of the tail (experiments/netlab_validation uses the mean).
constexpr int kPings = 200;
struct HalfRtt {
  double median = 0.0;
  double mean = 0.0;
};
HalfRtt ping_pong_half_rtt(int rank) {
  char byte = 0;
  std::vector<double> samples;
  for (int i = 0; i < kPings; ++i) {
    const double t0 = MPI_Wtime();
    if (rank == 0) {
      MPI_Send(&byte, 1, MPI_CHAR, 1, 5, MPI_COMM_WORLD);
      MPI_Recv(&byte, 1, MPI_CHAR, 1, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(&byte, 1, MPI_CHAR, 0, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(&byte, 1, MPI_CHAR, 0, 5, MPI_COMM_WORLD);
    }
    samples.push_back((MPI_Wtime() - t0) / 2.0);
  }
  std::sort(samples.begin(), samples.end());
  double sum = 0.0;
  for (const double x : samples) sum += x;
  return {samples[samples.size() / 2], sum / static_cast<double>(samples.size())};
}

// One step of a ring of 1-byte messages with every rank taking part (each sends to rank + 1 and
// receives from rank - 1), kPings steps in a row: the per-message cost of a ring collective's
// step when all ranks poll at once. Where ranks outnumber cores it includes the wait for a
// descheduled neighbour, which the two-rank ping-pong on an otherwise idle lab does not see.
HalfRtt ring_step(int rank, int size) {
  char out = 1;
  char in = 0;
  const int next = (rank + 1) % size;
  const int prev = (rank + size - 1) % size;
  std::vector<double> samples;
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < kPings; ++i) {
    const double t0 = MPI_Wtime();
    MPI_Sendrecv(&out, 1, MPI_CHAR, next, 6, &in, 1, MPI_CHAR, prev, 6, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    samples.push_back(MPI_Wtime() - t0);
  }
  std::sort(samples.begin(), samples.end());
  double sum = 0.0;
  for (const double x : samples) sum += x;
  return {samples[samples.size() / 2], sum / static_cast<double>(samples.size())};
}

void print_table(const std::vector<Row>& rows, int size, const Options& opt,
                 const std::string& load_before, HalfRtt half_rtt, HalfRtt ring) {
  char rate[64] = "unknown (set NETLAB_RATE_BPS or --rate-mbit)";
  if (opt.configured_bps > 0.0) {
    std::snprintf(rate, sizeof rate, "%.6g Mbit/s", opt.configured_bps / 1e6);
  }
  std::printf(
      "linkcheck: %d ranks, configured link %s, float32, %d timed repetitions each, load average "
      "%s -> %s\n",
      size, rate, opt.reps, load_before.c_str(), load_average().c_str());
  std::printf("%-22s %9s %11s %11s %11s %9s\n", "op", "MiB", "median_s", "min_s", "Mbit/s",
              "%config");
  for (const Row& row : rows) {
    const double mbit = row.bits_per_rank / row.t_median / 1e6;
    std::printf("%-22s %9.2f %11.4f %11.4f %11.2f", row.op.c_str(), row.mib, row.t_median,
                row.t_min, mbit);
    if (opt.configured_bps > 0.0) {
      std::printf(" %8.1f%%\n", 100.0 * mbit * 1e6 / opt.configured_bps);
    } else {
      std::printf(" %9s\n", "-");
    }
  }
  std::printf("ping-pong 1 B, idle link: half round trip %.1f us (median of %d), mean %.1f us\n",
              half_rtt.median * 1e6, kPings, half_rtt.mean * 1e6);
  std::printf("ring step 1 B, all ranks: %.1f us (median of %d), mean %.1f us\n", ring.median * 1e6,
              kPings, ring.mean * 1e6);
  std::fflush(stdout);
}

int run(int rank, int size, const Options& opt) {
  const std::string load_before = rank == 0 ? load_average() : std::string();
  // Warm-up: open every TCP connection (btl_tcp opens them lazily) before anything is timed.
  std::vector<char> small_out(static_cast<std::size_t>(size) * 1024, 1);
  std::vector<char> small_in(small_out.size());
  MPI_Alltoall(small_out.data(), 1024, MPI_CHAR, small_in.data(), 1024, MPI_CHAR, MPI_COMM_WORLD);

  const HalfRtt half_rtt = ping_pong_half_rtt(rank);
  const HalfRtt ring = ring_step(rank, size);

  std::vector<Row> rows;
  bool correct = true;
  const double ring_factor = 2.0 * (size - 1) / size;  // bytes per rank / buffer bytes (ring)
  for (const double mib : opt.sizes_mib) {
    const std::size_t n = elements_for(mib);
    std::vector<float> in(n, static_cast<float>(rank + 1));
    std::vector<float> out(n, 0.0f);
    const int count = static_cast<int>(n);
    Row row = time_op("allreduce", mib, ring_factor * static_cast<double>(n) * 32.0, opt.reps, [&] {
      MPI_Allreduce(in.data(), out.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    // Sum of 1..size is an exact small integer in float32.
    const float expected = static_cast<float>(size) * static_cast<float>(size + 1) / 2.0f;
    correct =
        correct && std::all_of(out.begin(), out.end(), [&](float v) { return v == expected; });
    rows.push_back(row);
  }

  const std::size_t send_bytes = static_cast<std::size_t>(opt.send_mib * kMiB);
  const int send_count = static_cast<int>(send_bytes);
  std::vector<char> send_buf(send_bytes, 7);
  std::vector<char> recv_buf(send_bytes, 0);
  char ack = 0;
  // One way: rank 1 acknowledges with one byte once the whole message is in, so rank 0's time
  // covers delivery, not only the hand-off to the kernel.
  rows.push_back(
      time_op("send 0->1", opt.send_mib, static_cast<double>(send_bytes) * 8.0, opt.reps, [&] {
        if (rank == 0) {
          MPI_Send(send_buf.data(), send_count, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
          MPI_Recv(&ack, 1, MPI_CHAR, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
          MPI_Recv(recv_buf.data(), send_count, MPI_CHAR, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send(&ack, 1, MPI_CHAR, 0, 2, MPI_COMM_WORLD);
        }
      }));
  correct = correct && (rank != 1 || recv_buf.front() == 7);

  const int next = (rank + 1) % size;
  const int prev = (rank + size - 1) % size;
  rows.push_back(time_op(
      "ring shift (each way)", opt.send_mib, static_cast<double>(send_bytes) * 8.0, opt.reps, [&] {
        MPI_Sendrecv(send_buf.data(), send_count, MPI_CHAR, next, 3, recv_buf.data(), send_count,
                     MPI_CHAR, prev, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }));

  // Incast: every other rank sends to rank 0 at once. Rank 0's download is shaped by the switch
  // port toward it (netlab's default), so this row should reach about the configured rate at
  // any P; with --host-egress-only it reaches up to (P-1) times that.
  std::vector<std::vector<char>> incast_bufs(rank == 0 ? static_cast<std::size_t>(size - 1) : 0);
  for (auto& buf : incast_bufs) buf.assign(send_bytes, 0);
  std::vector<MPI_Request> requests(incast_bufs.size());
  rows.push_back(time_op("incast all->0", opt.send_mib,
                         static_cast<double>(send_bytes) * 8.0 * (size - 1), opt.reps, [&] {
                           if (rank == 0) {
                             for (int r = 1; r < size; ++r) {
                               const auto k = static_cast<std::size_t>(r - 1);
                               MPI_Irecv(incast_bufs[k].data(), send_count, MPI_CHAR, r, 4,
                                         MPI_COMM_WORLD, &requests[k]);
                             }
                             MPI_Waitall(size - 1, requests.data(), MPI_STATUSES_IGNORE);
                           } else {
                             MPI_Send(send_buf.data(), send_count, MPI_CHAR, 0, 4, MPI_COMM_WORLD);
                           }
                         }));
  for (const auto& buf : incast_bufs) correct = correct && buf.back() == 7;

  int all_correct = correct ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &all_correct, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rank == 0) {
    print_table(rows, size, opt, load_before, half_rtt, ring);
    if (all_correct == 0) std::fprintf(stderr, "error: linkcheck: wrong all-reduce result\n");
  }
  return all_correct != 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int status = 0;
  try {
    const Options opt = parse_options(argc, argv);
    for (const double mib : opt.sizes_mib) {
      if (mib * kMiB / sizeof(float) > 2147483647.0 || opt.send_mib * kMiB > 2147483647.0) {
        usage_error("buffer sizes must stay below 2 GiB (MPI int counts)");
      }
    }
    if (size < 2) usage_error("needs at least 2 ranks");
    status = run(rank, size, opt);
  } catch (const std::invalid_argument& e) {
    // Every rank parses the same arguments, so all of them stop here together.
    if (rank == 0) std::fprintf(stderr, "error: linkcheck: %s\n", e.what());
    status = 2;
  }
  MPI_Finalize();
  return status;
}
