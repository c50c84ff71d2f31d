// The coordinator's member sites (braid-operator --role coordinator): the
// Site objects of its cluster, their one-time enrollment tokens (Secrets in
// the operator's namespace) and what each site's link last said. It is the
// SiteRegistry the SiteFederation service asks, and what the job reconciler
// reads per-site states from.
//
// Enrollment: a Site that never enrolled gets a Secret
// "braid-enrollment-<site>" (key `token`) in the operator's namespace, named
// in the Site's status.enrollmentSecret; the admin hands the token to the
// site's platform team. The first Enroll with it spends it: the Secret is
// deleted and status.enrolledAt set, so no second token is ever made for that
// Site object. To enroll a site again, delete and re-create its Site.
//
// Status (written by Sync() when it changed): phase Pending (never
// enrolled) | Enrolled (certificate issued, never connected) | Connected |
// Disconnected | Revoked (spec.revoked), enrolledAt, lastSeen (connects,
// disconnects and reports), certificateNotAfter, enrollmentSecret.
#ifndef BRAID_OPERATOR_SITE_DIRECTORY_H_
#define BRAID_OPERATOR_SITE_DIRECTORY_H_

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/federation/site_registry.h"
#include "braid/kube/client.h"

namespace braid::op {

inline const kube::ResourceRef kSite{"braid.dev/v1alpha1", "Site", "sites", false};

// The Secret holding `site`'s enrollment token.
std::string EnrollmentSecretName(const std::string& site);

// What a site last said of one job, and whether it is reachable.
struct SiteJobView {
  bool member = false;     // the Site exists and is not revoked
  bool connected = false;  // its Sync stream is open
  std::optional<v1::InvitationState> state;  // its last report of the job, if any
};

class SiteDirectory final : public federation::SiteRegistry {
 public:
  // `client` and `clock` must outlive it. Secrets live in `ns`.
  SiteDirectory(kube::Client* client, std::string ns, Clock* clock);

  // Lists the Site objects and Secrets, refreshes the cache that Lookup
  // answers from, makes the enrollment Secrets missing for sites never
  // enrolled, and writes each Site's status that changed. The coordinator
  // calls it every second or so; a Site deleted or revoked is refused from
  // the next Sync() on.
  absl::Status Sync();

  SiteJobView View(const std::string& site, const std::string& job_uid) const;
  // The Site objects as last listed, by name.
  std::map<std::string, nlohmann::json> Sites() const;

  // federation::SiteRegistry
  federation::SiteRecord Lookup(const std::string& site) override;
  bool SpendEnrollmentToken(const std::string& site, const std::string& token_digest) override;
  void OnCertificateIssued(const std::string& site, absl::Time not_after) override;
  void OnConnected(const std::string& site) override;
  void OnDisconnected(const std::string& site) override;
  void OnReport(const std::string& site, const v1::SiteReport& report) override;

 private:
  struct Entry {
    std::string uid;  // metadata.uid of the Site object
    bool exists = false;
    bool revoked = false;
    std::string token_digest;  // of the token in its Secret; "" when none
    bool enrolled = false;     // status.enrolledAt was set, or a token was spent here
    std::string enrolled_at;
    bool connected = false;
    bool ever_connected = false;
    std::string last_seen;
    std::string cert_not_after;
    std::map<std::string, v1::InvitationState> jobs;  // job uid -> last report
    nlohmann::json written_status;                  // as last read or written
    nlohmann::json object;                          // the Site as last listed
  };
  nlohmann::json StatusOf(const std::string& site, const Entry& e) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  kube::Client* const client_;
  const std::string ns_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> sites_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_SITE_DIRECTORY_H_
