#include "braid/aggregator/claims.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace braid::aggregator {

absl::Status CheckExamples(int64_t examples, int64_t min, absl::string_view field) {
  if (examples < min || examples > kMaxExamplesClaim) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be in [", min, ", ",
                                                   kMaxExamplesClaim, "] (2^40), got ",
                                                   examples));
  }
  return absl::OkStatus();
}

absl::Status CheckMetrics(const ClientMetrics& m, absl::string_view field) {
  if (!std::isfinite(m.loss) || std::fabs(m.loss) > kMaxLossMagnitude) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s.loss: must be a finite number of magnitude <= %g, got %g", field, kMaxLossMagnitude,
        m.loss));
  }
  if (!(m.accuracy >= 0 && m.accuracy <= 1)) {  // NaN fails both
    return absl::InvalidArgumentError(
        absl::StrFormat("%s.accuracy: must be in [0, 1], got %g", field, m.accuracy));
  }
  return CheckExamples(m.num_examples, 0, absl::StrCat(field, ".num_examples"));
}

const char* CapReasonName(CapReason reason) {
  switch (reason) {
    case CapReason::kNone: return "none";
    case CapReason::kJoinClaim: return "join_claim";
    case CapReason::kMaxExamples: return "max_examples";
    case CapReason::kOtherTenants: return "other_tenants";
  }
  return "none";
}

RoundWeights::RoundWeights(const WeightingOptions& options,
                           const std::vector<CohortMember>& cohort)
    : weighting_(options.weighting) {
  if (weighting_ == Weighting::kUniform) {
    for (const CohortMember& m : cohort) members_[m.client_id] = Allowance{};
    total_ = static_cast<double>(members_.size());
    return;
  }
  // Allowances from the join claims and declarations; tenants' totals.
  std::map<std::string, double> tenant_total;
  std::map<std::string, bool> tenant_declared;
  for (const CohortMember& m : cohort) {
    Allowance a;
    a.examples = static_cast<double>(std::max<int64_t>(1, m.joined_examples));
    auto declared = options.max_examples.find(m.tenant);
    if (declared != options.max_examples.end() && declared->second > 0) {
      a.declared = declared->second;
      a.examples = std::min(a.examples, static_cast<double>(a.declared));
    }
    tenant_total[m.tenant] += a.examples;
    tenant_declared[m.tenant] = a.declared > 0;
    members_[m.client_id] = a;
  }
  // Undeclared tenants: no more than the heaviest other tenant.
  std::map<std::string, double> tenant_scale;
  for (const auto& [tenant, total] : tenant_total) {
    double heaviest_other = 0;
    for (const auto& [other, other_total] : tenant_total) {
      if (other != tenant) heaviest_other = std::max(heaviest_other, other_total);
    }
    double scale = 1;
    if (!tenant_declared[tenant] && heaviest_other > 0 && total > heaviest_other) {
      scale = heaviest_other / total;
    }
    tenant_scale[tenant] = scale;
  }
  for (const CohortMember& m : cohort) {
    Allowance& a = members_[m.client_id];
    a.scale = tenant_scale[m.tenant];
    total_ += a.examples * a.scale;
  }
}

absl::StatusOr<UpdateWeight> RoundWeights::For(const std::string& client_id,
                                               int64_t examples) const {
  auto it = members_.find(client_id);
  if (it == members_.end()) {
    return absl::NotFoundError(absl::StrCat(client_id, " is not in the round's cohort"));
  }
  const Allowance& a = it->second;
  UpdateWeight w;
  if (weighting_ == Weighting::kUniform) {
    w.examples = 1;
  } else {
    w.examples = static_cast<double>(std::max<int64_t>(1, examples));
    if (w.examples > a.examples) {
      w.capped = a.declared > 0 && w.examples > static_cast<double>(a.declared)
                     ? CapReason::kMaxExamples
                     : CapReason::kJoinClaim;
      w.examples = a.examples;
    }
    if (a.scale < 1) {
      w.examples *= a.scale;
      w.capped = CapReason::kOtherTenants;
    }
  }
  w.weight = w.examples / total_;
  return w;
}

double RoundWeights::PublicWeight(const std::string& client_id) const {
  auto it = members_.find(client_id);
  if (it == members_.end() || total_ <= 0) return 0;
  const double mean = total_ / static_cast<double>(members_.size());
  return it->second.examples * it->second.scale / mean;
}

}  // namespace braid::aggregator
