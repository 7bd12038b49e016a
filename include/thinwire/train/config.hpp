// TrainConfig: everything that defines a training run, as one plain struct (SPEC §6).
//
// The same field names are used everywhere a run is described: the `thinwire train` flags
// (--local-steps), the keys of a --config TOML file (local-steps = 4, or local_steps), and the
// first line of the metrics JSONL. config_fields() lists them with their types and help, so the
// CLI registers its flags from the table and nothing can drift apart.
//
// Values some fields leave open ("" for codec and sync: "the algorithm's default") are filled in
// by resolve(), which also validates every field against the others and throws InvalidArgument
// naming the flag ("--local-steps: must be >= 1, got 0"). A resolved config is what the metrics
// record, so a run can be repeated from its first metrics line alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thinwire::train {

enum class Backend : std::uint8_t { kThreads, kMpi };
enum class AlgorithmKind : std::uint8_t {
  kSgd,        // minibatch SGD, gradients synchronized every step
  kLocalSgd,   // PR-SGD: H local steps, then the models are averaged or gossiped
  kQlocalSgd,  // quantized PR-SGD: the change since the last synchronized model is compressed
  kChoco,      // CHOCO-SGD: a local step, then a compressed gossip round
};
enum class NonFinitePolicy : std::uint8_t { kError, kSkip };

[[nodiscard]] std::string_view backend_name(Backend b) noexcept;
[[nodiscard]] std::string_view algorithm_name(AlgorithmKind a) noexcept;
[[nodiscard]] std::string_view nonfinite_policy_name(NonFinitePolicy p) noexcept;

// QSGD at 4 bits per element on the wire (sign + 3-bit level, s = 7) with the bucket and norm of
// the QSGD paper's deep-learning experiments: the default codec of the compressing algorithms.
inline constexpr std::string_view kDefaultCompressingCodec =
    "qsgd:s=7,bucket=512,norm=max,coding=packed";

struct TrainConfig {
  // What is learned.
  std::string problem = "mlp:hidden=256x128";  // problem spec (problem/ factories)
  std::string data = "fashion-mnist";          // data set spec (data/ loaders)
  std::string test_data;                       // "" = the data set's own test split, if any
  std::string sharding = "iid";                // iid | dirichlet:alpha=A
  // Who learns it.
  Backend backend = Backend::kThreads;
  std::uint64_t workers = 4;  // M; under MPI the world size (checked against the flag if given)
  std::string link = "bandwidth=1Gbit,latency=50us";  // link model of the simulated clock
  // How.
  AlgorithmKind algorithm = AlgorithmKind::kSgd;
  std::string sync;   // allgather | ring | ps | gossip[:TOPOLOGY]; "" = algorithm's default
  std::string codec;  // codec spec, "+ef" for error feedback; "" = algorithm's default
  std::string downlink_codec = "identity";  // parameter server's model broadcast (sync = ps)
  std::string topology = "ring";            // gossip graph (sync = gossip, choco)
  std::uint64_t local_steps = 1;            // H: local steps between synchronizations
  double lr = 0.05;                         // γ
  double lr_decay = 0;                      // T: γ_t = γ/(1 + t/T); 0 = constant step
  double momentum = 0.9;                    // μ (heavy ball)
  bool nesterov = false;
  double weight_decay = 0.0;      // λ, L2 decay added by the optimizer
  double gossip_lr = 0.5;         // CHOCO's consensus step size
  std::uint64_t batch_size = 64;  // per worker; 0 = full batch (gradient descent)
  double epochs = 15;             // passes over the training set (used when iterations == 0)
  std::uint64_t iterations = 0;   // total iterations; 0 = from epochs
  std::uint64_t seed = 1;
  // Tuning: the codec level per iteration (SPEC §3).
  std::string tuner = "fixed";  // fixed | schedule:T=LEVEL,... | dynamic (tune/tuner.hpp)
  std::string cost = "bits";    // cost model: tuner rule, `cost` metric (tune/cost_model.hpp)
  std::string report_costs;     // further cost models, ';'-separated: the `costs` metric
  bool lr_coupling = false;     // γ_t = γ₀·ρ(θ_t) for unbiased codecs under a tuner
  // Output.
  std::string metrics;                 // JSONL path; "" = none
  std::uint64_t log_every = 10;        // iterations between metrics records
  std::uint64_t eval_every = 0;        // iterations between test evaluations; 0 = once per epoch
  std::string checkpoint;              // checkpoint directory; "" = none
  std::uint64_t checkpoint_every = 0;  // iterations between checkpoints; 0 = only at the end
  bool resume = false;                 // continue from the latest checkpoint in `checkpoint`
  NonFinitePolicy on_nonfinite = NonFinitePolicy::kError;
  std::string save_model;  // final model file (.npy or .f32); "" = none

  friend bool operator==(const TrainConfig&, const TrainConfig&) = default;
};

// One settable field.
struct ConfigField {
  std::string_view name;  // flag without "--", TOML key
  std::string_view type;  // for --help: TEXT, INT, FLOAT, BOOL, or a choice list
  std::string_view help;
};
[[nodiscard]] std::span<const ConfigField> config_fields();

// Sets one field from its text form ("0.1", "true", "local-sgd"); `name` may use '_' for '-'.
// Throws InvalidArgument "--NAME: problem" for an unknown name or a malformed value.
void set_config_field(TrainConfig& config, std::string_view name, std::string_view value);

// The cost model specs of a ';'-separated list (--report-costs); empty entries are skipped.
[[nodiscard]] std::vector<std::string> split_cost_specs(std::string_view list);

// Validates and fills the algorithm-dependent defaults (see the overview). Idempotent.
void resolve(TrainConfig& config);

// JSON object with every field (enums as their names).
[[nodiscard]] nlohmann::json to_json(const TrainConfig& config);
// Inverse of to_json; missing keys keep their defaults, unknown keys are InvalidArgument.
[[nodiscard]] TrainConfig config_from_json(const nlohmann::json& json);

// TOML text with every field, readable by apply_toml.
[[nodiscard]] std::string to_toml(const TrainConfig& config);
// Sets the fields a TOML document names. Errors (syntax, unknown key, wrong type) are
// InvalidArgument "SOURCE:LINE:COLUMN: problem".
void apply_toml(TrainConfig& config, std::string_view text, const std::string& source);
// Same for a file; a file that cannot be read is IoError.
void apply_toml_file(TrainConfig& config, const std::filesystem::path& path);

}  // namespace thinwire::train
