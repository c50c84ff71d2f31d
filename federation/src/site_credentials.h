// The site link's credential steps, apart from its threads: dialling the
// coordinator, making a key and CSR, judging a stored identity and a
// certificate the coordinator returned.
#ifndef BRAID_FEDERATION_SRC_SITE_CREDENTIALS_H_
#define BRAID_FEDERATION_SRC_SITE_CREDENTIALS_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/pki.h"
#include "braid/federation/identity_store.h"
#include "braid/federation/site_link.h"
#include "braid/v1/sites.pb.h"

namespace braid::federation {

// A channel to the coordinator of its own (no shared connection), trusting
// only options.ca_bundle_pem, presenting `identity` when given.
std::shared_ptr<grpc::Channel> DialCoordinator(const SiteLinkOptions& options,
                                               const SiteIdentity* identity);

// A new key and a CSR for it.
struct KeyAndCsr {
  std::string key_pem;
  std::string csr_pem;
};
absl::StatusOr<KeyAndCsr> NewKeyAndCsr();

// The identity made of `key`'s key and the coordinator's `cert`; Internal
// when the certificate does not parse, names another site than `site`, or
// is not for that key (the coordinator is then broken or hostile).
absl::StatusOr<SiteIdentity> IdentityFrom(const std::string& site, KeyAndCsr key,
                                          const v1::Certificate& cert);

// The certificate of a stored identity when it is usable for `site` at
// `now` (parses, names the site, not expired, matches the key); an error
// saying why not otherwise.
absl::StatusOr<pki::CertInfo> UsableIdentity(const SiteIdentity& identity,
                                             const std::string& site, absl::Time now);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_SITE_CREDENTIALS_H_
