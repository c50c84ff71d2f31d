// The multi-site roles of braid-operator (docs/multi-site.md), started by
// main.cc when --role is coordinator or site. The single-cluster role of
// before is neither: it runs the job controller alone.
//
// Coordinator: keeps the federation CA in Secret <ca_secret> of its
// namespace (made on first start; its certificate alone also in ConfigMap
// <ca_secret>, for handing to sites), serves the SiteFederation endpoint
// with a certificate from that CA, and keeps the Site objects' enrollment
// Secrets and status (SiteDirectory). The job controller gets its
// Federation(). It never holds a credential for any site's cluster.
//
// Site: dials the coordinator (never listens), enrolls with its one-time
// token, keeps its identity in Secret <identity_secret> of its namespace,
// and runs the SiteReconciler on every snapshot of invitations and every
// `resync`, reporting back what it decided.
#ifndef BRAID_OPERATOR_ROLES_H_
#define BRAID_OPERATOR_ROLES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/federation/site_link.h"
#include "braid/kube/client.h"
#include "braid/operator/coordinator_federation.h"
#include "braid/operator/site_role.h"

namespace braid::op {

struct CoordinatorRoleOptions {
  std::string ns;                          // the operator's namespace
  std::string listen = "0.0.0.0:7443";     // the federation endpoint
  std::string port_file;                   // written with the bound port, if set
  // Names (DNS or IP) the endpoint's certificate carries: those sites dial.
  std::vector<std::string> server_names = {"localhost", "127.0.0.1"};
  std::string ca_secret = "braid-federation-ca";
  std::string federation_name = "braid";   // in the CA's name
  absl::Duration cert_validity = absl::Hours(24);
  absl::Duration keepalive = absl::Seconds(30);
  absl::Duration site_sync = absl::Seconds(1);  // how often Sites are listed
};

class CoordinatorRole {
 public:
  virtual ~CoordinatorRole() = default;
  virtual Federation* federation() = 0;
  virtual int port() const = 0;
  // Stops the endpoint and the Site loop. Idempotent.
  virtual void Stop() = 0;
};
absl::StatusOr<std::unique_ptr<CoordinatorRole>> StartCoordinatorRole(
    kube::Client* client, CoordinatorRoleOptions options);

struct SiteAgentOptions {
  std::string ns;  // the operator's namespace (identity Secret)
  std::string identity_secret = "braid-site-identity";
  federation::SiteLinkOptions link;
  SiteRoleOptions site;
  absl::Duration resync = absl::Seconds(2);
};

class SiteAgent {
 public:
  virtual ~SiteAgent() = default;
  virtual void Stop() = 0;  // idempotent
};
absl::StatusOr<std::unique_ptr<SiteAgent>> StartSiteAgent(kube::Client* client,
                                                          SiteAgentOptions options);

}  // namespace braid::op

#endif  // BRAID_OPERATOR_ROLES_H_
