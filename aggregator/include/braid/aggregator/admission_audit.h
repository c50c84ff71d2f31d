// What the operator decided about a job before and around the aggregator,
// recorded in the aggregator's audit log: the job's creation and each
// tenant's consent (approved, refused, revoked). On Kubernetes these happen
// in the API server (FederatedJob, TenantApproval objects); the operator
// writes their current state to admission.json in the job's ConfigMap,
// mounted beside the job file, and the aggregator appends what changed, so
// the tamper-evident log on its volume holds them too.
//
// admission.json:
//   {"job": {"uid": "...", "created": "2026-11-23T08:00:00Z"},
//    "tenants": [{"tenant": "st-mary", "consent": "Approved",
//                 "approval": "tenant-st-mary/fl.notes", "comment": "..."}]}
// consent is "NotRequired" | "Pending" | "Approved" | "Refused".
#ifndef BRAID_AGGREGATOR_ADMISSION_AUDIT_H_
#define BRAID_AGGREGATOR_ADMISSION_AUDIT_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "braid/core/audit_log.h"

namespace braid::aggregator {

class AdmissionAudit {
 public:
  // Appends to `log` (not owned; outlives this) as actor "operator" for job
  // `job` ("namespace/name").
  AdmissionAudit(std::string path, audit::AuditLog* log, std::string job);

  // Reads the file and appends, for what the log does not hold yet:
  //   job_created   once per job uid, details {uid, created};
  //   tenant_approved when a tenant's consent became Approved;
  //   tenant_refused  when it became Refused, or Pending after an approval
  //                   (the approval was deleted: consent revoked);
  // details {tenant, decision, approval, comment}. What earlier runs logged
  // is read back from the log on the first call, so a restarted aggregator
  // appends nothing twice. A missing file is OK (nothing to record: the
  // job runs without an operator). InvalidArgument naming the file and the
  // field for a malformed one, with nothing appended; errors of the log
  // are returned as they are. Not thread-safe: one caller polls.
  absl::Status Poll();

 private:
  absl::Status LoadLogged();

  std::string path_;
  audit::AuditLog* log_;
  std::string job_;
  bool loaded_ = false;
  std::set<std::string> created_uids_;
  // Tenant -> the last logged decision and approval: "Approved|ns/name|comment".
  std::map<std::string, std::string> last_;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_ADMISSION_AUDIT_H_
