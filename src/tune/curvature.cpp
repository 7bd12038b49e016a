#include "thinwire/tune/curvature.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "thinwire/core/error.hpp"

namespace thinwire::tune {

void SecantCurvature::observe(std::span<const float> model, std::span<const float> gradient) {
  if (model.size() != gradient.size()) {
    throw InvalidArgument("curvature: model has " + std::to_string(model.size()) +
                          " elements, gradient " + std::to_string(gradient.size()));
  }
  if (model_.size() == model.size()) {
    double dx = 0.0;
    double dg = 0.0;
    for (std::size_t i = 0; i < model.size(); ++i) {
      const double x = static_cast<double>(model[i]) - static_cast<double>(model_[i]);
      const double g = static_cast<double>(gradient[i]) - static_cast<double>(gradient_[i]);
      dx += x * x;
      dg += g * g;
    }
    move_squared_ = dx;
    if (dx > 0.0 && std::isfinite(dg)) {
      const double secant = std::sqrt(dg / dx);
      smoothness_ = smoothness_ > 0.0 ? 0.5 * smoothness_ + 0.5 * secant : secant;
    }
  }
  model_.assign(model.begin(), model.end());
  gradient_.assign(gradient.begin(), gradient.end());
}

void SecantCurvature::restore(std::vector<float> model, std::vector<float> gradient,
                              double smoothness, double move_squared) {
  if (model.size() != gradient.size()) {
    throw InvalidArgument("curvature: restored model and gradient differ in length");
  }
  model_ = std::move(model);
  gradient_ = std::move(gradient);
  smoothness_ = smoothness;
  move_squared_ = move_squared;
}

}  // namespace thinwire::tune
