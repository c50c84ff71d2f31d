// The coordinator's side of braid.v1.SiteFederation (proto/braid/v1/
// sites.proto): enrollment, renewal and the Sync streams of invitations and
// site reports, and a gRPC server over TLS for it. No Kubernetes here: the
// sites are a SiteRegistry, the invitations an InvitationBoard.
//
// Who a caller is: Enroll is the only call without a client certificate
// (its token authenticates). Every other call needs a certificate issued by
// the federation CA with common name "site:<s>" (checked from gRPC's auth
// context), and speaks for <s>, never for a site a message names. At each
// call and at every keepalive tick of an open stream the registry is asked
// again: a deleted or revoked site gets PERMISSION_DENIED at its next call,
// and its open Sync stream ends within one keepalive interval.
#ifndef BRAID_FEDERATION_COORDINATOR_SERVICE_H_
#define BRAID_FEDERATION_COORDINATOR_SERVICE_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/core/pki.h"
#include "braid/federation/invitation_board.h"
#include "braid/federation/site_registry.h"
#include "braid/v1/sites.grpc.pb.h"

namespace braid::federation {

// A token bucket: up to `burst` at once, one more every `refill_every`.
struct RateLimit {
  int burst = 5;
  absl::Duration refill_every = absl::Minutes(1);
};

struct CoordinatorOptions {
  // The federation CA (certificate and key): signs the sites' certificates;
  // its certificate is returned to them as Certificate.ca_pem. Required.
  pki::KeyPair ca;
  // Lifetime of an issued site certificate. Default 24 h.
  absl::Duration cert_validity = absl::Hours(24);
  // An open Sync stream gets a keepalive marker at least this often, and a
  // revoked or deleted site's stream ends within it. Default 30 s.
  absl::Duration keepalive_interval = absl::Seconds(30);
  // Reports of one site reach the registry at most this often; the stream
  // reads no faster (the site's writes wait). Default 1 s.
  absl::Duration min_report_interval = absl::Seconds(1);
  // The largest message the server receives (a report, a CSR). Larger ones
  // end the call with RESOURCE_EXHAUSTED before they are parsed. Default 256 KiB.
  int max_receive_bytes = 256 << 10;
  // Enroll attempts, per claimed site name and over all sites. Beyond
  // either, RESOURCE_EXHAUSTED.
  RateLimit enroll_per_site{5, absl::Minutes(1)};
  RateLimit enroll_overall{30, absl::Seconds(1)};
  // Renew calls per site.
  RateLimit renew_per_site{5, absl::Minutes(1)};
};

// The service. Thread-safe. `registry`, `board` and `clock` must outlive it.
// Destroy it only after its server has shut down (the destructor waits
// until every stream is done).
class CoordinatorService final
    : public v1::SiteFederation::WithCallbackMethod_Sync<v1::SiteFederation::Service> {
 public:
  CoordinatorService(CoordinatorOptions options, SiteRegistry* registry, InvitationBoard* board,
                     Clock* clock);
  ~CoordinatorService() override;
  CoordinatorService(const CoordinatorService&) = delete;
  CoordinatorService& operator=(const CoordinatorService&) = delete;

  // UNAUTHENTICATED (one message for an unknown, revoked or mistyped site, a
  // wrong token and a spent one), INVALID_ARGUMENT (a malformed site name,
  // an oversized token, a CSR that does not parse or verify), or
  // RESOURCE_EXHAUSTED (rate limits). The token is spent only when the
  // certificate is ready to return.
  grpc::Status Enroll(grpc::ServerContext* context, const v1::EnrollRequest* request,
                      v1::Certificate* response) override;
  // UNAUTHENTICATED without a site certificate, PERMISSION_DENIED for a
  // site that is no longer a member, INVALID_ARGUMENT for a bad CSR,
  // RESOURCE_EXHAUSTED beyond renew_per_site.
  grpc::Status Renew(grpc::ServerContext* context, const v1::RenewRequest* request,
                     v1::Certificate* response) override;
  // The whole set of the site's invitations first and after each change,
  // a keepalive marker otherwise; the site's reports, filtered, to the
  // registry. One stream per site: a new one ends the old (ABORTED).
  // Ends with PERMISSION_DENIED when the site stops being a member or its
  // certificate expires, UNAVAILABLE at shutdown.
  grpc::ServerBidiReactor<v1::SiteReport, v1::InvitationSet>* Sync(
      grpc::CallbackServerContext* context) override;

  // Ends every open stream (UNAVAILABLE), refuses new ones, stops the
  // service's thread and waits up to 5 s for the streams to be done (a
  // site that stopped reading holds its stream until the server's own
  // shutdown cancels it). Idempotent.
  void Shutdown();

  // Sync streams open now (for tests and metrics).
  int open_streams() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A running gRPC server for a CoordinatorService.
class CoordinatorServer {
 public:
  virtual ~CoordinatorServer() = default;
  // The port it listens on (the one asked for, or the one picked for 0).
  virtual int port() const = 0;
  virtual CoordinatorService& service() = 0;
  // Ends every stream, stops accepting calls and waits for them to end.
  // Idempotent; the destructor calls it.
  virtual void Shutdown() = 0;
};

struct CoordinatorServerOptions {
  std::string address = "0.0.0.0:0";  // host:port; port 0 picks one
  // The server's certificate and key, issued by the federation CA for the
  // name the sites dial (pki::Issue, server use). Required.
  pki::KeyPair server;
  CoordinatorOptions service;
};

// Starts the server: TLS with `options.server`, client certificates
// requested and verified against the federation CA when presented (Enroll
// has none). InvalidArgument for missing material, Unavailable if the
// address cannot be bound.
absl::StatusOr<std::unique_ptr<CoordinatorServer>> StartCoordinatorServer(
    CoordinatorServerOptions options, SiteRegistry* registry, InvitationBoard* board,
    Clock* clock);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_COORDINATOR_SERVICE_H_
