#include "thinwire/data/shard.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::data {
namespace {

// Sub-stream salts of the (seed, 0, attempt, kData) keys; distinct from dataset.cpp's shuffle (1)
// and the sampler's (2).
constexpr std::uint64_t kIidSalt = 3;
constexpr std::uint64_t kDirichletSalt = 4;
constexpr std::uint64_t kMaxDirichletAttempts = 1000;

void check_workers(std::size_t rows, std::size_t workers, const char* what) {
  if (workers == 0) throw InvalidArgument(std::string(what) + ": need at least one worker");
  if (rows < workers) {
    throw InvalidArgument(std::string(what) + ": cannot split " + std::to_string(rows) +
                          " rows across " + std::to_string(workers) + " workers");
  }
}

void shuffle(std::vector<std::size_t>& v, RngStream& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.next_below(i)]);
}

}  // namespace

double sample_log_gamma(RngStream& rng, double shape) {
  if (!(shape > 0.0) || !std::isfinite(shape)) {
    throw InvalidArgument("gamma: shape must be positive, got " + std::to_string(shape));
  }
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) · U^{1/a}; 1 - U lies in (0, 1], so the log is finite.
    const double log_u = std::log(1.0 - rng.next_uniform_double());
    return sample_log_gamma(rng, shape + 1.0) + log_u / shape;
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = rng.next_normal();
    const double t = 1.0 + c * x;
    if (t <= 0.0) continue;
    const double v = t * t * t;
    const double u = 1.0 - rng.next_uniform_double();
    // Squeeze first (cheap, accepts ~98 %), then the exact test.
    if (u < 1.0 - 0.0331 * (x * x) * (x * x) ||
        std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
      return std::log(d) + std::log(v);
    }
  }
}

double sample_gamma(RngStream& rng, double shape) { return std::exp(sample_log_gamma(rng, shape)); }

void sample_dirichlet(RngStream& rng, double alpha, std::span<double> out) {
  if (out.empty()) return;
  double max_log = -std::numeric_limits<double>::infinity();
  for (double& v : out) {
    v = sample_log_gamma(rng, alpha);
    max_log = std::max(max_log, v);
  }
  double sum = 0;
  for (double& v : out) {
    v = std::exp(v - max_log);
    sum += v;
  }
  for (double& v : out) v /= sum;
}

std::vector<Shard> shard_iid(std::size_t rows, std::size_t workers, std::uint64_t seed) {
  check_workers(rows, workers, "iid sharding");
  std::vector<std::size_t> perm(rows);
  for (std::size_t i = 0; i < rows; ++i) perm[i] = i;
  RngStream rng(RngKey::make(seed, 0, 0, RngPurpose::kData).derive(kIidSalt));
  shuffle(perm, rng);
  std::vector<Shard> shards(workers);
  const std::size_t base = rows / workers;
  const std::size_t extra = rows % workers;
  std::size_t begin = 0;
  for (std::size_t m = 0; m < workers; ++m) {
    const std::size_t size = base + (m < extra ? 1 : 0);
    shards[m].assign(perm.begin() + static_cast<std::ptrdiff_t>(begin),
                     perm.begin() + static_cast<std::ptrdiff_t>(begin + size));
    std::sort(shards[m].begin(), shards[m].end());
    begin += size;
  }
  return shards;
}

std::vector<Shard> shard_dirichlet(const Dataset& data, std::size_t workers, double alpha,
                                   std::uint64_t seed, std::size_t min_size) {
  check_workers(data.rows(), workers, "dirichlet sharding");
  if (!data.has_classes()) {
    throw InvalidArgument("dirichlet sharding: " + data.name() +
                          " has no classes (non-iid shards are split by label)");
  }
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    throw InvalidArgument("dirichlet sharding: alpha must be positive, got " +
                          std::to_string(alpha));
  }
  if (min_size * workers > data.rows()) {
    throw InvalidArgument("dirichlet sharding: " + std::to_string(workers) +
                          " workers with min=" + std::to_string(min_size) + " need more than " +
                          std::to_string(data.rows()) + " rows");
  }
  std::vector<std::vector<std::size_t>> by_class(data.num_classes());
  const auto classes = data.classes();
  for (std::size_t i = 0; i < classes.size(); ++i) {
    by_class[static_cast<std::size_t>(classes[i])].push_back(i);
  }
  std::vector<double> p(workers);
  for (std::uint64_t attempt = 0; attempt < kMaxDirichletAttempts; ++attempt) {
    RngStream rng(RngKey::make(seed, 0, attempt, RngPurpose::kData).derive(kDirichletSalt));
    std::vector<Shard> shards(workers);
    for (std::vector<std::size_t> rows : by_class) {
      shuffle(rows, rng);
      sample_dirichlet(rng, alpha, p);
      // Worker m gets [round(n_c·P_{m-1}), round(n_c·P_m)) with P the cumulative proportions,
      // so the pieces tile the class exactly.
      double cumulative = 0;
      std::size_t begin = 0;
      for (std::size_t m = 0; m < workers; ++m) {
        cumulative += p[m];
        const std::size_t end =
            m + 1 == workers
                ? rows.size()
                : std::min(rows.size(), static_cast<std::size_t>(std::llround(
                                            cumulative * static_cast<double>(rows.size()))));
        if (end > begin) {
          shards[m].insert(shards[m].end(), rows.begin() + static_cast<std::ptrdiff_t>(begin),
                           rows.begin() + static_cast<std::ptrdiff_t>(end));
          begin = end;
        }
      }
    }
    if (std::all_of(shards.begin(), shards.end(),
                    [&](const Shard& s) { return s.size() >= min_size; })) {
      for (Shard& s : shards) std::sort(s.begin(), s.end());
      return shards;
    }
  }
  throw InvalidArgument("dirichlet sharding: no draw in " + std::to_string(kMaxDirichletAttempts) +
                        " gave every one of " + std::to_string(workers) + " workers at least " +
                        std::to_string(min_size) + " rows; raise alpha or lower min");
}

std::vector<Shard> make_shards(const Dataset& data, std::size_t workers, std::string_view scheme,
                               std::uint64_t seed) {
  Spec spec = Spec::parse(scheme);
  if (spec.name() == "iid") {
    spec.finish();
    return shard_iid(data.rows(), workers, seed);
  }
  if (spec.name() == "dirichlet") {
    if (!spec.has("alpha")) throw InvalidArgument("dirichlet: alpha is required (e.g. alpha=0.5)");
    const double alpha = spec.get_double("alpha", 1.0);
    const auto min_size = static_cast<std::size_t>(spec.get_uint("min", 1));
    spec.finish();
    return shard_dirichlet(data, workers, alpha, seed, min_size);
  }
  throw InvalidArgument("sharding: unknown scheme '" + spec.name() +
                        "' (expected iid or dirichlet:alpha=A)");
}

}  // namespace thinwire::data
