// Tenant consent: which of a job's tenants have agreed that the job may use
// their data. A pure function of the job, the Tenant objects and the
// TenantApproval objects, so the rules are unit-tested without a cluster.
//
// A Tenant whose spec.policy.requireApproval is true must approve each job
// by a TenantApproval in the tenant's own namespace (Tenant.spec.namespace),
// so Kubernetes RBAC on that namespace decides who may approve:
//
//   apiVersion: braid.dev/v1alpha1
//   kind: TenantApproval
//   metadata: {name: notes-lora, namespace: tenant-st-mary}
//   spec:
//     tenant: st-mary
//     job: {namespace: consortium, name: notes-lora, uid: <optional>}
//     decision: Approved            # or Refused
//     comment: reviewed by the data protection officer
//
// An approval counts for a job when its namespace is the tenant's, its
// spec.tenant is the tenant and spec.job names the job (and, when
// spec.job.uid is set, that uid: an approval for a deleted job does not
// carry over to a new one of the same name). Several matching approvals:
// Refused wins over Approved. Deleting the approval, or changing it to
// Refused, revokes consent.
#ifndef BRAID_CONTROL_TENANT_APPROVAL_H_
#define BRAID_CONTROL_TENANT_APPROVAL_H_

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "braid/core/spec.h"

namespace braid::control {

enum class Consent { kNotRequired, kPending, kApproved, kRefused };

// "NotRequired" | "Pending" | "Approved" | "Refused" (the status field).
const char* ConsentName(Consent consent);

struct TenantConsent {
  std::string tenant;
  Consent consent = Consent::kNotRequired;
  // "namespace/name" of the deciding TenantApproval, if any; for a site
  // tenant "site:<site>" (the site decided, in its own cluster).
  std::string approval;
  std::string comment;   // its spec.comment; for a site tenant the site's reason and message
};

// What a site last reported about a job's invitation (proto/braid/v1
// sites.proto InvitationState), as the coordinator relays it. The site a
// report is for is the one in the certificate of the connection it came
// on, never a field of the report.
struct SiteReport {
  // Invited | AwaitingApproval | Running | Refused | Succeeded | Failed
  std::string state;
  std::string reason;   // CamelCase
  std::string message;  // for people
};

struct JobRef {
  std::string namespace_;
  std::string name;
  std::string uid;
};

// One entry per job tenant, in spec order. `tenants` maps Tenant
// metadata.name to the Tenant object; a tenant missing there is
// kNotRequired here (tenant resolution reports it). `approvals` are
// TenantApproval objects from any namespace; those that do not match are
// ignored.
//
// A site tenant (spec.tenants[].site) consents at its site, by the site's
// own Tenant and TenantApprovals; the coordinator knows only what the site
// reported: `site_reports` maps the job's tenant name to the last report.
// No report, Invited, AwaitingApproval or an unknown state: kPending;
// Running, Succeeded or Failed (the site let its workers start): kApproved;
// Refused: kRefused. `tenants` and `approvals` are never read for a site
// tenant (the coordinator's own objects cannot consent for a site).
std::vector<TenantConsent> ResolveConsent(
    const spec::JobSpec& job, const JobRef& ref,
    const std::map<std::string, nlohmann::json>& tenants,
    const std::vector<nlohmann::json>& approvals,
    const std::map<std::string, SiteReport>& site_reports = {});

// At a site (braid-operator --role site): the consent of job tenant
// `tenant` (the invitation's, a site tenant of `job`) by the site's own
// Tenant object `tenant_object` and the TenantApprovals of the site's
// cluster, with the rules above: kNotRequired unless the Tenant's
// policy.requireApproval is true; then an approval must be in the Tenant's
// spec.namespace, name `tenant` in spec.tenant and `ref` (the coordinator's
// job namespace, name and uid, as the invitation says) in spec.job.
// Refused wins. A `tenant` that is not in `job` is kPending.
TenantConsent ResolveSiteConsent(const spec::JobSpec& job, const JobRef& ref,
                                 const std::string& tenant, const nlohmann::json& tenant_object,
                                 const std::vector<nlohmann::json>& approvals);

// Whether the job may start (or keep running) given the consent: a job not
// yet admitted starts only when no tenant is kPending and the tenants that
// may take part (kNotRequired or kApproved) have at least
// strategy.minClients replicas between them. Once admitted, a job keeps
// running; tenants that are not kNotRequired/kApproved have their workers
// stopped.
struct Admission {
  bool admit = false;
  std::string reason;   // when !admit: AwaitingApproval | TenantRefused
  std::string message;  // for people: which tenants, what to do
};
Admission DecideAdmission(const spec::JobSpec& job, const std::vector<TenantConsent>& consent);

// True when tenant `consent` lets its workers run.
inline bool MayRun(Consent consent) {
  return consent == Consent::kNotRequired || consent == Consent::kApproved;
}

// admission.json for the aggregator's audit log: {"job": {"uid",
// "created"}, "tenants": [{"tenant", "consent" (ConsentName), "approval",
// "comment"}]} for `job` (the FederatedJob object) and its tenants'
// `consent`. Deterministic (the ConfigMap changes only when consent does).
std::string AdmissionJson(const nlohmann::json& job, const std::vector<TenantConsent>& consent);

}  // namespace braid::control

#endif  // BRAID_CONTROL_TENANT_APPROVAL_H_
