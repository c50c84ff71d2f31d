// The dashboard's data seam: what `/api/` serves, from wherever it comes.
// `braid run --dashboard` serves the CLI's LocalDashboardSource (one job on
// this machine, cli/dashboard_local.h); braid-operator --dashboard-listen
// serves KubeDashboardSource (informers, operator/dashboard_kube.h) through
// the same DashboardServer. The live updates are an EventFeed
// (event_feed.h).
//
// Every method returns JSON in the shapes docs/dashboard.md documents.
#ifndef BRAID_DASHBOARD_SOURCE_H_
#define BRAID_DASHBOARD_SOURCE_H_

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"

namespace braid::dashboard {

class DashboardSource {
 public:
  virtual ~DashboardSource() = default;
  // {"jobs": [{"namespace", "name", "phase", "reason", "message", "round",
  //   "total_rounds", "train_loss", "eval_loss", "eval_accuracy", "epsilon",
  //   "max_epsilon"}]}; absent metrics are null.
  virtual nlohmann::json Jobs() const = 0;
  // One job: the Jobs() fields plus "spec" (model, strategy, training,
  // tenants, privacy) and "rounds" (per-round records). NotFound naming the
  // job when there is no such job.
  virtual absl::StatusOr<nlohmann::json> Job(const std::string& ns,
                                             const std::string& name) const = 0;
  // {"path", "entries": [...], "verification": {"ok", "entries", "line",
  //  "problem", "text"}}; NotFound when the job or its log does not exist
  // (yet).
  virtual absl::StatusOr<nlohmann::json> Audit(const std::string& ns,
                                               const std::string& name) const = 0;
  // {"tenants": [{"name", "namespace", "jobs", "replicas", "policy",
  //   "approval"}]}; "approval" is "not required", or per job
  // "<ns>/<name>: Pending|Approved|Refused". Job() adds "consent":
  // [{"tenant", "namespace", "consent": NotRequired|Pending|Approved|Refused,
  //   "comment"}].
  virtual nlohmann::json Tenants() const = 0;

  // The namespace of tenant `tenant` (where its approvals live). NotFound
  // when there is no such tenant.
  virtual absl::StatusOr<std::string> TenantNamespace(const std::string& tenant) const = 0;

  // Records `tenant`'s decision on job ns/name; `by` names the deciding
  // user (kept in the approval's comment and the audit log). Returns the
  // approval recorded. NotFound for an unknown job or tenant;
  // FailedPrecondition when decisions cannot be recorded here.
  virtual absl::StatusOr<nlohmann::json> Decide(const std::string& ns, const std::string& name,
                                                const std::string& tenant, bool approve,
                                                const std::string& comment,
                                                const std::string& by) = 0;
};

// The job's spec as every dashboard shows it: model, strategy, training,
// tenants, privacy (null until the spec has one).
nlohmann::json SpecSummary(const spec::JobSpec& job);

// A Jobs() row from a FederatedJob `status` (as control::ComputeStatus
// writes it: phase, reason, message, round, metrics, privacy; missing
// fields give "Pending", "" and nulls). `total_rounds` is spec.strategy.rounds;
// max_epsilon is status.privacy.maxEpsilon, else `spec_max_epsilon` (null
// without differential privacy). Both sources build rows with it, so the
// cluster and `braid run` show a job alike.
nlohmann::json JobRow(const std::string& ns, const std::string& name,
                      const nlohmann::json& status, const nlohmann::json& total_rounds,
                      const nlohmann::json& spec_max_epsilon);

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_SOURCE_H_
