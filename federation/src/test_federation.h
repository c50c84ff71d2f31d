// Test-only helpers of braid_federation_test: a federation CA, a
// coordinator server on loopback with TLS, and a site's calls made by hand.
#ifndef BRAID_FEDERATION_SRC_TEST_FEDERATION_H_
#define BRAID_FEDERATION_SRC_TEST_FEDERATION_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "braid/core/pki.h"
#include "braid/federation/coordinator_service.h"
#include "braid/federation/identity_store.h"
#include "braid/federation/testing/fake_site_registry.h"
#include "braid/v1/sites.grpc.pb.h"
#include "gtest/gtest.h"

namespace braid::federation::test {

struct Pki {
  pki::KeyPair ca;
  pki::KeyPair server;  // "coordinator", for 127.0.0.1 and localhost
};

inline Pki MakePki() {
  Pki p;
  absl::StatusOr<pki::KeyPair> ca = pki::MakeFederationCa("test", absl::Hours(1));
  EXPECT_TRUE(ca.ok()) << ca.status();
  p.ca = *ca;
  pki::CertRequest req;
  req.common_name = "coordinator";
  req.dns_names = {"localhost"};
  req.ip_addresses = {"127.0.0.1"};
  req.server = true;
  absl::StatusOr<pki::KeyPair> server = pki::Issue(p.ca, req);
  EXPECT_TRUE(server.ok()) << server.status();
  p.server = *server;
  return p;
}

// Options fast enough for tests: keepalive 200 ms, reports unthrottled.
inline CoordinatorOptions FastOptions(const Pki& p) {
  CoordinatorOptions o;
  o.ca = p.ca;
  o.cert_validity = absl::Hours(2);
  o.keepalive_interval = absl::Milliseconds(200);
  o.min_report_interval = absl::ZeroDuration();
  o.max_receive_bytes = 64 << 10;
  return o;
}

inline std::unique_ptr<CoordinatorServer> StartServer(const Pki& p, CoordinatorOptions options,
                                                      SiteRegistry* registry,
                                                      InvitationBoard* board, int port = 0) {
  CoordinatorServerOptions o;
  o.address = "127.0.0.1:" + std::to_string(port);
  o.server = p.server;
  o.service = std::move(options);
  absl::StatusOr<std::unique_ptr<CoordinatorServer>> server =
      StartCoordinatorServer(std::move(o), registry, board, RealClock());
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// A stub for 127.0.0.1:`port` trusting `ca_pem`, with a client identity
// when `identity` has a certificate.
inline std::unique_ptr<v1::SiteFederation::Stub> Stub(int port, const std::string& ca_pem,
                                                      const SiteIdentity& identity = {}) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ca_pem;
  tls.pem_private_key = identity.key_pem;
  tls.pem_cert_chain = identity.cert_pem;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::SiteFederation::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::SslCredentials(tls), args));
}

inline std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(10)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

// Enrolls `site` with `token` and a fresh key; the identity on success.
inline grpc::Status Enroll(int port, const std::string& ca_pem, const std::string& site,
                           const std::string& token, SiteIdentity* out = nullptr,
                           v1::Certificate* cert_out = nullptr) {
  SiteIdentity id;
  id.key_pem = *pki::MakeKey();
  v1::EnrollRequest req;
  req.set_site(site);
  req.set_token(token);
  req.set_csr_pem(*pki::MakeCsr(id.key_pem));
  v1::Certificate cert;
  grpc::Status s = Stub(port, ca_pem)->Enroll(Context().get(), req, &cert);
  if (s.ok()) {
    id.cert_pem = cert.cert_pem();
    id.ca_pem = cert.ca_pem();
    if (out != nullptr) *out = id;
    if (cert_out != nullptr) *cert_out = cert;
  }
  return s;
}

// Blocks until `done()` holds or `timeout` passes (a condition checked every
// few milliseconds, for state that has no waitable signal of its own).
inline bool Eventually(const std::function<bool()>& done,
                       absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

}  // namespace braid::federation::test

#endif  // BRAID_FEDERATION_SRC_TEST_FEDERATION_H_
