// A training loop of your own on top of thinwire: four thread ranks fit one least-squares model,
// each on its own shard. Every iteration a rank computes its gradient g, the dynamic tuner picks
// the top-k level for e + g (e the rank's error-feedback residual) that maximizes the predicted
// improvement per bit, and a compressed all-reduce averages the messages; what a message leaves
// out stays in e for the next one.
//
//   ./training_loop
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>
#include <stdexcept>
#include <vector>

#include "thinwire/thinwire.hpp"

namespace {

constexpr int kRanks = 4;
constexpr std::size_t kDim = 500;    // model parameters
constexpr std::size_t kRows = 1000;  // rows per rank
constexpr int kIterations = 200;
constexpr float kStep = 2.0f;

// Rank r's shard: rows a_j with a few large entries, targets b_j = a_j·x* + noise, x* shared.
struct Shard {
  std::vector<std::vector<std::pair<std::size_t, float>>> rows;  // sparse rows
  std::vector<float> target;
};

Shard make_shard(int rank) {
  std::mt19937 rng(100 + rank);
  std::uniform_int_distribution<std::size_t> column(0, kDim - 1);
  std::normal_distribution<float> normal;
  Shard s;
  for (std::size_t j = 0; j < kRows; ++j) {
    std::vector<std::pair<std::size_t, float>> row;
    float dot = 0.0f;
    for (int n = 0; n < 20; ++n) {
      const std::size_t i = column(rng);
      const float v = normal(rng);
      row.emplace_back(i, v);
      dot += v * std::cos(static_cast<float>(i));  // x*_i = cos(i)
    }
    s.rows.push_back(std::move(row));
    s.target.push_back(dot + 0.01f * normal(rng));
  }
  return s;
}

// ½·mean_j (a_j·x − b_j)² on the shard, and its gradient.
double loss_and_gradient(const Shard& s, const std::vector<float>& x, std::vector<float>& g) {
  std::fill(g.begin(), g.end(), 0.0f);
  double loss = 0.0;
  for (std::size_t j = 0; j < s.rows.size(); ++j) {
    float r = -s.target[j];
    for (const auto& [i, v] : s.rows[j]) r += v * x[i];
    loss += 0.5 * static_cast<double>(r) * r;
    for (const auto& [i, v] : s.rows[j]) g[i] += r * v / static_cast<float>(s.rows.size());
  }
  return loss / static_cast<double>(s.rows.size());
}

}  // namespace

int main() {
  namespace tw = thinwire;
  tw::comm::ThreadsWorldOptions world;
  world.size = kRanks;
  world.link = tw::comm::LinkModel::parse("bandwidth=1Gbit,latency=50us");
  try {
    tw::comm::run_threads_world(world, [](tw::comm::Transport& transport) {
      const Shard shard = make_shard(transport.rank());
      const auto tuner = tw::tune::make_tuner({.tuner = "dynamic", .codec = "topk:k=20"});
      // The residual is sized for this all-reduce (all-gather, kDim elements, this rank).
      tw::collective::AllreduceResidual ef(tw::codec::make_codec("topk:k=20"),
                                           tw::collective::AllreduceAlgorithm::kAllgather, kDim,
                                           transport.rank(), transport.size());
      std::vector<float> x(kDim, 0.0f);
      std::vector<float> g(kDim);
      std::vector<float> v(kDim);
      std::uint64_t bytes = 0;
      double first_loss = 0.0;
      double last_loss = 0.0;
      for (int t = 0; t < kIterations; ++t) {
        const double local_loss = loss_and_gradient(shard, x, g);
        // The tuner sees what will be encoded: e + g.
        for (std::size_t i = 0; i < kDim; ++i) v[i] = ef.residual()[i] + g[i];
        const tw::tune::Decision decision = tuner->decide(static_cast<std::uint64_t>(t), v);
        bytes += tw::collective::allreduce(
                     transport, g, *decision.codec,
                     {.seed = 1, .iteration = static_cast<std::uint64_t>(t), .error_feedback = &ef})
                     .bytes_sent;
        for (std::size_t i = 0; i < kDim; ++i) x[i] -= kStep * g[i];
        // The objective over all shards: an uncompressed sum of one number.
        std::vector<float> total = {static_cast<float>(local_loss)};
        const auto identity = tw::codec::make_codec("identity");
        (void)tw::collective::allreduce(transport, total, *identity,
                                        {.reduction = tw::collective::Reduction::kAverage});
        if (t == 0) first_loss = total[0];
        last_loss = total[0];
        if (transport.rank() == 0 && (t % 25 == 0 || t == kIterations - 1)) {
          std::printf("iteration %3d: loss %.5f, level %-12s (k = %g), %llu bytes sent so far\n", t,
                      static_cast<double>(total[0]), decision.codec_spec.c_str(), decision.level,
                      static_cast<unsigned long long>(bytes));
        }
      }
      // A check, so that the example doubles as a test: the loss falls by three orders.
      if (!(last_loss < 1e-3 * first_loss)) throw std::runtime_error("the loss did not fall");
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
