// CostMeter: a transport decorator that prices every message a rank sends under the run's cost
// model (tune/cost_model.hpp, `--cost`): total += C(8·bytes) per message, in the order the rank
// sends them. The worker sums the ranks' totals in rank order into the `cost` field of every
// metrics record, Σ over workers and messages of C(bits), for every tuner (fixed included), so
// runs compare under each technology's cost and not only in bits.
//
// The sizes and the order of one rank's messages depend only on the configuration, so the total
// is the same double on every backend; a resumed run restores the total and keeps adding in the
// same order, so it continues bit for bit. exchange() is one message sent (as CountingTransport
// counts it); what is received is priced on the sender. Further models (--report-costs) are
// priced beside the run's own, for the `costs` field.
#pragma once

#include <cstdint>
#include <vector>

#include "thinwire/comm/transport.hpp"
#include "thinwire/tune/cost_model.hpp"

namespace thinwire::train {

class CostMeter final : public comm::Transport {
 public:
  // `inner` and `model` must outlive this object.
  CostMeter(comm::Transport& inner, const tune::CostModel& model) : inner_(inner) {
    set_timeout(inner.timeout());
    add_model(model);
  }
  // Prices every message under `model` too (totals()[i] for the i-th model, the run's own first).
  void add_model(const tune::CostModel& model) {
    models_.push_back(&model);
    totals_.push_back(0.0);
  }
  CostMeter(const CostMeter&) = delete;
  CostMeter& operator=(const CostMeter&) = delete;

  [[nodiscard]] int rank() const noexcept override { return inner_.rank(); }
  [[nodiscard]] int size() const noexcept override { return inner_.size(); }

  void send(int peer, std::span<const std::byte> data, int tag = 0) override {
    sync_timeout().send(peer, data, tag);
    charge(data.size());
  }
  [[nodiscard]] comm::Bytes recv(int peer, int tag = 0) override {
    return sync_timeout().recv(peer, tag);
  }
  [[nodiscard]] comm::Bytes exchange(int to, std::span<const std::byte> data, int from,
                                     int tag = 0) override {
    comm::Bytes message = sync_timeout().exchange(to, data, from, tag);
    charge(data.size());
    return message;
  }
  void barrier() override { sync_timeout().barrier(); }
  void flush() override { sync_timeout().flush(); }

  [[nodiscard]] double clock_seconds() const override { return inner_.clock_seconds(); }
  void advance_clock(double seconds) override { inner_.advance_clock(seconds); }

  // Σ C(bits) of the messages sent so far (plus the restored total of a resumed run).
  [[nodiscard]] double total() const noexcept { return totals_[0]; }
  [[nodiscard]] const std::vector<double>& totals() const noexcept { return totals_; }
  void set_total(std::size_t model, double total) noexcept { totals_[model] = total; }

 private:
  comm::Transport& sync_timeout() {
    inner_.set_timeout(timeout());
    return inner_;
  }
  void charge(std::size_t bytes) noexcept {
    for (std::size_t i = 0; i < models_.size(); ++i) {
      totals_[i] += models_[i]->cost(8 * static_cast<std::uint64_t>(bytes));
    }
  }

  comm::Transport& inner_;
  std::vector<const tune::CostModel*> models_;
  std::vector<double> totals_;
};

}  // namespace thinwire::train
