// A FederatedJob's status from what a runtime observed: a pure function,
// so phases and conditions are unit-tested without a cluster. Both runtimes
// use it: braid-operator writes it into the object's status; `braid run`
// hands it to its dashboard (cli/local_runtime.h on_status), so a job reads
// the same on one machine as in the cluster.
//
// Phases: Pending (waiting for tenants or the aggregator), AwaitingApproval
// (a tenant that requires approval has not given it), Running, Succeeded,
// Failed, Suspended. A phase the aggregator reported as final
// (Succeeded, or Failed with its reason) stays final; phases from the spec
// or the tenants are recomputed every time, so fixing the cause clears them.
// With differential privacy, status.privacy {epsilon, delta, maxEpsilon}
// comes from the aggregator's report (kept from `previous` while the
// aggregator does not answer). status.audit {entries, head} is the audit
// log's head as the aggregator last reported it (kept from `previous` while
// it reports none): a copy of the log that no longer holds that entry with
// that hash was cut or rewritten (`braid audit verify`).
// Conditions (list-map keyed by type, each with observedGeneration and a
// lastTransitionTime that only moves when the status flips): Valid,
// TenantsReady, Admitted, AggregatorReady, WorkersReady, Complete.
#ifndef BRAID_CONTROL_JOB_STATUS_H_
#define BRAID_CONTROL_JOB_STATUS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/time/time.h"
#include "braid/core/audit_log.h"
#include "braid/core/spec.h"
#include "braid/control/tenant_approval.h"
#include "braid/control/tenant_resolution.h"

namespace braid::control {

// What the aggregator said when polled (its GetStatus answer).
struct AggregatorReport {
  std::string job;      // the job the aggregator runs (must be the one asked about)
  std::string phase;    // Pending | Running | Succeeded | Failed
  std::string reason;   // CamelCase
  std::string message;
  int round = 0;        // rounds completed
  int total_rounds = 0;
  int clients = 0;      // workers joined now
  // The last completed round, when round > 0.
  int participants = 0;
  double train_loss = 0;
  double eval_loss = 0;
  double eval_accuracy = 0;
  std::map<std::string, int> tenant_last_round;  // tenant -> last round it contributed to
  // Differential privacy (the job's spec.privacy.differentialPrivacy), when
  // privacy_enabled: epsilon spent so far at delta, and the budget.
  bool privacy_enabled = false;
  double epsilon = 0;
  double delta = 0;
  double max_epsilon = 0;
  // The audit log's head after the aggregator's last append ({0, ""}: none
  // reported, or not a well-formed anchor).
  audit::Anchor audit;
};

struct WorkerCounts {
  std::string namespace_;  // "" for a tenant at a site
  int desired = 0;
  int ready = 0;
  // A tenant at a site (multi-site): the site, and what it is doing with the
  // job as its coordinator sees it: Invited | AwaitingApproval | Running |
  // Refused | Succeeded | Failed | Disconnected | Revoked.
  std::string site;
  std::string site_state;
};

struct ObservedJob {
  int64_t generation = 0;
  std::vector<spec::FieldError> spec_errors;  // non-empty: the spec is invalid
  std::vector<TenantProblem> tenant_problems;
  // Consent, when the tenants resolved: per tenant in spec order, what
  // DecideAdmission() said now, and whether the job is admitted (now, or
  // already before: admission is kept once given, see WasAdmitted()).
  std::vector<TenantConsent> consent;
  Admission admission;
  bool admitted = true;  // the default: no tenant requires approval
  bool suspended = false;
  int rounds = 0;                             // spec.strategy.rounds
  std::string aggregator_endpoint;
  int aggregator_ready = 0;                   // ready aggregator pods
  std::map<std::string, WorkerCounts> workers;  // tenant -> its worker pods
  std::optional<AggregatorReport> report;     // absent: not reached (yet)
  std::string poll_error;                     // why the last poll failed, if it did
};

// The status to write. `previous` is the job's current status (may be
// null or empty); `now` is an RFC 3339 time for transitions.
nlohmann::json ComputeStatus(const ObservedJob& observed, const nlohmann::json& previous,
                             const std::string& now);

// True when the job was admitted before: its previous status has the
// condition Admitted=True. Revoking consent later stops that tenant's
// workers; it does not stop the job.
bool WasAdmitted(const nlohmann::json& status);

// True for Succeeded and Failed.
bool IsFinalPhase(const std::string& phase);

// True when the aggregator's report ended the job (so workers may stop):
// the previous status has a final phase that came from the aggregator.
bool EndedByAggregator(const nlohmann::json& status);

// `t` in RFC 3339, UTC, seconds precision (for ComputeStatus's `now`).
std::string Rfc3339(absl::Time t);

}  // namespace braid::control

#endif  // BRAID_CONTROL_JOB_STATUS_H_
