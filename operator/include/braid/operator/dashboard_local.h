// The dashboard's source for `braid run --dashboard`: the one job this
// process runs, updated from the local runtime's status polls, and its
// audit log in the checkpoint directory. Tenants need no approval locally.
#ifndef BRAID_OPERATOR_DASHBOARD_LOCAL_H_
#define BRAID_OPERATOR_DASHBOARD_LOCAL_H_

#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/spec.h"
#include "braid/operator/dashboard_source.h"

namespace braid::op {

// The job's spec as the dashboard shows it: model, strategy, training,
// tenants, privacy (null until the spec has one).
nlohmann::json SpecSummary(const spec::JobSpec& job);

class LocalDashboardSource final : public DashboardSource {
 public:
  // `audit_path` is the job's audit.jsonl; `feed` (not owned, outlives
  // this) receives an event whenever Update sees a new round or phase.
  LocalDashboardSource(const spec::JobSpec& job, std::string audit_path, EventFeed* feed);
  LocalDashboardSource(const LocalDashboardSource&) = delete;
  LocalDashboardSource& operator=(const LocalDashboardSource&) = delete;

  // The runtime's view of the job: {"phase", "reason", "message",
  // "total_rounds", "rounds": [...]} as RunLocal's on_status passes it.
  // Cheap and never blocks on readers for long. Thread-safe.
  void Update(const nlohmann::json& status);

  nlohmann::json Jobs() const override;
  absl::StatusOr<nlohmann::json> Job(const std::string& ns, const std::string& name) const override;
  absl::StatusOr<nlohmann::json> Audit(const std::string& ns,
                                       const std::string& name) const override;
  nlohmann::json Tenants() const override;

 private:
  nlohmann::json RowLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool IsThisJob(const std::string& ns, const std::string& name) const;

  const std::string ns_, name_;
  const nlohmann::json spec_;
  const nlohmann::json tenants_;
  const std::string audit_path_;
  EventFeed* const feed_;
  mutable absl::Mutex mu_;
  nlohmann::json status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_DASHBOARD_LOCAL_H_
