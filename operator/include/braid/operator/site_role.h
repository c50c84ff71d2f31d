// braid-operator --role site: a site's side of multi-site Braid, in the
// site's own cluster. The coordinator's invitations (federation/site_link.h)
// become FederatedInvitation objects in the namespace of this site's Tenant;
// the site decides each one itself, with its own Tenant (dataset -> claim,
// policy) and its own TenantApprovals (control/site_invitation.h,
// control::ResolveSiteConsent), and only then creates the workers, which
// dial the job's aggregator with the site's certificate. The coordinator
// never learns claim names, never holds a credential for this cluster and
// cannot choose the image the workers run (the site's --worker-image).
//
// Per invitation, in order (the FederatedInvitation's status.phase and the
// state reported back):
//   Refused           the job file does not parse, the invitation is not for
//                     this site, the Tenant lacks the dataset, its policy
//                     forbids the job (reason and message name the field),
//                     or a TenantApproval refused it: no workers (removed if
//                     they ran: revocation stops them at once)
//   AwaitingApproval  policy.requireApproval and no approval yet: no workers
//   Running           workers created (status.workersReady counts them)
//   Withdrawn         the coordinator no longer invites this site (the job
//                     ended, was suspended or deleted): workers removed
#ifndef BRAID_OPERATOR_SITE_ROLE_H_
#define BRAID_OPERATOR_SITE_ROLE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/federation/identity_store.h"
#include "braid/kube/client.h"
#include "braid/v1/sites.pb.h"

namespace braid::op {

inline const kube::ResourceRef kFederatedInvitation{"braid.dev/v1alpha1", "FederatedInvitation",
                                                    "federatedinvitations", true};

inline constexpr absl::Duration kSiteReapplyInterval = absl::Minutes(10);

struct SiteRoleOptions {
  std::string site;    // this site's name, as the coordinator's Site object
  std::string tenant;  // the Tenant object (cluster-scoped) the invitations run as
  std::string worker_image = "braid/worker:0.1.0";  // the site's own choice
  std::string image_pull_policy = "IfNotPresent";
};

// The site's identity (key, certificate, federation CA) kept in Secret
// `name` of namespace `ns` in the site's own cluster (keys site.key,
// site.crt, ca.crt), so a restarted site operator keeps its enrollment.
std::unique_ptr<federation::IdentityStore> NewSecretIdentityStore(kube::Client* client,
                                                                  std::string ns,
                                                                  std::string name);

class SiteReconciler {
 public:
  // `client` must outlive it.
  SiteReconciler(kube::Client* client, SiteRoleOptions options);

  // Makes the site's cluster match `invitations` (the coordinator's last
  // snapshot) and returns the report for the coordinator: one state per
  // invitation. `identity` is the site's own (its certificate and key go to
  // the workers' TLS Secret). Not thread-safe: one caller (the site's agent
  // loop) calls it every few seconds, so what did not change is not written
  // again; unchanged workers' objects are applied again after
  // kSiteReapplyInterval (restoring what was edited by hand). Errors talking to the API server are returned
  // (the caller retries); a bad invitation is Refused, never an error.
  absl::StatusOr<v1::SiteReport> Reconcile(const std::vector<v1::Invitation>& invitations,
                                           const federation::SiteIdentity& identity);

 private:
  // `existing`: the invitation's object as listed, or null.
  absl::StatusOr<v1::InvitationState> ReconcileOne(const v1::Invitation& invitation,
                                                   const federation::SiteIdentity& identity,
                                                   const nlohmann::json& tenant_object,
                                                   const std::vector<nlohmann::json>& approvals,
                                                   const nlohmann::json* existing);
  // The workers' objects applied (when they changed or are due again);
  // returns how many of their pods are ready.
  absl::StatusOr<int> ApplyWorkers(const std::string& ns, const std::string& job_uid,
                                   const std::vector<nlohmann::json>& objects);
  // Deletes the job's worker objects in `ns` (Deployments, NetworkPolicy,
  // ConfigMap, TLS Secret).
  absl::Status RemoveWorkers(const std::string& ns, const std::string& job_uid);
  // RemoveWorkers unless the invitation's status already says they are gone
  // (it is written only after they were removed).
  absl::Status StopWorkers(const nlohmann::json& invitation_object);
  absl::Status WriteStatus(const nlohmann::json& invitation_object, const v1::InvitationState& state);

  kube::Client* const client_;
  const SiteRoleOptions options_;
  struct Applied {
    size_t hash = 0;  // of the objects last applied
    absl::Time at;
  };
  std::map<std::string, Applied> applied_;  // job uid -> its workers' objects
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_SITE_ROLE_H_
