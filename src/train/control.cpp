#include "control.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "thinwire/core/error.hpp"

namespace thinwire::train {
namespace {

template <typename T>
std::span<const std::byte> bytes_of(std::span<const T> values) {
  return std::as_bytes(values);
}

template <typename T>
std::vector<T> values_of(const comm::Bytes& bytes, std::size_t expected, int rank) {
  if (bytes.size() != expected * sizeof(T)) {
    throw TransportError("control plane: rank " + std::to_string(rank) + " sent " +
                         std::to_string(bytes.size()) + " bytes, expected " +
                         std::to_string(expected * sizeof(T)));
  }
  std::vector<T> values(expected);
  if (expected > 0) std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

}  // namespace

std::vector<comm::Bytes> ControlPlane::gather(std::span<const std::byte> mine) {
  const int me = transport_.rank();
  if (me != kRoot) {
    transport_.send(kRoot, mine, kTagControl);
    return {};
  }
  std::vector<comm::Bytes> all(static_cast<std::size_t>(transport_.size()));
  all[kRoot].assign(mine.begin(), mine.end());
  for (int r = 0; r < transport_.size(); ++r) {
    if (r != kRoot) all[static_cast<std::size_t>(r)] = transport_.recv(r, kTagControl);
  }
  return all;
}

comm::Bytes ControlPlane::broadcast(std::span<const std::byte> root_bytes) {
  if (transport_.rank() == kRoot) {
    for (int r = 0; r < transport_.size(); ++r) {
      if (r != kRoot) transport_.send(r, root_bytes, kTagControl);
    }
    return comm::Bytes(root_bytes.begin(), root_bytes.end());
  }
  return transport_.recv(kRoot, kTagControl);
}

std::vector<double> ControlPlane::sum_to_root(std::span<const double> mine) {
  const std::vector<comm::Bytes> all = gather(bytes_of(mine));
  std::vector<double> sum(mine.size(), 0.0);
  for (std::size_t r = 0; r < all.size(); ++r) {
    const std::vector<double> v = values_of<double>(all[r], mine.size(), static_cast<int>(r));
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += v[i];
  }
  return sum;
}

double ControlPlane::max_to_root(double mine) {
  const std::vector<comm::Bytes> all = gather(bytes_of(std::span<const double>(&mine, 1)));
  double best = mine;
  for (std::size_t r = 0; r < all.size(); ++r) {
    best = std::max(best, values_of<double>(all[r], 1, static_cast<int>(r))[0]);
  }
  return best;
}

std::vector<float> ControlPlane::average_to_root(std::span<const float> mine) {
  const std::vector<comm::Bytes> all = gather(bytes_of(mine));
  if (all.empty()) return {};
  std::vector<double> sum(mine.size(), 0.0);
  for (std::size_t r = 0; r < all.size(); ++r) {
    const std::vector<float> v = values_of<float>(all[r], mine.size(), static_cast<int>(r));
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += static_cast<double>(v[i]);
  }
  const double scale = 1.0 / static_cast<double>(all.size());
  std::vector<float> mean(mine.size());
  for (std::size_t i = 0; i < sum.size(); ++i) mean[i] = static_cast<float>(sum[i] * scale);
  return mean;
}

void ControlPlane::handshake() {
  const std::byte token{1};
  (void)gather(std::span<const std::byte>(&token, 1));
  (void)broadcast(std::span<const std::byte>(&token, 1));
}

}  // namespace thinwire::train
