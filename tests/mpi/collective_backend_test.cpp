// The collectives give the same bits on every backend: a fixed workload of every collective, run
// on run_world (the MPI transport in the MPI binary, a threads world otherwise), must hash to what
// a threads world of the same size computes inside this process for the same seeds.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/world.hpp"
#include "thinwire/codec/error_feedback.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/broadcast.hpp"
#include "thinwire/collective/gossip.hpp"
#include "thinwire/collective/parameter_server.hpp"
#include "unit/collective/collective_test_support.hpp"

namespace thinwire::collective {
namespace {

using testing::gaussian;

void append(std::vector<float>& out, std::span<const float> v) {
  out.insert(out.end(), v.begin(), v.end());
}

// Every collective once or a few times, with lossy codecs and seeds; returns everything this
// rank ended with, in a fixed order.
std::vector<float> workload(comm::Transport& t) {
  constexpr std::size_t d = 257;
  const int r = t.rank();
  const int m = t.size();
  const std::shared_ptr<const codec::Codec> qsgd = codec::make_codec("qsgd:s=7,bucket=64");
  const std::shared_ptr<const codec::Codec> topk = codec::make_codec("topk:k=0.05");
  const auto randk = codec::make_codec("randk:k=0.1,shared_seed=4");
  std::vector<float> out;

  collective::AllreduceResidual ef(topk, collective::AllreduceAlgorithm::kAllgather, d, r, m);
  for (std::uint64_t it = 0; it < 3; ++it) {
    std::vector<float> x = gaussian(50 + it, r, d);
    (void)allreduce_allgather(t, x, *qsgd, {.seed = 1, .iteration = it});
    append(out, x);
    x = gaussian(60 + it, r, d);
    (void)allreduce_allgather(t, x, *topk, {.seed = 1, .iteration = it, .error_feedback = &ef});
    append(out, x);
    x = gaussian(70 + it, r, d);
    (void)allreduce_ring(t, x, *qsgd, {.reduction = Reduction::kSum, .seed = 2, .iteration = it});
    append(out, x);
    x = gaussian(80 + it, r, d);
    (void)allreduce_shared_randk(t, x, *randk, {.iteration = it});
    append(out, x);
  }
  append(out, ef.residual());

  std::vector<float> b = gaussian(90, r, d);
  (void)broadcast(t, b, *qsgd, {.root = m - 1, .seed = 3});
  append(out, b);

  std::vector<float> g = gaussian(91, r, d);
  (void)ps_gather_average(t, g, *qsgd, {.seed = 4});
  append(out, g);
  PsDownlinkState state;
  std::vector<float> model = gaussian(92, 0, d);
  for (std::uint64_t round = 0; round < 3; ++round) {
    if (r == kServerRank) {
      for (float& v : model) v *= 0.9f;
    }
    (void)ps_broadcast_model(t, model, *qsgd, state, {.seed = 5, .iteration = round});
    append(out, state.replica);
  }

  const Topology ring = Topology::ring(m);
  const MixingMatrix w = metropolis_hastings_weights(ring);
  std::vector<float> x = gaussian(93, r, d);
  (void)gossip_average(t, x, ring, w);
  append(out, x);
  ChocoState choco;
  for (std::uint64_t round = 0; round < 4; ++round) {
    (void)choco_gossip(t, x, ring, w, *qsgd, choco,
                       {.consensus_step = 0.5, .seed = 6, .iteration = round});
  }
  append(out, x);
  append(out, choco.own_public);
  return out;
}

TEST(CollectiveBackendTest, EveryCollectiveMatchesTheThreadsWorldBitForBit) {
  for (const int m : {1, 2, 3, 4}) {
    const std::vector<std::vector<float>> reference = testing::run_threads(m, workload);
    test::run_world(m, [&](comm::Transport& t) {
      const std::vector<float> mine = workload(t);
      const std::vector<float>& want = reference[static_cast<std::size_t>(t.rank())];
      EXPECT_EQ(mine.size(), want.size());
      EXPECT_EQ(testing::hash_floats(mine), testing::hash_floats(want))
          << "rank " << t.rank() << " of " << m << (test::kMpiWorld ? " (mpi)" : " (threads)");
    });
  }
}

}  // namespace
}  // namespace thinwire::collective
