// The job's differential-privacy budget: the RDP accountant over the rounds
// aggregated so far (see DpOptions). Without DP every round is allowed and
// nothing is spent.
#ifndef BRAID_AGGREGATOR_PRIVACY_BUDGET_H_
#define BRAID_AGGREGATOR_PRIVACY_BUDGET_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "braid/aggregator/checkpoint.h"
#include "braid/aggregator/dp_options.h"
#include "braid/core/dp/rdp_accountant.h"

namespace braid::aggregator {

// Thread-compatible: the round engine calls it under its mutex.
class PrivacyBudget {
 public:
  explicit PrivacyBudget(const DpOptions& dp) : dp_(dp) {}

  bool enabled() const { return dp_.enabled; }
  // Composes the rounds a checkpoint's history aggregated (a restarted
  // aggregator goes on from the budget spent). A record the accountant
  // refuses is skipped and reported through the log.
  void Restore(const std::vector<RoundRecord>& history);
  // Whether one more round at sampling rate q stays within max_epsilon at
  // delta (always allowed without DP). Errors from the accountant.
  absl::StatusOr<dp::BudgetCheck> CheckNextRound(double q) const;
  // Composes one aggregated round at sampling rate q; returns epsilon spent
  // after it, or nullopt without DP.
  absl::StatusOr<std::optional<double>> Spend(double q);
  // Rounds composed so far.
  int rounds() const { return static_cast<int>(accountant_.rounds()); }

 private:
  const DpOptions dp_;
  dp::RdpAccountant accountant_;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_PRIVACY_BUDGET_H_
