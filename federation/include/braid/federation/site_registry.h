// What the coordinator's SiteFederation service asks of the sites it knows.
// braid-operator (--role coordinator) implements it with the Site objects
// and their Secrets in the coordinator cluster; tests use
// braid_federation_testing's FakeSiteRegistry.
#ifndef BRAID_FEDERATION_SITE_REGISTRY_H_
#define BRAID_FEDERATION_SITE_REGISTRY_H_

#include <string>

#include "absl/time/time.h"
#include "braid/v1/sites.pb.h"

namespace braid::federation {

struct SiteRecord {
  bool exists = false;   // a Site object of that name exists
  bool revoked = false;  // ...and is marked revoked: refused as if it did not exist
  std::string uid;       // ...its metadata.uid, which the site's certificates name
  bool member() const { return exists && !revoked; }
  // Whether a certificate naming Site uid `cert_uid` (pki::SiteUidOf)
  // speaks for this member: one issued for an earlier Site of the same name
  // does not.
  bool Admits(const std::string& cert_uid) const {
    return member() && !uid.empty() && cert_uid == uid;
  }
};

// Every method may be called from any thread, concurrently; implementations
// are thread-safe. The service calls them from gRPC's threads and from its
// own stream thread, so each returns quickly (answers from a cache, queues
// writes to the API server) and never calls back into the service.
class SiteRegistry {
 public:
  virtual ~SiteRegistry() = default;

  // The site's state now. Called at every call a site makes and, for each
  // site with an open Sync stream, at every tick of the service's stream
  // thread (the shorter of half the keepalive interval and the report
  // interval: about once a second by default): a deletion or revocation
  // takes effect there.
  virtual SiteRecord Lookup(const std::string& site) = 0;

  // Spends `site`'s one-time enrollment token if `token_digest`
  // (TokenDigest of the presented token) is its digest: compared with
  // DigestsEqual; atomic, so of concurrent callers with the right token
  // exactly one gets true, and every later call gets false. False for an
  // unknown or revoked site, a wrong token and a spent one alike.
  virtual bool SpendEnrollmentToken(const std::string& site, const std::string& token_digest) = 0;

  // A certificate naming `site` was issued (Enroll or Renew), valid until
  // `not_after`.
  virtual void OnCertificateIssued(const std::string& site, absl::Time not_after) = 0;

  // The site's Sync stream opened / ended. A stream replaced by a newer one
  // of the same site does not report its end: connected and disconnected
  // alternate per site.
  virtual void OnConnected(const std::string& site) = 0;
  virtual void OnDisconnected(const std::string& site) = 0;

  // The site's latest report, already filtered: only jobs invited to this
  // site, each once, fields bounded (see report_filter in the service).
  // At most one per CoordinatorOptions::min_report_interval per site.
  virtual void OnReport(const std::string& site, const v1::SiteReport& report) = 0;
};

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SITE_REGISTRY_H_
