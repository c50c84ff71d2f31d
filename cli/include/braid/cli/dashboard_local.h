// The dashboard's source for `braid run --dashboard`: the one job this
// process runs, updated from the local runtime's status polls, and its
// audit log in the checkpoint directory, and, with `braid run --tenants`,
// the tenants' policy and consent (decisions recorded in the workdir, see
// local_consent.h).
#ifndef BRAID_CLI_DASHBOARD_LOCAL_H_
#define BRAID_CLI_DASHBOARD_LOCAL_H_

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/spec.h"
#include "braid/dashboard/event_feed.h"
#include "braid/dashboard/source.h"
#include "braid/control/tenant_approval.h"

namespace braid::cli {

// What the source needs to show and record consent: the run's workdir,
// the Tenant objects (empty: no tenant needs approval) and the job's uid.
struct LocalTenancy {
  std::string workdir;
  std::map<std::string, nlohmann::json> tenants;
  std::string job_uid;
};

class LocalDashboardSource final : public dashboard::DashboardSource {
 public:
  // `audit_path` is the job's audit.jsonl; `feed` (not owned, outlives
  // this) receives an event whenever Update sees a new round or phase.
  LocalDashboardSource(const spec::JobSpec& job, std::string audit_path, dashboard::EventFeed* feed,
                       LocalTenancy tenancy = {});
  LocalDashboardSource(const LocalDashboardSource&) = delete;
  LocalDashboardSource& operator=(const LocalDashboardSource&) = delete;

  // The runtime's view of the job: {"status": the FederatedJob status
  // (control::ComputeStatus, as the operator writes it), "rounds": [...]}
  // as RunLocal's on_status passes it. Publishes an event on a new round or
  // phase, or a new message while awaiting approval. Cheap and never blocks
  // on readers for long. Thread-safe.
  void Update(const nlohmann::json& status);

  nlohmann::json Jobs() const override;
  absl::StatusOr<nlohmann::json> Job(const std::string& ns, const std::string& name) const override;
  absl::StatusOr<nlohmann::json> Audit(const std::string& ns,
                                       const std::string& name) const override;
  nlohmann::json Tenants() const override;
  absl::StatusOr<std::string> TenantNamespace(const std::string& tenant) const override;
  // Writes the decision with RecordDecision (FailedPrecondition without
  // Tenant objects) and publishes a "consent" event.
  absl::StatusOr<nlohmann::json> Decide(const std::string& ns, const std::string& name,
                                        const std::string& tenant, bool approve,
                                        const std::string& comment, const std::string& by) override;

 private:
  std::vector<control::TenantConsent> ConsentOfTenants() const;
  nlohmann::json RowLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool IsThisJob(const std::string& ns, const std::string& name) const;

  const spec::JobSpec job_;
  const LocalTenancy tenancy_;
  const std::string ns_, name_;
  const nlohmann::json spec_;
  const std::string audit_path_;
  dashboard::EventFeed* const feed_;
  mutable absl::Mutex mu_;
  nlohmann::json status_ ABSL_GUARDED_BY(mu_);  // {"status", "rounds"}
};

}  // namespace braid::cli

#endif  // BRAID_CLI_DASHBOARD_LOCAL_H_
