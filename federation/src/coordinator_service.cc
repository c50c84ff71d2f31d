#include "braid/federation/coordinator_service.h"

#include "absl/strings/str_cat.h"
#include "braid/core/log.h"
#include "braid/federation/enrollment_token.h"
#include "braid/core/dns_name.h"
#include "peer_identity.h"
#include "rate_limiter.h"
#include "sync_hub.h"
#include "sync_stream.h"

namespace braid::federation {
namespace {

// One message for every refused enrollment, so that a caller learns nothing
// about which sites exist or which tokens were spent.
constexpr char kEnrollRefused[] =
    "enrollment refused: the site name or the token is wrong, or the token was already used "
    "(ask the coordinator's administrator for a new token)";

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

class CoordinatorService::Impl {
 public:
  Impl(CoordinatorOptions options, SiteRegistry* registry, InvitationBoard* board, Clock* clock)
      : options_(std::move(options)),
        registry_(registry),
        board_(board),
        clock_(clock),
        enroll_per_site_(options_.enroll_per_site),
        enroll_overall_(options_.enroll_overall, 1),
        renew_per_site_(options_.renew_per_site),
        hub_(&options_, registry, board, clock) {}

  grpc::Status Enroll(const v1::EnrollRequest& request, v1::Certificate* response);
  grpc::Status Renew(const grpc::ServerContext& context, const v1::RenewRequest& request,
                     v1::Certificate* response);
  grpc::ServerBidiReactor<v1::SiteReport, v1::InvitationSet>* Sync(
      grpc::CallbackServerContext* context) {
    return new SyncStream(context, &hub_, &options_, registry_, board_, clock_);
  }
  void Shutdown(absl::Time deadline) {
    hub_.Shutdown();
    hub_.AwaitIdle(deadline);
  }
  int open_streams() const { return hub_.open_streams(); }

 private:
  // A certificate for `site` (naming its Site's `uid`) from `csr_pem`, in
  // `response`.
  grpc::Status IssueFor(const std::string& site, const std::string& uid, const std::string& csr_pem,
                        v1::Certificate* response);

  const CoordinatorOptions options_;
  SiteRegistry* const registry_;
  InvitationBoard* const board_;
  Clock* const clock_;
  RateLimiter enroll_per_site_;
  RateLimiter enroll_overall_;
  RateLimiter renew_per_site_;
  SyncHub hub_;
};

grpc::Status CoordinatorService::Impl::IssueFor(const std::string& site, const std::string& uid,
                                               const std::string& csr_pem,
                                               v1::Certificate* response) {
  pki::CertRequest request;
  request.common_name = pki::SiteCommonName(site);
  if (!uid.empty()) request.uris = {pki::SiteUidUri(uid)};
  request.client = true;
  request.validity = options_.cert_validity;
  absl::StatusOr<std::string> cert = pki::SignCsr(options_.ca, csr_pem, request);
  if (!cert.ok()) {
    absl::Status s = cert.status();
    return ToGrpc(absl::Status(s.code(), absl::StrCat("csr_pem: ", s.message())));
  }
  absl::StatusOr<pki::CertInfo> info = pki::InspectCert(*cert);
  if (!info.ok()) return ToGrpc(info.status());
  response->set_cert_pem(*std::move(cert));
  response->set_ca_pem(options_.ca.cert_pem);
  response->set_not_after_unix(absl::ToUnixSeconds(info->not_after));
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Impl::Enroll(const v1::EnrollRequest& request,
                                              v1::Certificate* response) {
  if (!IsDns1123Label(request.site())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "site: must be a DNS-1123 label (a-z, 0-9, '-', at most 63)");
  }
  if (request.token().empty() || request.token().size() > kMaxTokenBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("token: must be 1 to ", kMaxTokenBytes, " bytes"));
  }
  const absl::Time now = clock_->Now();
  if (!enroll_overall_.Allow("", now)) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many enrollment attempts; try again later");
  }
  if (!enroll_per_site_.Allow(request.site(), now)) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many enrollment attempts for this site; try again later");
  }
  // Sign first, spend last: a bad CSR does not cost the site its token. And
  // the CSR is judged before the site's membership is, so that its answer
  // does not tell which sites exist.
  const SiteRecord record = registry_->Lookup(request.site());
  grpc::Status issued = IssueFor(request.site(), record.uid, request.csr_pem(), response);
  if (!issued.ok()) return issued;
  if (!record.member() ||
      !registry_->SpendEnrollmentToken(request.site(), TokenDigest(request.token()))) {
    response->Clear();
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kEnrollRefused);
  }
  LogInfo(absl::StrCat("federation: site ", request.site(), " enrolled"));
  registry_->OnCertificateIssued(request.site(), absl::FromUnixSeconds(response->not_after_unix()));
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Impl::Renew(const grpc::ServerContext& context,
                                             const v1::RenewRequest& request,
                                             v1::Certificate* response) {
  std::optional<PeerSite> peer = SiteOfPeer(context);
  if (!peer.has_value()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "Renew needs the site's current certificate from the federation CA");
  }
  const SiteRecord record = registry_->Lookup(peer->site);
  if (!record.Admits(peer->uid)) return NotAMember(peer->site);
  if (!renew_per_site_.Allow(peer->site, clock_->Now())) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many renewals for this site; try again later");
  }
  grpc::Status issued = IssueFor(peer->site, record.uid, request.csr_pem(), response);
  if (!issued.ok()) return issued;
  registry_->OnCertificateIssued(peer->site, absl::FromUnixSeconds(response->not_after_unix()));
  return grpc::Status::OK;
}

CoordinatorService::CoordinatorService(CoordinatorOptions options, SiteRegistry* registry,
                                       InvitationBoard* board, Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), registry, board, clock)) {}

CoordinatorService::~CoordinatorService() { impl_->Shutdown(absl::InfiniteFuture()); }

grpc::Status CoordinatorService::Enroll(grpc::ServerContext* context,
                                        const v1::EnrollRequest* request,
                                        v1::Certificate* response) {
  return impl_->Enroll(*request, response);
}

grpc::Status CoordinatorService::Renew(grpc::ServerContext* context,
                                       const v1::RenewRequest* request,
                                       v1::Certificate* response) {
  return impl_->Renew(*context, *request, response);
}

grpc::ServerBidiReactor<v1::SiteReport, v1::InvitationSet>* CoordinatorService::Sync(
    grpc::CallbackServerContext* context) {
  return impl_->Sync(context);
}

void CoordinatorService::Shutdown() { impl_->Shutdown(absl::Now() + absl::Seconds(5)); }

int CoordinatorService::open_streams() const { return impl_->open_streams(); }

}  // namespace braid::federation
