// The dashboard's data seam: what `/api/` serves, from wherever it comes.
// `braid run --dashboard` serves a LocalDashboardSource (one job on this
// machine); the operator can serve a cluster-backed source through the same
// DashboardServer later.
//
// Every method returns JSON in the shapes docs/dashboard.md documents.
#ifndef BRAID_OPERATOR_DASHBOARD_SOURCE_H_
#define BRAID_OPERATOR_DASHBOARD_SOURCE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace braid::op {

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

// One live update: a round completed or a job's phase changed.
struct DashboardEvent {
  int64_t id = 0;  // increasing from 1
  nlohmann::json data;  // {"type": "round"|"phase", "namespace", "name", "phase", "round"}
};

// A bounded feed of events for Server-Sent Events: sources Publish, each
// SSE connection waits for events after the last id it sent. Thread-safe.
class EventFeed {
 public:
  explicit EventFeed(size_t keep = 1024) : keep_(keep) {}
  // Appends an event and wakes every waiter; returns its id.
  int64_t Publish(nlohmann::json data);
  // The events with id > after, waiting up to `timeout` for one when there
  // are none. Empty on timeout or once Close() was called. Events older
  // than the last `keep` are dropped; a slow reader skips them.
  std::vector<DashboardEvent> After(int64_t after, absl::Duration timeout);
  int64_t last_id() const;
  // Wakes every waiter for good (the server is stopping).
  void Close();
  bool closed() const;

 private:
  const size_t keep_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<DashboardEvent> events_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_DASHBOARD_SOURCE_H_
