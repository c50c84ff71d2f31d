// The dashboard served by braid-operator (--dashboard-listen): a
// DashboardSource over informers on FederatedJobs, Tenants and
// TenantApprovals, and a DashboardAuthorizer that asks the API server
// (TokenReview for the caller's bearer token, SubjectAccessReview for each
// action). Decisions become TenantApproval objects in the tenant's
// namespace, created with the operator's own credentials after the
// caller's `create tenantapprovals` there was checked.
#ifndef BRAID_OPERATOR_DASHBOARD_KUBE_H_
#define BRAID_OPERATOR_DASHBOARD_KUBE_H_

#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "braid/kube/client.h"
#include "braid/kube/informer.h"
#include "braid/dashboard/auth.h"
#include "braid/dashboard/event_feed.h"
#include "braid/dashboard/source.h"

namespace braid::op {

class KubeDashboardSource final : public dashboard::DashboardSource {
 public:
  // `client` and `feed` (not owned) outlive this. Starts its informers.
  KubeDashboardSource(kube::Client* client, dashboard::EventFeed* feed);
  ~KubeDashboardSource() override;  // stops the informers
  KubeDashboardSource(const KubeDashboardSource&) = delete;
  KubeDashboardSource& operator=(const KubeDashboardSource&) = delete;

  // True once every informer listed once.
  bool HasSynced() const;

  // Rows from each job's status (phase, reason, message, round,
  // metrics); spec.strategy.rounds as total_rounds.
  nlohmann::json Jobs() const override;
  // Adds "spec" (as the local dashboard shows it), "rounds" (the status'
  // latest round only: per-round history lives with the aggregator) and
  // "consent" from the Tenants and TenantApprovals.
  absl::StatusOr<nlohmann::json> Job(const std::string& ns, const std::string& name) const override;
  // NotFound saying where the log is: on the aggregator's checkpoint volume.
  absl::StatusOr<nlohmann::json> Audit(const std::string& ns,
                                       const std::string& name) const override;
  nlohmann::json Tenants() const override;
  absl::StatusOr<std::string> TenantNamespace(const std::string& tenant) const override;
  // Server-side applies TenantApproval "<job namespace>.<job name>" in the
  // tenant's namespace (spec.job with the job's uid; comment names `by`).
  absl::StatusOr<nlohmann::json> Decide(const std::string& ns, const std::string& name,
                                        const std::string& tenant, bool approve,
                                        const std::string& comment, const std::string& by) override;

 private:
  std::map<std::string, nlohmann::json> TenantObjects() const;
  void OnJob(const nlohmann::json& job);

  kube::Client* const client_;
  dashboard::EventFeed* const feed_;
  std::unique_ptr<kube::Informer> jobs_, tenants_, approvals_;
  absl::Mutex mu_;
  std::map<std::string, std::pair<std::string, int>> seen_ ABSL_GUARDED_BY(mu_);  // phase, round
};

// TokenReview + SubjectAccessReview through `client` (not owned; the
// operator's service account needs create on both).
class KubeDashboardAuthorizer final : public dashboard::DashboardAuthorizer {
 public:
  explicit KubeDashboardAuthorizer(kube::Client* client) : client_(client) {}
  absl::StatusOr<dashboard::Caller> Authenticate(const std::string& token) override;
  absl::StatusOr<bool> Allowed(const dashboard::Caller& caller, const dashboard::Access& access) override;

 private:
  kube::Client* const client_;
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_DASHBOARD_KUBE_H_
