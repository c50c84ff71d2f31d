// Which tenant of the job a verified peer speaks for, from its client
// certificate (the aggregator runs mTLS; gRPC has already verified the
// chain to one of the trusted client CAs):
//   "tenant:<t>"  a worker of tenant <t> of this cluster (spec.tenants[]
//                 without site), issued by the job's CA (--tls-ca);
//   "site:<s>"    a worker of the one job tenant whose spec.tenants[].site is
//                 <s> (multi-site), issued by the federation CA, which the
//                 aggregator trusts for client certificates only when given
//                 it (--tls-client-ca-extra).
// A site certificate never speaks for a tenant of this cluster nor for
// another site's tenant; a tenant certificate never speaks for a site
// tenant; a certificate from the federation CA is only ever a site's, and
// only while the coordinator admits its site (site_admission.h). Thread-safe.
#ifndef BRAID_AGGREGATOR_PEER_BINDING_H_
#define BRAID_AGGREGATOR_PEER_BINDING_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "braid/aggregator/site_admission.h"
#include "braid/core/spec.h"

namespace braid::aggregator {

// The peer's verified leaf certificate (PEM) as gRPC saw it; "" over
// plaintext.
std::string PeerCertificatePem(const grpc::ServerContext& ctx);

class PeerBinding {
 public:
  // Tenant certificates only, for any tenant name (the aggregator without
  // sites, as before multi-site).
  PeerBinding() = default;

  // For `job`: its site tenants are bound to their sites. `site_ca_pem`
  // holds the federation CA certificate(s) (PEM, one or more); "" when the
  // aggregator admits no site certificate. InvalidArgument when it does not
  // parse, holds no certificate, or holds one of `job_ca_pem`'s
  // certificates (a job CA named as the federation CA would make every
  // tenant certificate look like a site's). With a federation CA,
  // `admission` is required (InvalidArgument without it): a site's
  // certificate speaks for its tenant only while it admits the site.
  static absl::StatusOr<PeerBinding> Create(const spec::JobSpec& job,
                                            const std::string& job_ca_pem,
                                            const std::string& site_ca_pem,
                                            std::shared_ptr<SiteAdmission> admission = nullptr);

  // The job tenant that a peer with certificate `peer_cert_pem` (verified
  // by gRPC) and common name `common_name` speaks for; PermissionDenied
  // saying why otherwise (the message is for the caller and names only
  // what its certificate says and what the job declares).
  absl::StatusOr<std::string> TenantOf(const std::string& common_name,
                                       const std::string& peer_cert_pem) const;

  // Whether a peer may read the job's status (GetStatus): any certificate
  // of the job's CA (the operator, the tenants), and a federation-CA
  // certificate only when it speaks for a tenant of this job, so that a
  // site the job does not name learns nothing of it. PermissionDenied
  // otherwise.
  absl::Status MayReadStatus(const std::string& common_name,
                             const std::string& peer_cert_pem) const;

  bool admits_sites() const { return !site_cas_.empty(); }

 private:
  // Whether `peer_cert_pem` was signed by one of site_cas_.
  bool IssuedBySiteCa(const std::string& peer_cert_pem) const;

  std::map<std::string, std::string> tenant_of_site_;  // site -> job tenant
  std::map<std::string, std::string> site_of_tenant_;  // job tenant -> site (site tenants)
  std::vector<std::shared_ptr<void>> site_cas_;        // X509*, owned
  std::shared_ptr<SiteAdmission> admission_;           // set with site_cas_
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_PEER_BINDING_H_
