// DP-FedAvg (McMahan et al. 2018, client level, central noise): see
// DpOptions. The privacy budget (the accountant) is the engine's: it decides
// whether a round may run at all.
#include <memory>
#include <string>

#include "braid/aggregator/strategy.h"
#include "central_noise.h"
#include "strategies.h"
#include "weighted_sum.h"

namespace braid::aggregator {
namespace {

class DpFedAvgStrategy final : public AggregationStrategy {
 public:
  explicit DpFedAvgStrategy(const DpOptions& dp) : dp_(dp), noise_(dp) {}
  DpFedAvgStrategy(const DpFedAvgStrategy&) = delete;
  DpFedAvgStrategy& operator=(const DpFedAvgStrategy&) = delete;

  absl::string_view name() const override { return "dp-fedavg"; }
  bool masked_input() const override { return false; }

  absl::Status BeginRound(const RoundBegin& round) override {
    sum_.Reset(round.model_floats);
    round_ = round.round;
    sampled_ = round.sampled;
    return absl::OkStatus();
  }

  absl::StatusOr<FoldResult> Fold(Upload& update) override {
    // Every client weighs 1, clipped here too, so that a client that
    // skipped clipping gains no influence.
    double weight = 1;
    const double l2 = update.l2_norm();
    if (dp_.central_noise && l2 > dp_.clip_norm) weight = dp_.clip_norm / l2;
    FoldResult result;
    result.norm = sum_.Fold(update, static_cast<float>(weight));
    return result;
  }

  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) override {
    // Noise on the sum, and a fixed denominator (the clients sampled), so
    // that one client moves the average by <= clip_norm / sampled.
    if (dp_.central_noise) {
      if (absl::Status s = noise_.Add(round_, absl::MakeSpan(sum_.values())); !s.ok()) return s;
    }
    if (absl::Status s = ApplyToGlobal(sum_.values(), old_global, 1.0 / sampled_); !s.ok()) {
      return s;
    }
    return absl::Span<const float>(sum_.values());
  }

  std::string SaveState() const override { return ""; }
  absl::Status RestoreState(absl::string_view state) override {
    if (!state.empty()) return absl::DataLossError("dp-fedavg keeps no state, but some was saved");
    return absl::OkStatus();
  }

 private:
  const DpOptions dp_;
  CentralNoise noise_;
  WeightedSum sum_;
  int round_ = 0;
  int sampled_ = 1;
};

}  // namespace

std::unique_ptr<AggregationStrategy> NewDpFedAvgStrategy(const DpOptions& dp) {
  return std::make_unique<DpFedAvgStrategy>(dp);
}

}  // namespace braid::aggregator
