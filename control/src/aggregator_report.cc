#include "braid/control/aggregator_report.h"

namespace braid::control {

AggregatorReport ReportFromStatus(const v1::JobStatus& s) {
  AggregatorReport r;
  r.job = s.job();
  r.phase = s.phase();
  r.reason = s.reason();
  r.message = s.message();
  r.round = s.round();
  r.total_rounds = s.total_rounds();
  r.clients = s.clients();
  for (const v1::RoundRecord& round : s.rounds()) {
    for (const std::string& tenant : round.tenants()) r.tenant_last_round[tenant] = round.round();
  }
  if (s.has_privacy() && s.privacy().enabled()) {
    r.privacy_enabled = true;
    r.epsilon = s.privacy().epsilon();
    r.delta = s.privacy().delta();
    r.max_epsilon = s.privacy().max_epsilon();
  }
  if (s.has_audit()) {
    // Only a well-formed anchor reaches the job's status.
    absl::StatusOr<audit::Anchor> a = audit::AnchorFromJson(
        nlohmann::json{{"entries", s.audit().entries()}, {"head", s.audit().head()}}, "audit");
    if (a.ok()) r.audit = *std::move(a);
  }
  if (s.rounds_size() > 0) {
    const v1::RoundRecord& last = s.rounds(s.rounds_size() - 1);
    r.participants = last.participants();
    r.train_loss = last.train_loss();
    r.eval_loss = last.eval_loss();
    r.eval_accuracy = last.eval_accuracy();
  }
  return r;
}

}  // namespace braid::control
