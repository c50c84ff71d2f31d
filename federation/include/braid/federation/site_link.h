// A site's side of braid.v1.SiteFederation: braid-operator --role site
// dials out to the coordinator (a site never opens a port), enrolls once
// with its one-time token and a CSR for a key it makes itself, renews its
// certificate at two thirds of its lifetime, and keeps one Sync stream:
// each InvitationSet snapshot goes to a callback, and the site's latest
// report goes up on every connect and whenever it changes.
#ifndef BRAID_FEDERATION_SITE_LINK_H_
#define BRAID_FEDERATION_SITE_LINK_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/federation/identity_store.h"
#include "braid/v1/sites.pb.h"

namespace braid::federation {

struct SiteLinkOptions {
  std::string coordinator_address;  // host:port of the federation endpoint. Required.
  // The name the coordinator's certificate must carry, when it differs
  // from the host dialled (empty: that host).
  std::string server_name;
  // The CA(s) the coordinator's certificate must chain to (PEM). Required.
  // The link trusts only these for the coordinator, whatever Enroll returns.
  std::string ca_bundle_pem;
  std::string site;  // this site's name, as the coordinator's Site object. Required.
  // The one-time enrollment token; needed only while there is no valid
  // identity in the store.
  std::string enrollment_token;
  // Reconnect back-off after any failure: starts at `initial_backoff`,
  // doubles up to `max_backoff`, each wait drawn uniformly from
  // [half, whole] (jitter); reset once a stream delivered a snapshot.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(2);
  // A stream that brings nothing (not even a keepalive marker) for this
  // long is given up and dialled again. Default 3 x the coordinator's
  // default keepalive interval.
  absl::Duration liveness_timeout = absl::Seconds(90);
  // The largest message accepted from the coordinator. Default 16 MiB.
  int max_receive_bytes = 16 << 20;
  // Deadline of an Enroll or Renew call.
  absl::Duration call_timeout = absl::Seconds(30);
};

// Called on the link's thread with each snapshot (never a keepalive marker):
// the whole set of this site's invitations. Must not call Stop(). What it
// receives is the coordinator's claim: the site's operator checks every
// invitation against its own Tenants and policy.
using InvitationsCallback = std::function<void(const v1::InvitationSet& snapshot)>;

// What the link is doing, for the site's status and logs.
struct SiteLinkState {
  bool enrolled = false;        // holds a certificate
  bool connected = false;       // a Sync stream delivered a snapshot and is open
  absl::Time cert_not_after;    // of the certificate held (InfinitePast: none)
  absl::Status last_error;      // the last failure (OK: none since the last connect)
  int connects = 0;             // streams that delivered a first snapshot
};

class SiteLink {
 public:
  virtual ~SiteLink() = default;

  // Replaces the report the site sends: on every connect, and now if a
  // stream is open (reports not yet sent are replaced, never queued).
  // Thread-safe.
  virtual void SetReport(v1::SiteReport report) = 0;

  virtual SiteLinkState state() const = 0;

  // Ends the stream and the link's thread; returns when it has ended.
  // Idempotent; the destructor calls it.
  virtual void Stop() = 0;
};

// Starts the link's thread. InvalidArgument (naming the field) for missing
// options or an invalid site name. `store` and `clock` must outlive the
// link. Every failure afterwards (refused enrollment, unreachable
// coordinator, revoked site) is logged, kept in state().last_error and
// retried after the back-off; enrollment is retried too, since an admin may
// issue a new token, which the link then needs to be restarted with.
// Not detected: a stored identity from an earlier federation CA (the
// coordinator was reinstalled with a new one) fails every TLS handshake
// (UNAVAILABLE); clear the store and give a new token.
absl::StatusOr<std::unique_ptr<SiteLink>> StartSiteLink(SiteLinkOptions options,
                                                        IdentityStore* store,
                                                        InvitationsCallback on_invitations,
                                                        Clock* clock);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SITE_LINK_H_
