#include "thinwire/optim/sgd.hpp"

#include <cmath>
#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire::optim {

void SgdOptions::validate() const {
  if (!std::isfinite(lr) || lr < 0) {
    throw InvalidArgument("sgd: lr must be finite and >= 0, got " + std::to_string(lr));
  }
  if (!std::isfinite(momentum) || momentum < 0 || momentum >= 1) {
    throw InvalidArgument("sgd: momentum must be in [0, 1), got " + std::to_string(momentum));
  }
  if (!std::isfinite(weight_decay) || weight_decay < 0) {
    throw InvalidArgument("sgd: weight_decay must be finite and >= 0, got " +
                          std::to_string(weight_decay));
  }
  if (!std::isfinite(lr_decay) || lr_decay < 0) {
    throw InvalidArgument("sgd: lr_decay must be finite and >= 0, got " + std::to_string(lr_decay));
  }
}

double Sgd::lr_at(std::uint64_t t) const noexcept {
  if (options_.lr_decay <= 0) return options_.lr;
  return options_.lr / (1.0 + static_cast<double>(t) / options_.lr_decay);
}

Sgd::Sgd(std::size_t d, const SgdOptions& options) : d_(d), options_(options) {
  options_.validate();
}

void Sgd::step(std::span<float> x, std::span<const float> g, double lr) {
  if (x.size() != d_ || g.size() != d_) {
    throw InvalidArgument("sgd: expected vectors of " + std::to_string(d_) + " elements, got x " +
                          std::to_string(x.size()) + " and g " + std::to_string(g.size()));
  }
  const auto gamma = static_cast<float>(lr);
  const auto decay = static_cast<float>(options_.weight_decay);
  const auto mu = static_cast<float>(options_.momentum);
  if (mu == 0.0f) {
    for (std::size_t i = 0; i < d_; ++i) x[i] -= gamma * (g[i] + decay * x[i]);
    return;
  }
  if (velocity_.empty()) velocity_.assign(d_, 0.0f);
  float* v = velocity_.data();
  if (options_.nesterov) {
    for (std::size_t i = 0; i < d_; ++i) {
      const float u = g[i] + decay * x[i];
      v[i] = mu * v[i] + u;
      x[i] -= gamma * (u + mu * v[i]);
    }
  } else {
    for (std::size_t i = 0; i < d_; ++i) {
      const float u = g[i] + decay * x[i];
      v[i] = mu * v[i] + u;
      x[i] -= gamma * v[i];
    }
  }
}

void Sgd::set_velocity(std::span<const float> v) {
  if (!v.empty() && v.size() != d_) {
    throw InvalidArgument("sgd: velocity has " + std::to_string(v.size()) + " elements, expected " +
                          std::to_string(d_));
  }
  velocity_.assign(v.begin(), v.end());
}

}  // namespace thinwire::optim
