#include "thinwire/core/rng.hpp"

#include <cmath>
#include <numbers>

namespace thinwire {

double RngStream::next_normal() noexcept {
  // 1 - u keeps the argument of log in (0, 1].
  const double u1 = 1.0 - next_uniform_double();
  const double u2 = next_uniform_double();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace thinwire
