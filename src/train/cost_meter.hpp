// CostMeter: prices every message a rank sends under the run's cost model (tune/cost_model.hpp,
// `--cost`): total += C(8·bytes) per message, in the order the rank sends them. It observes the
// worker's one byte counter (comm::CountingTransport, as its SendObserver), so what is priced is
// exactly what is counted. The worker sums the ranks' totals in rank order into the `cost` field
// of every metrics record, Σ over workers and messages of C(bits), for every tuner (fixed
// included), so runs compare under each technology's cost and not only in bits.
//
// The sizes and the order of one rank's messages depend only on the configuration, so the total
// is the same double on every backend; a resumed run restores the total and keeps adding in the
// same order, so it continues bit for bit. exchange() is one message sent (as CountingTransport
// counts it); what is received is priced on the sender. Further models (--report-costs) are
// priced beside the run's own, for the `costs` field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "thinwire/comm/counting.hpp"
#include "thinwire/tune/cost_model.hpp"

namespace thinwire::train {

class CostMeter final : public comm::SendObserver {
 public:
  // `model` must outlive this object.
  explicit CostMeter(const tune::CostModel& model) { add_model(model); }
  // Prices every message under `model` too (totals()[i] for the i-th model, the run's own first).
  void add_model(const tune::CostModel& model) {
    models_.push_back(&model);
    totals_.push_back(0.0);
  }

  void sent(std::size_t bytes) noexcept override {
    for (std::size_t i = 0; i < models_.size(); ++i) {
      totals_[i] += models_[i]->cost(8 * static_cast<std::uint64_t>(bytes));
    }
  }

  // Σ C(bits) of the messages sent so far (plus the restored total of a resumed run).
  [[nodiscard]] double total() const noexcept { return totals_[0]; }
  [[nodiscard]] const std::vector<double>& totals() const noexcept { return totals_; }
  void set_total(std::size_t model, double total) noexcept { totals_[model] = total; }

 private:
  std::vector<const tune::CostModel*> models_;
  std::vector<double> totals_;
};

}  // namespace thinwire::train
