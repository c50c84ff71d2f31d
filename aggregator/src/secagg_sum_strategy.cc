// Secure aggregation's strategy: the aggregator never holds an individual
// update in the clear. Each client pre-scales its update by a public weight
// (see SecAggTask::weight) and masks it; the masked inputs are summed in the
// attempt's ring, which the protocol unmasks once the survivors are known.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/secagg_round.h"
#include "braid/aggregator/strategy.h"
#include "central_noise.h"
#include "strategies.h"
#include "weighted_sum.h"

namespace braid::aggregator {
namespace {

class SecAggSumStrategy final : public AggregationStrategy {
 public:
  explicit SecAggSumStrategy(const DpOptions& dp) : dp_(dp), noise_(dp) {}
  SecAggSumStrategy(const SecAggSumStrategy&) = delete;
  SecAggSumStrategy& operator=(const SecAggSumStrategy&) = delete;

  absl::string_view name() const override { return "secagg-sum"; }
  bool masked_input() const override { return true; }

  absl::Status BeginRound(const RoundBegin& round) override {
    if (round.secagg == nullptr) {
      return absl::FailedPreconditionError(
          "secure-aggregation strategy without a secure-aggregation attempt");
    }
    secagg_ = round.secagg;
    round_ = round.round;
    sampled_ = round.sampled;
    return absl::OkStatus();
  }

  absl::StatusOr<FoldResult> Fold(Upload& update) override {
    // The ring add reads the whole input; the upload's destructor marks it
    // consumed.
    if (absl::Status s = secagg_->AddMaskedInput(update.client_id(), update.data(),
                                                 update.total_bytes());
        !s.ok()) {
      return s;
    }
    return FoldResult{};  // no individual norm is known
  }

  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) override {
    if (secagg_ == nullptr || secagg_->stage() != SecAggStage::kDone) {
      return absl::FailedPreconditionError(
          absl::StrCat("round ", round_, ": secure aggregation has not unmasked the sum"));
    }
    // DP: a fixed denominator (the clients sampled); else FedAvg by the
    // survivors' public weights.
    const double denominator = dp_.enabled ? sampled_ : secagg_->contributor_weight();
    sum_ = std::move(secagg_->sum());
    secagg_ = nullptr;
    if (dp_.enabled && dp_.central_noise) {
      if (absl::Status s = noise_.Add(round_, absl::MakeSpan(sum_)); !s.ok()) return s;
    }
    if (absl::Status s = ApplyToGlobal(sum_, old_global, 1.0 / denominator); !s.ok()) return s;
    return absl::Span<const float>(sum_);
  }

  std::string SaveState() const override { return ""; }
  absl::Status RestoreState(absl::string_view state) override {
    if (!state.empty()) {
      return absl::DataLossError("secagg-sum keeps no state, but some was saved");
    }
    return absl::OkStatus();
  }

 private:
  const DpOptions dp_;
  CentralNoise noise_;
  SecAggRound* secagg_ = nullptr;  // the attempt in progress; not owned
  std::vector<float> sum_;         // the last round's result
  int round_ = 0;
  int sampled_ = 1;
};

}  // namespace

std::unique_ptr<AggregationStrategy> NewSecAggSumStrategy(const DpOptions& dp) {
  return std::make_unique<SecAggSumStrategy>(dp);
}

}  // namespace braid::aggregator
