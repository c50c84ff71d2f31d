// Where a site keeps its federation identity (its key, its certificate, the
// federation CA): braid-operator --role site keeps it in a Secret of its own
// cluster; FileIdentityStore keeps it in a directory.
#ifndef BRAID_FEDERATION_IDENTITY_STORE_H_
#define BRAID_FEDERATION_IDENTITY_STORE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid::federation {

struct SiteIdentity {
  std::string key_pem;   // the site's private key; never leaves the site
  std::string cert_pem;  // "site:<site>", from the federation CA
  std::string ca_pem;    // the federation CA, as Enroll/Renew returned it
};

// Thread-compatible: SiteLink never calls it concurrently.
class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  // The stored identity, nullopt when there is none yet; an error when one
  // exists but cannot be read (the link then enrolls again).
  virtual absl::StatusOr<std::optional<SiteIdentity>> Load() = 0;
  // Replaces the stored identity, atomically (a reader sees the old one or
  // the new one, whole).
  virtual absl::Status Save(const SiteIdentity& identity) = 0;
};

// `dir`/site.key (mode 0600), site.crt and ca.crt; the directory is made
// (0700) on the first Save. Load is nullopt while site.key is absent.
std::unique_ptr<IdentityStore> NewFileIdentityStore(const std::string& dir);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_IDENTITY_STORE_H_
