#include "thinwire/problem/mlp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <type_traits>

#include "row_gather.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/rng.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::problem {
namespace {

using detail::DenseRows;
using detail::eidx;
using detail::RowMatrix;
using detail::Vector;

std::vector<MlpLayer> make_layers(std::size_t features, std::size_t classes,
                                  const MlpOptions& options) {
  if (features == 0) throw InvalidArgument("mlp: data has no features");
  if (classes < 2) {
    throw InvalidArgument("mlp: needs data with at least 2 classes, got " +
                          std::to_string(classes));
  }
  if (!(options.lambda >= 0.0) || !std::isfinite(options.lambda)) {
    throw InvalidArgument("mlp: lambda must be >= 0, got " + std::to_string(options.lambda));
  }
  std::vector<std::size_t> sizes{features};
  for (std::size_t h : options.hidden) {
    if (h == 0) throw InvalidArgument("mlp: hidden layer sizes must be positive");
    sizes.push_back(h);
  }
  sizes.push_back(classes);
  std::vector<MlpLayer> layers;
  std::size_t offset = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    MlpLayer layer{.inputs = sizes[l], .outputs = sizes[l + 1], .weights = offset, .bias = 0};
    layer.bias = offset + layer.inputs * layer.outputs;
    offset = layer.bias + layer.outputs;
    layers.push_back(layer);
  }
  return layers;
}

std::size_t total_dim(const std::vector<MlpLayer>& layers) {
  return layers.back().bias + layers.back().outputs;
}

}  // namespace

std::vector<std::size_t> parse_hidden_sizes(std::string_view text) {
  std::vector<std::size_t> sizes;
  if (text.empty()) throw InvalidArgument("mlp: hidden is required (e.g. hidden=256x128)");
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t x = std::min(text.find('x', begin), text.size());
    const std::int64_t h = parse_int(text.substr(begin, x - begin), "mlp: hidden");
    if (h <= 0) {
      throw InvalidArgument("mlp: hidden layer sizes must be positive, got '" + clip_text(text) +
                            "'");
    }
    // Bounded so that the parameter count cannot overflow (the engine bounds the total).
    if (h > (std::int64_t{1} << 24) || sizes.size() >= 64) {
      throw InvalidArgument("mlp: at most 64 hidden layers of at most 2^24 units, got '" +
                            clip_text(text) + "'");
    }
    sizes.push_back(static_cast<std::size_t>(h));
    begin = x + 1;
  }
  return sizes;
}

// Activations and backpropagated errors of one scalar type, reused across calls.
template <class T>
struct MlpActivations {
  std::vector<RowMatrix<T>> h;      // h[l]: output of layer l (ReLU'd, or logits for the last)
  std::vector<RowMatrix<T>> delta;  // delta[l]: ∂(n·f)/∂(pre-activation of layer l), hidden l
  Vector<T> row_max;
  Vector<T> row_sum;
};

struct Mlp::Buffers {
  MlpActivations<float> f32;
  MlpActivations<double> f64;

  template <class T>
  MlpActivations<T>& get() noexcept {
    if constexpr (std::is_same_v<T, float>) {
      return f32;
    } else {
      return f64;
    }
  }
};

namespace {

template <class T>
DenseRows<T> view(const RowMatrix<T>& m) {
  return DenseRows<T>(m.data(), m.rows(), m.cols());
}

// Forward pass of one chunk: act.h[L-1] ends up holding the logits.
template <class T>
void forward(const DenseRows<T>& x, const T* params, const std::vector<MlpLayer>& layers,
             MlpActivations<T>& act) {
  act.h.resize(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const MlpLayer& layer = layers[l];
    const Eigen::Map<const RowMatrix<T>> w(params + layer.weights, eidx(layer.outputs),
                                           eidx(layer.inputs));
    const Eigen::Map<const Vector<T>> b(params + layer.bias, eidx(layer.outputs));
    RowMatrix<T>& h = act.h[l];
    if (l == 0) {
      h.noalias() = x * w.transpose();
    } else {
      h.noalias() = view(act.h[l - 1]) * w.transpose();
    }
    h.rowwise() += b.transpose();
    if (l + 1 < layers.size()) h = h.cwiseMax(T(0));
  }
}

}  // namespace

Mlp::Mlp(std::size_t features, std::size_t classes, MlpOptions options)
    : Problem(ProblemShape{.features = features, .classes = classes},
              total_dim(make_layers(features, classes, options))),
      options_(std::move(options)),
      layers_(make_layers(features, classes, options_)),
      buffers_(std::make_unique<Buffers>()) {}

Mlp::Mlp(const Mlp& other)
    : Problem(other),
      options_(other.options_),
      layers_(other.layers_),
      buffers_(std::make_unique<Buffers>()) {}

Mlp::~Mlp() = default;

std::string Mlp::spec() const {
  std::ostringstream os;
  os.precision(std::numeric_limits<double>::max_digits10);
  os << "mlp:hidden=";
  for (std::size_t i = 0; i < options_.hidden.size(); ++i) {
    os << (i == 0 ? "" : "x") << options_.hidden[i];
  }
  os << ",lambda=" << options_.lambda;
  return os.str();
}

std::unique_ptr<Problem> Mlp::clone() const { return std::make_unique<Mlp>(*this); }

void Mlp::check_data(const Dataset& data) const {
  if (data.is_sparse()) {
    throw InvalidArgument("mlp: needs dense features, " + data.name() +
                          " is sparse (convert it with data::to_dense)");
  }
}

void Mlp::init(std::span<float> params, std::uint64_t seed) const {
  Problem::init(params, seed);  // checks the size, zeroes the biases
  const RngKey key = RngKey::make(seed, 0, 0, RngPurpose::kInit);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const MlpLayer& layer = layers_[l];
    const bool output = l + 1 == layers_.size();
    const double fan = output ? 0.5 * static_cast<double>(layer.inputs + layer.outputs)
                              : 0.5 * static_cast<double>(layer.inputs);
    const double sd = std::sqrt(1.0 / fan);  // He: sqrt(2/in); Glorot: sqrt(2/(in+out))
    RngStream rng(key.derive(l));
    for (std::size_t i = 0; i < layer.inputs * layer.outputs; ++i) {
      params[layer.weights + i] = static_cast<float>(sd * rng.next_normal());
    }
  }
}

template <class T>
double Mlp::eval(std::span<const T> params, const Batch& batch, T* grad) {
  MlpActivations<T>& act = buffers_->get<T>();
  const std::size_t last = layers_.size() - 1;
  const auto classes = batch.data().classes();
  const T inv_n = T(1) / static_cast<T>(batch.size());
  if (grad != nullptr) std::fill(grad, grad + dim(), T(0));
  act.delta.resize(layers_.size());
  double loss = 0;
  detail::for_each_chunk(
      batch, scratch().get<T>(), [&](const auto& rows, std::size_t begin, std::size_t count) {
        if constexpr (std::is_same_v<std::decay_t<decltype(rows)>, DenseRows<T>>) {
          forward<T>(rows, params.data(), layers_, act);
          RowMatrix<T>& z = act.h[last];
          // Softmax cross-entropy as in SoftmaxRegression: z_y - max read before exp.
          act.row_max = z.rowwise().maxCoeff();
          z.colwise() -= act.row_max;
          for (std::size_t i = 0; i < count; ++i) {
            loss -= static_cast<double>(z(eidx(i), classes[batch.row(begin + i)]));
          }
          z = z.array().exp().matrix();
          act.row_sum = z.rowwise().sum();
          loss += act.row_sum.template cast<double>().array().log().sum();
          if (grad == nullptr) return;

          // ∂f/∂z = (p - e_y)/n, written over the logits.
          z.array().colwise() /= act.row_sum.array();
          for (std::size_t i = 0; i < count; ++i) z(eidx(i), classes[batch.row(begin + i)]) -= T(1);
          z *= inv_n;
          for (std::size_t l = last + 1; l-- > 0;) {
            const MlpLayer& layer = layers_[l];
            const RowMatrix<T>& d = l == last ? z : act.delta[l];
            Eigen::Map<RowMatrix<T>> gw(grad + layer.weights, eidx(layer.outputs),
                                        eidx(layer.inputs));
            Eigen::Map<Vector<T>> gb(grad + layer.bias, eidx(layer.outputs));
            const DenseRows<T> input = l == 0 ? rows : view(act.h[l - 1]);
            gw.noalias() += d.transpose() * input;
            // Bias gradient Σ_i d_i, added row by row rather than as d.colwise().sum(): Eigen
            // evaluates that partial reduction straight into gb, vectorized (a 4-way tree over
            // rows) for the packet-aligned columns and scalar (sequential) for the unaligned head
            // and tail, so which columns get which summation order would follow gb's address.
            // grad is caller memory (in the threads backend, malloc'ed at an address that
            // depends on thread scheduling), and that made training runs irreproducible. Row
            // adds are elementwise: the same order, and bits, at any address.
            for (Eigen::Index i = 0; i < d.rows(); ++i) gb.noalias() += d.row(i).transpose();
            if (l == 0) break;
            // Back through W_l and the ReLU of layer l - 1: relu'(pre) = [h > 0].
            const Eigen::Map<const RowMatrix<T>> w(params.data() + layer.weights,
                                                   eidx(layer.outputs), eidx(layer.inputs));
            RowMatrix<T>& back = act.delta[l - 1];
            back.noalias() = d * w;
            back.array() *= (act.h[l - 1].array() > T(0)).template cast<T>();
          }
        }
      });
  double reg = 0;
  for (const MlpLayer& layer : layers_) {
    const Eigen::Map<const Vector<T>> w(params.data() + layer.weights,
                                        eidx(layer.inputs * layer.outputs));
    reg += w.template cast<double>().squaredNorm();
    if (grad != nullptr && options_.lambda != 0.0) {
      Eigen::Map<Vector<T>>(grad + layer.weights, w.size()) += static_cast<T>(options_.lambda) * w;
    }
  }
  return loss / static_cast<double>(batch.size()) + 0.5 * options_.lambda * reg;
}

double Mlp::evaluate_f32(std::span<const float> params, const Batch& batch, float* grad) {
  return eval<float>(params, batch, grad);
}

double Mlp::evaluate_f64(std::span<const double> params, const Batch& batch, double* grad) {
  return eval<double>(params, batch, grad);
}

void Mlp::predict_classes(std::span<const float> params, const Batch& batch,
                          std::span<std::int32_t> out) {
  MlpActivations<float>& act = buffers_->f32;
  detail::for_each_chunk(
      batch, scratch().f32, [&](const auto& rows, std::size_t begin, std::size_t count) {
        if constexpr (std::is_same_v<std::decay_t<decltype(rows)>, DenseRows<float>>) {
          forward<float>(rows, params.data(), layers_, act);
          const RowMatrix<float>& z = act.h.back();
          for (std::size_t i = 0; i < count; ++i) {
            Eigen::Index best = 0;
            z.row(eidx(i)).maxCoeff(&best);
            out[begin + i] = static_cast<std::int32_t>(best);
          }
        }
      });
}

}  // namespace thinwire::problem
