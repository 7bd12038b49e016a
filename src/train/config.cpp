#include "thinwire/train/config.hpp"

#include <toml++/toml.h>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "plan.hpp"
#include "thinwire/codec/registry.hpp"
#include "thinwire/core/array_file.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"
#include "thinwire/tune/cost_model.hpp"
#include "thinwire/tune/tuner.hpp"

namespace thinwire::train {
namespace {

constexpr std::array kFields{
    ConfigField{"problem", "SPEC",
                "problem: mlp:hidden=256x128, logistic:lambda=1e-3, softmax, least-squares"},
    ConfigField{"data", "SPEC", "data set: fashion-mnist, synthetic:..., libsvm:path=FILE or FILE"},
    ConfigField{"test-data", "SPEC", "test set (default: the data set's own test split)"},
    ConfigField{"sharding", "SPEC",
                "how examples are split across workers: iid, dirichlet:alpha=A"},
    ConfigField{"backend", "threads|mpi", "communication engine (mpi: run under mpirun)"},
    ConfigField{"workers", "INT", "number of workers M (threads backend)"},
    ConfigField{"link", "SPEC",
                "link model of the simulated clock, e.g. bandwidth=100Mbit,latency=50us"},
    ConfigField{"algorithm", "sgd|local-sgd|qlocal-sgd|choco", "training algorithm"},
    ConfigField{"sync", "allgather|ring|ps|gossip[:TOPOLOGY]",
                "how models or gradients are synchronized (default: ring; gossip for choco)"},
    ConfigField{"codec", "SPEC[+ef]",
                "codec of what is sent, +ef for error feedback (default: 4-bit QSGD; identity for "
                "local-sgd)"},
    ConfigField{"downlink-codec", "SPEC", "codec of the parameter server's model broadcast"},
    ConfigField{"topology", "SPEC",
                "gossip graph: ring, torus[:rows=R], hypercube, complete, star, regular:d=D"},
    ConfigField{"tuner", "SPEC",
                "codec level per iteration: fixed, schedule:T=LEVEL,..., dynamic (the level "
                "with the largest predicted decrease per unit of the iteration's cost, "
                "docs/tuning.md; every compressing algorithm)"},
    ConfigField{"cost", "SPEC",
                "cost model: bits, linear:..., packet:..., energy:..., auto (seconds: the link's "
                "latency and bandwidth and the compute time estimated online from the run's own "
                "messages; docs/tuning.md) (the dynamic tuner's rule and the 'cost' metric)"},
    ConfigField{"report-costs", "SPEC;SPEC...",
                "further cost models whose totals every metrics record logs (the 'costs' field)"},
    ConfigField{"lr-coupling", "BOOL", "step size γ₀·ρ(θ_t) for unbiased codecs under a tuner"},
    ConfigField{"local-steps", "INT", "local steps H between synchronizations"},
    ConfigField{"lr", "FLOAT", "learning rate (step size)"},
    ConfigField{"lr-decay", "FLOAT",
                "decreasing step γ/(1 + t/T) with this T in iterations (0: constant step)"},
    ConfigField{"momentum", "FLOAT", "heavy-ball momentum in [0, 1)"},
    ConfigField{"nesterov", "BOOL", "use Nesterov momentum"},
    ConfigField{"weight-decay", "FLOAT", "L2 weight decay added to the gradient"},
    ConfigField{"gossip-lr", "FLOAT", "CHOCO consensus step size in (0, 1]"},
    ConfigField{"batch-size", "INT",
                "minibatch size per worker; 0 = full batch (gradient descent)"},
    ConfigField{"epochs", "FLOAT", "passes over the training set (when --iterations is 0)"},
    ConfigField{"iterations", "INT", "total iterations; overrides --epochs"},
    ConfigField{"seed", "INT", "seed of every random choice (data, init, codecs)"},
    ConfigField{"metrics", "FILE", "write metrics JSONL here"},
    ConfigField{"log-every", "INT", "iterations between metrics records"},
    ConfigField{"eval-every", "INT", "iterations between test evaluations (0: once per epoch)"},
    ConfigField{"checkpoint", "DIR", "write checkpoints into this directory"},
    ConfigField{"checkpoint-every", "INT", "iterations between checkpoints (0: only at the end)"},
    ConfigField{"resume", "BOOL", "continue from the latest checkpoint in --checkpoint"},
    ConfigField{"on-nonfinite", "error|skip",
                "a non-finite loss, gradient or model stops the run (error) or rolls that step "
                "back on every rank (skip)"},
    ConfigField{"save-model", "FILE", "write the final model here (.npy or .f32)"},
};

template <typename Enum>
struct EnumNames;
template <>
struct EnumNames<Backend> {
  static constexpr std::array<std::pair<Backend, std::string_view>, 2> kNames{
      {{Backend::kThreads, "threads"}, {Backend::kMpi, "mpi"}}};
};
template <>
struct EnumNames<AlgorithmKind> {
  static constexpr std::array<std::pair<AlgorithmKind, std::string_view>, 4> kNames{
      {{AlgorithmKind::kSgd, "sgd"},
       {AlgorithmKind::kLocalSgd, "local-sgd"},
       {AlgorithmKind::kQlocalSgd, "qlocal-sgd"},
       {AlgorithmKind::kChoco, "choco"}}};
};
template <>
struct EnumNames<NonFinitePolicy> {
  static constexpr std::array<std::pair<NonFinitePolicy, std::string_view>, 2> kNames{
      {{NonFinitePolicy::kError, "error"}, {NonFinitePolicy::kSkip, "skip"}}};
};

template <typename Enum>
std::string_view enum_name(Enum value) noexcept {
  for (const auto& [v, name] : EnumNames<Enum>::kNames) {
    if (v == value) return name;
  }
  return "?";
}

template <typename Enum>
Enum parse_enum(std::string_view text, std::string_view flag) {
  std::string choices;
  for (const auto& [v, name] : EnumNames<Enum>::kNames) {
    if (name == text) return v;
    choices += choices.empty() ? "" : ", ";
    choices += name;
  }
  throw InvalidArgument("--" + std::string(flag) + ": unknown value '" + std::string(text) +
                        "' (choose one of " + choices + ")");
}

template <typename T>
constexpr bool kIsEnum = std::is_enum_v<T>;

// Calls v(name, member) for every field, in the order of kFields.
template <typename Config, typename Visitor>
void visit_fields(Config& c, Visitor&& v) {
  v("problem", c.problem);
  v("data", c.data);
  v("test-data", c.test_data);
  v("sharding", c.sharding);
  v("backend", c.backend);
  v("workers", c.workers);
  v("link", c.link);
  v("algorithm", c.algorithm);
  v("sync", c.sync);
  v("codec", c.codec);
  v("downlink-codec", c.downlink_codec);
  v("topology", c.topology);
  v("tuner", c.tuner);
  v("cost", c.cost);
  v("report-costs", c.report_costs);
  v("lr-coupling", c.lr_coupling);
  v("local-steps", c.local_steps);
  v("lr", c.lr);
  v("lr-decay", c.lr_decay);
  v("momentum", c.momentum);
  v("nesterov", c.nesterov);
  v("weight-decay", c.weight_decay);
  v("gossip-lr", c.gossip_lr);
  v("batch-size", c.batch_size);
  v("epochs", c.epochs);
  v("iterations", c.iterations);
  v("seed", c.seed);
  v("metrics", c.metrics);
  v("log-every", c.log_every);
  v("eval-every", c.eval_every);
  v("checkpoint", c.checkpoint);
  v("checkpoint-every", c.checkpoint_every);
  v("resume", c.resume);
  v("on-nonfinite", c.on_nonfinite);
  v("save-model", c.save_model);
}

std::string normalize_key(std::string_view name) {
  std::string key(name);
  for (char& ch : key) {
    if (ch == '_') ch = '-';
  }
  if (key.starts_with("--")) key.erase(0, 2);
  return key;
}

[[noreturn]] void fail_field(std::string_view flag, const std::string& problem) {
  throw InvalidArgument("--" + std::string(flag) + ": " + problem);
}

bool parse_bool(std::string_view text, std::string_view flag) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  fail_field(flag, "expected true or false, got '" + std::string(text) + "'");
}

// Counts and sizes stay below 2^40 so that products such as batch size x workers (at most 4096)
// cannot overflow 64 bits; the seed may use the whole non-negative int64 range.
constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;

std::uint64_t parse_count(std::string_view text, std::string_view flag) {
  const bool seed = flag == "seed";
  const std::int64_t v = parse_int(text, "--" + std::string(flag));
  const std::uint64_t limit = seed ? std::uint64_t{INT64_MAX} : kMaxCount;
  if (v < 0 || static_cast<std::uint64_t>(v) > limit) {
    fail_field(flag, std::string("must be in [0, ") + (seed ? "2^63-1" : "2^40") + "], got " +
                         clip_text(text));
  }
  return static_cast<std::uint64_t>(v);
}

std::string format_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s(buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // TOML floats need a dot
  return s;
}

std::string toml_location(const toml::source_region& region, const std::string& source) {
  return source + ":" + std::to_string(region.begin.line) + ":" +
         std::to_string(region.begin.column);
}

// A thinwire configuration is one flat table, but toml++ recurses once per part of a dotted key:
// a key of 100,000 parts would overflow the stack. Dots outside strings and comments are bounded
// per line before the text reaches the parser (a flat configuration needs a handful).
constexpr std::size_t kMaxDotsPerLine = 64;
constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20;

void check_toml_shape(std::string_view text, const std::string& source) {
  std::size_t line = 1;
  std::size_t dots = 0;
  char quote = 0;          // inside a basic (") or literal (') string
  bool multiline = false;  // a """ or ''' string
  bool comment = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (ch == '\n') {
      ++line;
      dots = 0;
      comment = false;
      if (!multiline) quote = 0;
      continue;
    }
    if (comment) continue;
    if (quote != 0) {
      if (quote == '"' && ch == '\\') {
        ++i;  // an escaped character, possibly a quote
      } else if (ch == quote && !multiline) {
        quote = 0;
      } else if (ch == quote && text.substr(i, 3) == std::string(3, quote)) {
        quote = 0;
        multiline = false;
        i += 2;
      }
      continue;
    }
    if (ch == '#') {
      comment = true;
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
      multiline = text.substr(i, 3) == std::string(3, ch);
      if (multiline) i += 2;
    } else if (ch == '.' && ++dots > kMaxDotsPerLine) {
      throw InvalidArgument(source + ":" + std::to_string(line) +
                            ": nested too deeply (more than " + std::to_string(kMaxDotsPerLine) +
                            " dotted key parts on one line; a thinwire configuration is flat)");
    }
  }
}

}  // namespace

std::string_view backend_name(Backend b) noexcept { return enum_name(b); }
std::string_view algorithm_name(AlgorithmKind a) noexcept { return enum_name(a); }
std::string_view nonfinite_policy_name(NonFinitePolicy p) noexcept { return enum_name(p); }

std::span<const ConfigField> config_fields() { return kFields; }

void set_config_field(TrainConfig& config, std::string_view name, std::string_view value) {
  const std::string key = normalize_key(name);
  bool found = false;
  visit_fields(config, [&](std::string_view field, auto& member) {
    if (field != key) return;
    found = true;
    using T = std::remove_cvref_t<decltype(member)>;
    if constexpr (std::is_same_v<T, std::string>) {
      member = std::string(value);
    } else if constexpr (std::is_same_v<T, bool>) {
      member = parse_bool(value, field);
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
      member = parse_count(value, field);
    } else if constexpr (std::is_same_v<T, double>) {
      member = parse_double(value, "--" + std::string(field));
    } else {
      static_assert(kIsEnum<T>);
      member = parse_enum<T>(value, field);
    }
  });
  if (!found) throw InvalidArgument("unknown setting '" + std::string(name) + "'");
}

std::vector<std::string> split_cost_specs(std::string_view list) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin <= list.size()) {
    const std::size_t end = std::min(list.find(';', begin), list.size());
    if (end > begin) out.emplace_back(list.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

void resolve(TrainConfig& c) {
  auto positive_finite = [](double v) { return std::isfinite(v) && v > 0; };
  if (c.problem.empty()) fail_field("problem", "must not be empty");
  if (c.data.empty()) fail_field("data", "must not be empty");
  if (c.workers < 1 || c.workers > 4096) {
    fail_field("workers", "must be in [1, 4096], got " + std::to_string(c.workers));
  }
  if (!positive_finite(c.lr))
    fail_field("lr", "must be finite and > 0, got " + format_double(c.lr));
  if (!std::isfinite(c.lr_decay) || c.lr_decay < 0) {
    fail_field("lr-decay", "must be finite and >= 0, got " + format_double(c.lr_decay));
  }
  if (!std::isfinite(c.momentum) || c.momentum < 0 || c.momentum >= 1) {
    fail_field("momentum", "must be in [0, 1), got " + format_double(c.momentum));
  }
  if (!std::isfinite(c.weight_decay) || c.weight_decay < 0) {
    fail_field("weight-decay", "must be finite and >= 0, got " + format_double(c.weight_decay));
  }
  if (!positive_finite(c.gossip_lr) || c.gossip_lr > 1) {
    fail_field("gossip-lr", "must be in (0, 1], got " + format_double(c.gossip_lr));
  }
  if (c.iterations == 0 && !positive_finite(c.epochs)) {
    fail_field("epochs", "must be > 0 when --iterations is 0, got " + format_double(c.epochs));
  }
  if (c.log_every < 1) fail_field("log-every", "must be >= 1");
  if (c.local_steps < 1) fail_field("local-steps", "must be >= 1, got 0");
  if (c.local_steps > 1 && c.algorithm == AlgorithmKind::kSgd) {
    fail_field("local-steps", "sgd synchronizes every step; use local-sgd or qlocal-sgd");
  }
  if (c.resume && c.checkpoint.empty()) fail_field("resume", "needs --checkpoint DIR");
  if (!c.save_model.empty()) {
    try {
      (void)array_format_for(c.save_model);  // before training, not after it
    } catch (const InvalidArgument& e) {
      fail_field("save-model", e.what());
    }
  }
  if (c.checkpoint_every > 0 && c.checkpoint.empty()) {
    fail_field("checkpoint-every", "needs --checkpoint DIR");
  }
  try {
    (void)Spec::parse_params(c.link, "link");
  } catch (const InvalidArgument& e) {
    fail_field("link", e.what());
  }

  // Synchronization: the algorithm's default, then the combinations that make sense.
  if (c.sync.empty()) c.sync = c.algorithm == AlgorithmKind::kChoco ? "gossip" : "ring";
  if (c.sync.starts_with("gossip:")) {
    c.topology = c.sync.substr(7);
    c.sync = "gossip";
  }
  if (c.topology.empty()) fail_field("topology", "must not be empty");
  const std::optional<SyncChoice> sync = parse_sync(c.sync);
  if (!sync) {
    fail_field("sync", "unknown value '" + c.sync +
                           "' (choose one of allgather, ring, ps, gossip, gossip:TOPOLOGY)");
  }
  const bool gossip = sync->synchronizer == Synchronizer::kGossip;
  if (c.algorithm == AlgorithmKind::kChoco && !gossip) {
    fail_field("sync", "choco is a gossip algorithm; use --sync gossip[:TOPOLOGY]");
  }
  if (sync->synchronizer == Synchronizer::kParameterServer && c.algorithm != AlgorithmKind::kSgd) {
    fail_field("sync", "the parameter server runs with --algorithm sgd only");
  }

  // Codecs: exact model averaging (local-sgd, and sgd's D-PSGD gossip) sends models uncompressed
  // by default; the other algorithms compress gradients or model changes.
  const bool exact_gossip =
      gossip && (c.algorithm == AlgorithmKind::kSgd || c.algorithm == AlgorithmKind::kLocalSgd);
  if (c.codec.empty()) {
    c.codec = c.algorithm == AlgorithmKind::kLocalSgd || exact_gossip ? "identity"
                                                                      : kDefaultCompressingCodec;
  }
  codec::CodecChoice choice;
  try {
    choice = codec::parse_codec(c.codec);
  } catch (const InvalidArgument& e) {
    fail_field("codec", e.what());
  }
  if (exact_gossip && (!choice.codec->traits().lossless || choice.error_feedback)) {
    fail_field("codec", std::string(algorithm_name(c.algorithm)) +
                            " with --sync gossip mixes exact models; use --algorithm choco or "
                            "qlocal-sgd to compress gossip (got '" +
                            c.codec + "')");
  }
  if (gossip && choice.error_feedback) {
    fail_field("codec",
               "CHOCO-gossip carries the compression error in its public copies; drop "
               "'+ef' (got '" +
                   c.codec + "')");
  }
  try {
    (void)codec::make_codec(c.downlink_codec);
  } catch (const InvalidArgument& e) {
    fail_field("downlink-codec", e.what());
  }

  // Tuning: the tuner builds from (tuner, codec, cost) and names the flag that is wrong.
  try {
    (void)tune::make_cost_model(c.cost);
  } catch (const InvalidArgument& e) {
    fail_field("cost", e.what());
  }
  for (const std::string& spec : split_cost_specs(c.report_costs)) {
    try {
      (void)tune::make_cost_model(spec);
    } catch (const InvalidArgument& e) {
      fail_field("report-costs", e.what());
    }
  }
  if (c.lr_coupling && c.tuner == "fixed") {
    fail_field("lr-coupling",
               "scales the step by ρ(θ_t) of the dynamic tuner's choice; it needs --tuner dynamic "
               "(for a fixed level set --lr instead)");
  }
  if (c.tuner != "fixed") {
    // Every algorithm that compresses what it sends tunes it (SPEC §3); exact gossip (sgd and
    // local-sgd with --sync gossip) sends models losslessly and has no level to tune.
    if (exact_gossip) {
      fail_field("tuner", std::string(algorithm_name(c.algorithm)) +
                              " with --sync gossip mixes exact models and has no codec level to "
                              "tune; use choco or qlocal-sgd (got '" +
                              c.tuner + "')");
    }
    if (c.lr_coupling && c.algorithm != AlgorithmKind::kSgd) {
      fail_field("lr-coupling", "couples the gradient step of --algorithm sgd; " +
                                    std::string(algorithm_name(c.algorithm)) +
                                    " compresses models or changes");
    }
    try {
      (void)tune::make_tuner(
          {.tuner = c.tuner, .codec = c.codec, .cost = c.cost, .lr_coupling = c.lr_coupling});
    } catch (const InvalidArgument& e) {
      if (std::string_view(e.what()).starts_with("--")) throw;
      fail_field("tuner", e.what());
    }
  }
}

nlohmann::json to_json(const TrainConfig& config) {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(config, [&](std::string_view field, const auto& member) {
    using T = std::remove_cvref_t<decltype(member)>;
    if constexpr (kIsEnum<T>) {
      j[std::string(field)] = std::string(enum_name(member));
    } else {
      j[std::string(field)] = member;
    }
  });
  return j;
}

TrainConfig config_from_json(const nlohmann::json& json) {
  if (!json.is_object()) throw InvalidArgument("configuration: expected a JSON object");
  TrainConfig config;
  for (const auto& [key, value] : json.items()) {
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_boolean()) {
      text = value.get<bool>() ? "true" : "false";
    } else if (value.is_number_unsigned() || value.is_number_integer()) {
      text = value.dump();
    } else if (value.is_number_float()) {
      text = format_double(value.get<double>());
    } else {
      throw InvalidArgument("configuration: '" + key + "' has an unsupported type");
    }
    set_config_field(config, key, text);
  }
  return config;
}

std::string to_toml(const TrainConfig& config) {
  std::ostringstream out;
  out << "# thinwire train configuration (keys are the flags without --)\n";
  visit_fields(config, [&](std::string_view field, const auto& member) {
    using T = std::remove_cvref_t<decltype(member)>;
    out << field << " = ";
    if constexpr (std::is_same_v<T, std::string>) {
      out << nlohmann::json(member).dump();
    } else if constexpr (std::is_same_v<T, bool>) {
      out << (member ? "true" : "false");
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
      out << member;
    } else if constexpr (std::is_same_v<T, double>) {
      out << format_double(member);
    } else {
      out << '"' << enum_name(member) << '"';
    }
    out << '\n';
  });
  return out.str();
}

void apply_toml(TrainConfig& config, std::string_view text, const std::string& source) {
  if (text.size() > kMaxConfigBytes) {
    throw InvalidArgument(source + ": larger than 1 MiB (not a thinwire configuration)");
  }
  check_toml_shape(text, source);
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw InvalidArgument(toml_location(e.source(), source) + ": " + std::string(e.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string where = toml_location(node.source(), source);
    const std::string name = normalize_key(key.str());
    std::string value_text;
    bool known = false;
    visit_fields(config, [&](std::string_view field, const auto& member) {
      if (field != name) return;
      known = true;
      using T = std::remove_cvref_t<decltype(member)>;
      auto wrong = [&](std::string_view expected) {
        throw InvalidArgument(where + ": '" + std::string(key.str()) + "' must be " +
                              std::string(expected));
      };
      if constexpr (std::is_same_v<T, std::string> || kIsEnum<T>) {
        if (!node.is_string()) wrong("a string");
        value_text = *node.template value<std::string>();
      } else if constexpr (std::is_same_v<T, bool>) {
        if (!node.is_boolean()) wrong("true or false");
        value_text = *node.template value<bool>() ? "true" : "false";
      } else if constexpr (std::is_same_v<T, std::uint64_t>) {
        if (!node.is_integer()) wrong("an integer");
        value_text = std::to_string(*node.template value<std::int64_t>());
      } else {
        if (!node.is_number()) wrong("a number");
        value_text = format_double(*node.template value<double>());
      }
    });
    if (!known) {
      throw InvalidArgument(where + ": unknown key '" + std::string(key.str()) +
                            "' (keys are the flags of 'thinwire train' without --)");
    }
    try {
      set_config_field(config, name, value_text);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(where + ": " + e.what());
    }
  }
}

void apply_toml_file(TrainConfig& config, const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw InvalidArgument(path.string() + ": is a directory, not a configuration file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open the configuration file");
  // A bounded read: /dev/zero or a huge file must not exhaust memory.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw IoError(path.string() + ": cannot read the configuration file");
  text.resize(static_cast<std::size_t>(in.gcount()));
  apply_toml(config, text, path.string());
}

}  // namespace thinwire::train
