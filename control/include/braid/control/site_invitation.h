// A site's view of an invitation (multi-site): the coordinator asks this
// site's Tenant to take part in a job as one of the job's tenants; the site
// decides with its own Tenant object, never with anything the coordinator
// says about the site's data. A pure function, so the rules are unit-tested
// without a cluster; braid-operator --role site applies it to each
// FederatedInvitation before it creates a worker.
#ifndef BRAID_CONTROL_SITE_INVITATION_H_
#define BRAID_CONTROL_SITE_INVITATION_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "braid/control/tenant_resolution.h"
#include "braid/core/spec.h"

namespace braid::control {

struct SiteInvitationView {
  // Where this site's workers for the job run and what they mount; set
  // only when `problems` is empty.
  std::string namespace_;  // the Tenant's spec.namespace
  std::string claim_name;  // the dataset's claimName, in namespace_
  std::string sub_path;    // the dataset's subPath: the data file in the claim
  // Why the site refuses, in the order found; empty when it may take part
  // (subject to consent: ResolveConsent with `tenant` -> the Tenant object).
  // Paths are the job's fields (spec.tenants[i].dataset, spec.model.kind,
  // ...), so a refusal names what the job would have to change. Messages may
  // travel back to the coordinator (InvitationState.message): they never
  // hold the site's claim names, paths or other dataset names.
  std::vector<TenantProblem> problems;
};

// The site `site` (its Site name, as its certificate says) resolves job
// tenant `tenant` of `job` (the job file the coordinator sent, parsed with
// check_files false) against its own Tenant object `tenant_object` (JSON as
// the API server returns it). Problems, each refusing the invitation:
//   TenantNotFound   `job` has no tenant named `tenant` (path spec.tenants)
//   NotASiteTenant   that tenant names data, not a site (…[i].site)
//   SiteMismatch     that tenant names another site (…[i].site): an
//                    invitation meant for another site is never run here
//   TenantNotReady   the Tenant object has no spec.namespace (…[i].site)
//   DatasetNotFound  the Tenant lists no such dataset in spec.datasets, or
//                    lists it without claimName or a safe subPath
//                    (…[i].dataset)
// and, whatever the above, the Tenant's policy (PolicyProblems: model kind,
// rounds, privacy budget), checked here by the site itself even though the
// coordinator may have checked nothing.
SiteInvitationView ResolveSiteInvitation(const spec::JobSpec& job, const std::string& site,
                                         const std::string& tenant,
                                         const nlohmann::json& tenant_object);

}  // namespace braid::control

#endif  // BRAID_CONTROL_SITE_INVITATION_H_
