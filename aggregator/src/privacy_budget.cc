#include "braid/aggregator/privacy_budget.h"

#include "absl/strings/str_cat.h"
#include "braid/core/log.h"

namespace braid::aggregator {

void PrivacyBudget::Restore(const std::vector<RoundRecord>& history) {
  if (!dp_.enabled) return;
  for (const RoundRecord& r : history) {
    if (absl::Status s = accountant_.AddRounds(r.sampling_rate, dp_.noise_multiplier); !s.ok()) {
      LogWarning(absl::StrCat("aggregator: round ", r.round, " in the checkpoint: ", s.ToString()));
    }
  }
}

absl::StatusOr<dp::BudgetCheck> PrivacyBudget::CheckNextRound(double q) const {
  if (!dp_.enabled) return dp::BudgetCheck{true, 0, 0};
  return accountant_.CheckNextRound(q, dp_.noise_multiplier, dp_.delta, dp_.max_epsilon);
}

absl::StatusOr<std::optional<double>> PrivacyBudget::Spend(double q) {
  if (!dp_.enabled) return std::optional<double>();
  if (absl::Status s = accountant_.AddRounds(q, dp_.noise_multiplier); !s.ok()) return s;
  absl::StatusOr<double> epsilon = accountant_.Epsilon(dp_.delta);
  if (!epsilon.ok()) return epsilon.status();
  return std::optional<double>(*epsilon);
}

}  // namespace braid::aggregator
