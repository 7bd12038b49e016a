#include "thinwire/problem/problem.hpp"

#include <algorithm>
#include <vector>

#include "row_gather.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"
#include "thinwire/problem/linear.hpp"
#include "thinwire/problem/mlp.hpp"

namespace thinwire::problem {
namespace {

std::string label(const Dataset& data) { return data.name().empty() ? "data set" : data.name(); }

}  // namespace

ProblemShape shape_of(const Dataset& data) noexcept {
  return ProblemShape{.features = data.cols(), .classes = data.num_classes()};
}

Problem::Problem(ProblemShape shape, std::size_t dim)
    : shape_(shape), dim_(dim), scratch_(std::make_unique<detail::RowScratch>()) {}

Problem::Problem(const Problem& other)
    : shape_(other.shape_), dim_(other.dim_), scratch_(std::make_unique<detail::RowScratch>()) {}

Problem::~Problem() = default;

std::string Problem::name() const {
  const std::string s = spec();
  return s.substr(0, s.find(':'));
}

// Runs on every evaluation: O(1) plus one pass over the batch's row indices; the problem's name
// (a formatted spec string) is only built when an error is reported.
void Problem::check(std::size_t params, const Batch& batch, const std::size_t* grad) const {
  const auto fail_if = [&](bool bad, auto&& message) {
    if (bad) throw InvalidArgument(name() + ": " + message());
  };
  fail_if(params != dim_, [&] {
    return std::to_string(params) + " parameters given, problem has " + std::to_string(dim_);
  });
  fail_if(grad != nullptr && *grad != dim_, [&] {
    return "gradient buffer has " + std::to_string(*grad) + " entries, problem has " +
           std::to_string(dim_);
  });
  const Dataset& data = batch.data();
  fail_if(batch.size() == 0, [] { return std::string("empty batch"); });
  if (!batch.is_all()) {
    const std::size_t n = data.rows();
    for (std::size_t r : batch.indices()) {
      fail_if(r >= n, [&] {
        return "batch row " + std::to_string(r) + " is outside " + label(data) + " (" +
               std::to_string(n) + " rows)";
      });
    }
  }
  fail_if(data.cols() != shape_.features, [&] {
    return label(data) + " has " + std::to_string(data.cols()) +
           " features, the problem was built for " + std::to_string(shape_.features);
  });
  if (is_classifier()) {
    fail_if(!data.has_classes(), [&] { return label(data) + " has no class labels"; });
    fail_if(data.num_classes() > shape_.classes, [&] {
      return label(data) + " has " + std::to_string(data.num_classes()) +
             " classes, the problem was built for " + std::to_string(shape_.classes);
    });
  }
  check_data(data);
}

double Problem::loss(std::span<const float> params, const Batch& batch) {
  check(params.size(), batch, nullptr);
  return evaluate_f32(params, batch, nullptr);
}

double Problem::loss_and_gradient(std::span<const float> params, const Batch& batch,
                                  std::span<float> grad) {
  const std::size_t g = grad.size();
  check(params.size(), batch, &g);
  return evaluate_f32(params, batch, grad.data());
}

double Problem::loss(std::span<const double> params, const Batch& batch) {
  check(params.size(), batch, nullptr);
  return evaluate_f64(params, batch, nullptr);
}

double Problem::loss_and_gradient(std::span<const double> params, const Batch& batch,
                                  std::span<double> grad) {
  const std::size_t g = grad.size();
  check(params.size(), batch, &g);
  return evaluate_f64(params, batch, grad.data());
}

void Problem::predict(std::span<const float> params, const Batch& batch,
                      std::span<std::int32_t> out) {
  if (!is_classifier())
    throw InvalidArgument(name() + ": not a classifier, cannot predict classes");
  check(params.size(), batch, nullptr);
  if (out.size() != batch.size()) {
    throw InvalidArgument(name() + ": prediction buffer has " + std::to_string(out.size()) +
                          " entries for a batch of " + std::to_string(batch.size()));
  }
  predict_classes(params, batch, out);
}

double Problem::accuracy(std::span<const float> params, const Batch& batch) {
  std::vector<std::int32_t> predicted(batch.size());
  predict(params, batch, predicted);
  const auto classes = batch.data().classes();
  std::size_t correct = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i) {
    correct += predicted[i] == classes[batch.row(i)] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(predicted.size());
}

std::optional<double> Problem::smoothness(const Batch& /*batch*/) const { return std::nullopt; }

void Problem::init(std::span<float> params, std::uint64_t /*seed*/) const {
  if (params.size() != dim_) {
    throw InvalidArgument(name() + ": init of " + std::to_string(params.size()) +
                          " parameters, problem has " + std::to_string(dim_));
  }
  std::fill(params.begin(), params.end(), 0.0f);
}

void Problem::predict_classes(std::span<const float> /*params*/, const Batch& /*batch*/,
                              std::span<std::int32_t> /*out*/) {
  throw InvalidArgument(name() + ": cannot predict classes");
}

void Problem::check_data(const Dataset& /*data*/) const {}

std::unique_ptr<Problem> make_problem(std::string_view text, const ProblemShape& shape) {
  Spec spec = Spec::parse(text);
  const std::string& kind = spec.name();
  const double lambda = spec.get_double("lambda", 0.0);
  std::unique_ptr<Problem> problem;
  if (kind == "logistic") {
    if (shape.classes != 2) {
      throw InvalidArgument("logistic: needs data with 2 classes, got " +
                            std::to_string(shape.classes) +
                            " (pick a pair with classes=A/B, or use softmax)");
    }
    problem = std::make_unique<LogisticRegression>(shape.features, lambda);
  } else if (kind == "softmax") {
    problem = std::make_unique<SoftmaxRegression>(shape.features, shape.classes, lambda);
  } else if (kind == "least-squares") {
    problem = std::make_unique<LeastSquares>(shape.features, lambda);
  } else if (kind == "mlp") {
    MlpOptions options{.hidden = parse_hidden_sizes(spec.get_string("hidden", "")),
                       .lambda = lambda};
    problem = std::make_unique<Mlp>(shape.features, shape.classes, std::move(options));
  } else {
    throw InvalidArgument("problem: unknown problem '" + kind +
                          "' (expected logistic, softmax, least-squares or mlp:hidden=..)");
  }
  spec.finish();
  return problem;
}

std::unique_ptr<Problem> make_problem(std::string_view spec, const Dataset& data) {
  return make_problem(spec, shape_of(data));
}

}  // namespace thinwire::problem
