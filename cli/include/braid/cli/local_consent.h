// Tenant policy and consent for `braid run`: the same Tenant objects and the
// same rules as the operator (control/tenant_resolution.h,
// control/tenant_approval.h), with the approvals kept as files in the run's
// working directory instead of TenantApproval objects:
//
//   <workdir>/consent.json              written by `braid run --tenants`: the
//                                       job ({namespace, name, uid}) and its
//                                       tenants' namespaces, for `braid approve`
//   <workdir>/approvals/<tenant>.json   one TenantApproval object per tenant
//                                       (apiVersion braid.dev/v1alpha1), the
//                                       latest decision; written atomically
//
// The job's uid locally is the SHA-256 of its job file: an approval given
// for one version of a job file does not carry over to an edited one.
#ifndef BRAID_CLI_LOCAL_CONSENT_H_
#define BRAID_CLI_LOCAL_CONSENT_H_

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"
#include "braid/control/tenant_approval.h"
#include "braid/control/tenant_resolution.h"

namespace braid::cli {

// Reads Tenant objects (kind: Tenant, as for kubectl apply: one or several
// YAML documents, or a List with items) and maps metadata.name to each
// object as JSON. InvalidArgument naming the file (and line) for YAML that
// does not parse, a document that is not a Tenant, or a Tenant without
// metadata.name; NotFound when the file cannot be read.
absl::StatusOr<std::map<std::string, nlohmann::json>> ReadTenantsFile(const std::string& path);

// The Tenant policy rules that apply on one machine: allowed models and
// maximum rounds (reasons ModelNotAllowed, TooManyRounds, with the
// operator's messages). Claims and namespaces are Kubernetes-only. A job
// tenant without a Tenant object has no policy.
std::vector<control::TenantProblem> LocalPolicyProblems(const spec::JobSpec& job,
                                               const std::map<std::string, nlohmann::json>& tenants);

std::string ApprovalsDir(const std::string& workdir);
std::string ConsentFile(const std::string& workdir);

// Writes <workdir>/consent.json for `braid approve`. Errors name the file.
absl::Status WriteConsentFile(const std::string& workdir, const control::JobRef& job,
                              const std::map<std::string, nlohmann::json>& tenants);

// The TenantApproval objects under <workdir>/approvals/ (none when the
// directory does not exist). Files that do not parse are skipped: a
// decision being written is renamed into place whole.
std::vector<nlohmann::json> ReadApprovals(const std::string& workdir);

// The consent of each job tenant from the files in `workdir`.
std::vector<control::TenantConsent> LocalConsent(const spec::JobSpec& job, const control::JobRef& ref,
                                        const std::map<std::string, nlohmann::json>& tenants,
                                        const std::string& workdir);

struct Decision {
  std::string tenant;
  bool approve = true;
  std::string comment;
  std::string by;  // who decided, e.g. "braid approve (user alice)" or "dashboard"
};

// Records a decision for the run in `workdir` (reads its consent.json):
// writes approvals/<tenant>.json and appends tenant_approved or
// tenant_refused (tenant, by, comment) to the run's audit log. Returns the
// TenantApproval written. FailedPrecondition when the workdir has no
// consent.json (no `braid run --tenants` used it); NotFound when the tenant
// is not one of the job's.
absl::StatusOr<nlohmann::json> RecordDecision(const std::string& workdir, const Decision& d);

}  // namespace braid::cli

#endif  // BRAID_CLI_LOCAL_CONSENT_H_
