// FedAvg (McMahan et al. 2017): the new global is the old one plus the
// clients' deltas averaged by the weights the engine gave them (their
// example counts, capped, or uniform: Upload::weight).
#include <memory>
#include <string>

#include "braid/aggregator/strategy.h"
#include "strategies.h"
#include "weighted_sum.h"

namespace braid::aggregator {
namespace {

class FedAvgStrategy final : public AggregationStrategy {
 public:
  FedAvgStrategy() = default;
  FedAvgStrategy(const FedAvgStrategy&) = delete;
  FedAvgStrategy& operator=(const FedAvgStrategy&) = delete;

  absl::string_view name() const override { return "fedavg"; }
  bool masked_input() const override { return false; }

  absl::Status BeginRound(const RoundBegin& round) override {
    sum_.Reset(round.model_floats);
    total_weight_ = 0;
    return absl::OkStatus();
  }

  absl::StatusOr<FoldResult> Fold(Upload& update) override {
    // Normalized by the engine (the round's weights sum to <= 1), so the
    // weighted values stay within the range of the values themselves.
    const double weight = update.weight();
    FoldResult result;
    result.norm = sum_.Fold(update, static_cast<float>(weight));
    total_weight_ += weight;
    return result;
  }

  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) override {
    if (absl::Status s = ApplyToGlobal(sum_.values(), old_global, 1.0 / total_weight_); !s.ok()) {
      return s;
    }
    return absl::Span<const float>(sum_.values());
  }

  std::string SaveState() const override { return ""; }
  absl::Status RestoreState(absl::string_view state) override {
    if (!state.empty()) return absl::DataLossError("fedavg keeps no state, but some was saved");
    return absl::OkStatus();
  }

 private:
  WeightedSum sum_;
  double total_weight_ = 0;  // the weights folded into the sum
};

}  // namespace

std::unique_ptr<AggregationStrategy> NewFedAvgStrategy() {
  return std::make_unique<FedAvgStrategy>();
}

}  // namespace braid::aggregator
