#include "thinwire/train/algorithm.hpp"

#include <sstream>
#include <string>

#include "thinwire/codec/identity.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/collective/allreduce.hpp"
#include "thinwire/collective/topology.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/train/choco_sgd.hpp"
#include "thinwire/train/local_sgd.hpp"
#include "thinwire/train/ps_sgd.hpp"
#include "thinwire/train/qlocal_sgd.hpp"
#include "thinwire/train/sync_sgd.hpp"

namespace thinwire::train {

std::uint64_t identity_message_bytes(std::size_t n) {
  return codec::IdentityCodec{}.max_encoded_bytes(n);
}

void save_optimizer(StateBundle& state, const optim::Sgd& optimizer) {
  state.put_floats("optimizer.velocity", optimizer.velocity());
}

void load_optimizer(const StateBundle& state, optim::Sgd& optimizer) {
  optimizer.set_velocity(state.get_floats("optimizer.velocity"));
}

void save_error_feedback(StateBundle& state, const codec::ErrorFeedback* ef) {
  if (ef == nullptr) return;
  std::ostringstream out(std::ios::binary);
  ef->save(out);
  const std::string bytes = out.str();
  state.put_bytes("error_feedback", std::as_bytes(std::span(bytes.data(), bytes.size())));
}

void load_error_feedback(const StateBundle& state, codec::ErrorFeedback* ef) {
  if (ef == nullptr) return;
  const std::vector<std::byte> bytes = state.get_bytes("error_feedback");
  std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                        std::ios::binary);
  ef->load(in);
}

optim::SgdOptions sgd_options(const TrainConfig& config) {
  return {.lr = config.lr,
          .momentum = config.momentum,
          .nesterov = config.nesterov,
          .weight_decay = config.weight_decay};
}

std::unique_ptr<tune::Tuner> make_config_tuner(const TrainConfig& config) {
  if (config.tuner == "fixed") return nullptr;
  return tune::make_tuner({.tuner = config.tuner,
                           .codec = config.codec,
                           .cost = config.cost,
                           .lr_coupling = config.lr_coupling});
}

tune::Decision tune_message(tune::Tuner& tuner, std::uint64_t t, std::span<const float> v,
                            const codec::ErrorFeedback* ef, std::vector<float>& scratch) {
  if (ef == nullptr || ef->dimension() != v.size()) return tuner.decide(t, v);
  const std::span<const float> e = ef->residual();
  scratch.resize(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) scratch[i] = e[i] + v[i];
  return tuner.decide(t, scratch);
}

void scale_message(std::span<float> v, double scale) noexcept {
  if (scale == 1.0) return;
  const auto s = static_cast<float>(scale);
  for (float& x : v) x *= s;
}

std::unique_ptr<Algorithm> make_algorithm(const TrainConfig& config,
                                          const AlgorithmContext& context,
                                          std::span<const float> initial_model) {
  if (context.transport == nullptr) throw InvalidArgument("make_algorithm: no transport");
  const int size = context.transport->size();
  const optim::SgdOptions sgd = sgd_options(config);
  codec::CodecChoice choice = codec::parse_codec(config.codec);
  const bool gossip = config.sync == "gossip";
  auto topology = [&] {
    try {
      return collective::Topology::parse(config.topology, size, config.seed);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("--topology: " + std::string(e.what()));
    }
  };
  auto allreduce = [&] { return collective::parse_allreduce_algorithm(config.sync); };
  const std::uint64_t h = config.local_steps;

  switch (config.algorithm) {
    case AlgorithmKind::kSgd:
      if (config.sync == "ps") {
        return std::make_unique<PsSgd>(context, choice, codec::make_codec(config.downlink_codec),
                                       sgd, initial_model, make_config_tuner(config));
      }
      if (gossip) return std::make_unique<LocalSgd>(context, 1, topology(), sgd);
      return std::make_unique<SyncSgd>(context, allreduce(), choice, sgd,
                                       make_config_tuner(config));
    case AlgorithmKind::kLocalSgd:
      if (gossip) return std::make_unique<LocalSgd>(context, h, topology(), sgd);
      return std::make_unique<LocalSgd>(context, h, allreduce(), choice, sgd,
                                        make_config_tuner(config));
    case AlgorithmKind::kQlocalSgd:
      if (gossip) {
        return std::make_unique<ChocoSgd>(context, h, topology(), std::move(choice.codec),
                                          config.gossip_lr, sgd, make_config_tuner(config));
      }
      return std::make_unique<QlocalSgd>(context, h, allreduce(), choice, sgd, initial_model,
                                         make_config_tuner(config));
    case AlgorithmKind::kChoco:
      return std::make_unique<ChocoSgd>(context, h, topology(), std::move(choice.codec),
                                        config.gossip_lr, sgd, make_config_tuner(config));
  }
  throw InvalidArgument("make_algorithm: unknown algorithm");
}

}  // namespace thinwire::train
