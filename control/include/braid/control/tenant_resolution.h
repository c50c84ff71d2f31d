// Matching a FederatedJob's tenants to the cluster's Tenant objects: where
// each tenant's workers run and whether the tenant allows what the job asks.
// A pure function, so the rules are unit-tested without a cluster.
#ifndef BRAID_CONTROL_TENANT_RESOLUTION_H_
#define BRAID_CONTROL_TENANT_RESOLUTION_H_

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "braid/core/spec.h"

namespace braid::control {

struct TenantProblem {
  std::string path;     // e.g. "spec.tenants[1].data.persistentVolumeClaim.claimName"
  std::string reason;   // CamelCase: TenantNotFound, NamespaceMismatch, NeedsClaim,
                        // ClaimNotAllowed, ModelNotAllowed, TooManyRounds,
                        // PrivacyRequired, PrivacyBudgetTooLarge; for site
                        // tenants SitesNeedCoordinator, SiteNotFound, SiteRevoked
                        // (and at the site, site_invitation.h)
  std::string message;  // for people: what is wrong and what to do
};

struct TenantResolution {
  // tenant name -> namespace, for resolved tenants of this cluster (never a
  // site tenant's: its site places its workers).
  std::map<std::string, std::string> namespaces;
  std::vector<TenantProblem> problems;            // empty when every tenant may run
  // Site tenants of a job admitted before whose Site has since been revoked
  // (SiteRevoked) or deleted (SiteNotFound): not problems of the job, which
  // goes on without them (as when a site refuses) while its minimums hold.
  std::vector<TenantProblem> departed;
};

// `tenants` maps Tenant metadata.name to the Tenant object (JSON as the API
// server returns it). For each job tenant of this cluster (no site), in
// order: the Tenant must exist; the job's tenant namespace, when given, must
// equal Tenant.spec.namespace; the data must be a persistentVolumeClaim with
// a subPath (the CSV file in the claim) and the claim must be one of
// Tenant.spec.dataSources; the Tenant's policy must allow the model kind
// (policy.allowedModels) and the number of rounds (policy.maxRounds).
//
// Site tenants (spec.tenants[].site) are resolved by their site, against
// the site's own Tenant (ResolveSiteInvitation); here, at the coordinator,
// only the Site must allow it: `sites` maps Site metadata.name to the Site
// object, and is nullptr for an operator that is not a coordinator (single
// role, `braid run`), where a site tenant is SitesNeedCoordinator. A Site
// that does not exist is SiteNotFound, one with spec.revoked true
// SiteRevoked (both at spec.tenants[i].site); for a job already
// `admitted`, those tenants are `departed` instead. Whether the site has
// enrolled or is connected does not matter here: its invitation waits.
TenantResolution ResolveTenants(const spec::JobSpec& job,
                                const std::map<std::string, nlohmann::json>& tenants,
                                const std::map<std::string, nlohmann::json>* sites = nullptr,
                                bool admitted = false);

// The policy part alone (what `braid run --tenants` checks too): the
// Tenant object `tenant` of job tenant `name` must allow the model kind
// (ModelNotAllowed) and the number of rounds (TooManyRounds); with
// policy.maxEpsilon the job must use differential privacy
// (PrivacyRequired) with maxEpsilon no larger (PrivacyBudgetTooLarge).
std::vector<TenantProblem> PolicyProblems(const spec::JobSpec& job, const std::string& name,
                                          const nlohmann::json& tenant);

}  // namespace braid::control

#endif  // BRAID_CONTROL_TENANT_RESOLUTION_H_
