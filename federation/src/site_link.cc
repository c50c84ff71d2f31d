#include "braid/federation/site_link.h"

#include <grpcpp/grpcpp.h>

#include <random>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/cancel.h"
#include "braid/core/log.h"
#include "braid/core/pki.h"
#include "braid/core/status_macros.h"
#include "braid/core/dns_name.h"
#include "braid/v1/sites.grpc.pb.h"
#include "link_timing.h"
#include "site_credentials.h"

namespace braid::federation {
namespace {

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

class GrpcSiteLink final : public SiteLink {
 public:
  GrpcSiteLink(SiteLinkOptions options, IdentityStore* store, InvitationsCallback on_invitations,
               Clock* clock)
      : options_(std::move(options)),
        store_(store),
        on_invitations_(std::move(on_invitations)),
        clock_(clock),
        backoff_(options_.initial_backoff, options_.max_backoff, std::random_device{}()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~GrpcSiteLink() override { Stop(); }

  void SetReport(v1::SiteReport report) override {
    absl::MutexLock lock(&mu_);
    report_ = std::move(report);
    ++report_version_;
  }

  SiteLinkState state() const override {
    absl::MutexLock lock(&mu_);
    return state_;
  }

  void Stop() override {
    stop_.Cancel();
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      if (call_ != nullptr) call_->TryCancel();
      if (renew_call_ != nullptr) renew_call_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  // Whether this session ended for a renewed identity (reconnect now).
  struct SessionEnd {
    bool renewed = false;
  };

  void Run();
  absl::StatusOr<SessionEnd> Session();
  absl::StatusOr<SiteIdentity> EnsureIdentity();
  absl::StatusOr<SiteIdentity> Enroll();
  absl::Status Renew(v1::SiteFederation::Stub& stub, SiteIdentity& identity);
  absl::StatusOr<SessionEnd> Stream(const SiteIdentity& identity);
  // The Sync stream's writer: reports, renewal, liveness.
  void WriteLoop(grpc::ClientReaderWriter<v1::SiteReport, v1::InvitationSet>* stream,
                 v1::SiteFederation::Stub* stub, SiteIdentity identity, bool* renewed);
  void SetCall(grpc::ClientContext* ctx);
  // Logs `status` and keeps it as the last error; Fail also marks the link
  // disconnected.
  void Note(const absl::Status& status);
  void Fail(const absl::Status& status);

  const SiteLinkOptions options_;
  IdentityStore* const store_;
  const InvitationsCallback on_invitations_;
  Clock* const clock_;
  Backoff backoff_;  // the link's thread only
  CancelToken stop_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;  // the call to cancel on Stop
  grpc::ClientContext* renew_call_ ABSL_GUARDED_BY(mu_) = nullptr;  // ...and the writer's Renew
  v1::SiteReport report_ ABSL_GUARDED_BY(mu_);
  uint64_t report_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool stream_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status cancel_reason_ ABSL_GUARDED_BY(mu_);  // why the writer cancelled the stream
  absl::Time last_received_ ABSL_GUARDED_BY(mu_);
  SiteLinkState state_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

void GrpcSiteLink::SetCall(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  call_ = ctx;
  if (ctx != nullptr && stopping_) ctx->TryCancel();
}

void GrpcSiteLink::Note(const absl::Status& status) {
  LogWarning(absl::StrCat("federation: site ", options_.site, ": ", status.message()));
  absl::MutexLock lock(&mu_);
  state_.last_error = status;
}

void GrpcSiteLink::Fail(const absl::Status& status) {
  LogWarning(absl::StrCat("federation: site ", options_.site, ": ", status.message()));
  absl::MutexLock lock(&mu_);
  state_.connected = false;
  state_.last_error = status;
}

void GrpcSiteLink::Run() {
  while (!stop_.cancelled()) {
    absl::StatusOr<SessionEnd> end = Session();
    if (stop_.cancelled()) break;
    if (end.ok() && end->renewed) continue;  // a new certificate: dial again at once
    Fail(end.ok() ? absl::UnavailableError("the coordinator ended the Sync stream")
                  : end.status());
    clock_->Sleep(backoff_.Next(), &stop_);
  }
  absl::MutexLock lock(&mu_);
  state_.connected = false;
}

absl::StatusOr<GrpcSiteLink::SessionEnd> GrpcSiteLink::Session() {
  BRAID_ASSIGN_OR_RETURN(SiteIdentity identity, EnsureIdentity());
  return Stream(identity);
}

absl::StatusOr<SiteIdentity> GrpcSiteLink::EnsureIdentity() {
  absl::StatusOr<std::optional<SiteIdentity>> loaded = store_->Load();
  if (!loaded.ok()) {
    LogWarning(absl::StrCat("federation: the stored identity cannot be read (",
                            loaded.status().message(), "); enrolling again"));
  } else if (loaded->has_value()) {
    absl::StatusOr<pki::CertInfo> usable =
        UsableIdentity(**loaded, options_.site, clock_->Now());
    if (usable.ok()) {
      absl::MutexLock lock(&mu_);
      state_.enrolled = true;
      state_.cert_not_after = usable->not_after;
      return **loaded;
    }
    LogInfo(absl::StrCat("federation: ", usable.status().message(), "; enrolling again"));
  }
  return Enroll();
}

absl::StatusOr<SiteIdentity> GrpcSiteLink::Enroll() {
  if (options_.enrollment_token.empty()) {
    return absl::FailedPreconditionError(
        "no valid site certificate and no enrollment token: ask the coordinator's "
        "administrator for a new token");
  }
  BRAID_ASSIGN_OR_RETURN(KeyAndCsr key, NewKeyAndCsr());
  v1::EnrollRequest request;
  request.set_site(options_.site);
  request.set_token(options_.enrollment_token);
  request.set_csr_pem(key.csr_pem);
  std::unique_ptr<v1::SiteFederation::Stub> stub =
      v1::SiteFederation::NewStub(DialCoordinator(options_, nullptr));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  SetCall(&ctx);
  v1::Certificate cert;
  grpc::Status s = stub->Enroll(&ctx, request, &cert);
  SetCall(nullptr);
  if (!s.ok()) return FromGrpc(s, "enrollment");
  BRAID_ASSIGN_OR_RETURN(SiteIdentity id, IdentityFrom(options_.site, std::move(key), cert));
  BRAID_RETURN_IF_ERROR(store_->Save(id));
  LogInfo(absl::StrCat("federation: site ", options_.site, " enrolled"));
  absl::MutexLock lock(&mu_);
  state_.enrolled = true;
  state_.cert_not_after = absl::FromUnixSeconds(cert.not_after_unix());
  return id;
}

absl::Status GrpcSiteLink::Renew(v1::SiteFederation::Stub& stub, SiteIdentity& identity) {
  BRAID_ASSIGN_OR_RETURN(KeyAndCsr key, NewKeyAndCsr());
  v1::RenewRequest request;
  request.set_csr_pem(key.csr_pem);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  v1::Certificate cert;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("the link is stopping");
    renew_call_ = &ctx;
  }
  grpc::Status s = stub.Renew(&ctx, request, &cert);
  {
    absl::MutexLock lock(&mu_);
    renew_call_ = nullptr;
  }
  if (!s.ok()) return FromGrpc(s, "renewal");
  BRAID_ASSIGN_OR_RETURN(SiteIdentity next, IdentityFrom(options_.site, std::move(key), cert));
  BRAID_RETURN_IF_ERROR(store_->Save(next));
  identity = std::move(next);
  LogInfo(absl::StrCat("federation: site ", options_.site, " renewed its certificate"));
  absl::MutexLock lock(&mu_);
  state_.cert_not_after = absl::FromUnixSeconds(cert.not_after_unix());
  return absl::OkStatus();
}

absl::StatusOr<GrpcSiteLink::SessionEnd> GrpcSiteLink::Stream(const SiteIdentity& identity) {
  std::shared_ptr<grpc::Channel> channel = DialCoordinator(options_, &identity);
  std::unique_ptr<v1::SiteFederation::Stub> stub = v1::SiteFederation::NewStub(channel);
  grpc::ClientContext ctx;
  SetCall(&ctx);
  std::unique_ptr<grpc::ClientReaderWriter<v1::SiteReport, v1::InvitationSet>> stream =
      stub->Sync(&ctx);
  {
    absl::MutexLock lock(&mu_);
    stream_done_ = false;
    last_received_ = clock_->Now();
  }
  bool renewed = false;
  std::thread writer([&] { WriteLoop(stream.get(), stub.get(), identity, &renewed); });
  v1::InvitationSet set;
  bool first = true;
  while (stream->Read(&set)) {
    {
      absl::MutexLock lock(&mu_);
      last_received_ = clock_->Now();
      if (first) {
        state_.connected = true;
        state_.last_error = absl::OkStatus();
        ++state_.connects;
      }
    }
    if (first) {
      first = false;
      backoff_.Reset();
      LogInfo(absl::StrCat("federation: site ", options_.site, " connected to ",
                           options_.coordinator_address));
    }
    if (!set.keepalive() && on_invitations_) on_invitations_(set);
    set.Clear();
  }
  {
    absl::MutexLock lock(&mu_);
    stream_done_ = true;
    state_.connected = false;
  }
  // The call is over, so a writer blocked in Write returns now. (Cancelling
  // here would replace the coordinator's status with CANCELLED.)
  writer.join();
  grpc::Status status = stream->Finish();
  SetCall(nullptr);
  if (renewed) return SessionEnd{true};
  {
    absl::MutexLock lock(&mu_);
    if (!cancel_reason_.ok()) return std::exchange(cancel_reason_, absl::OkStatus());
  }
  if (status.ok()) return SessionEnd{};
  return FromGrpc(status, "the Sync stream");
}

void GrpcSiteLink::WriteLoop(grpc::ClientReaderWriter<v1::SiteReport, v1::InvitationSet>* stream,
                             v1::SiteFederation::Stub* stub, SiteIdentity identity, bool* renewed) {
  absl::StatusOr<pki::CertInfo> info = pki::InspectCert(identity.cert_pem);
  absl::Time renew_at = info.ok() ? RenewAt(*info) : absl::InfiniteFuture();
  uint64_t sent = 0;
  while (true) {
    v1::SiteReport report;
    bool send = false;
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this, sent]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || stream_done_ || report_version_ != sent;
      };
      // Time-driven duties are looked at by the clock at least every second
      // (so a test's FakeClock is noticed), sooner when one is due.
      const absl::Time now = clock_->Now();
      const absl::Time next = std::min(renew_at, last_received_ + options_.liveness_timeout);
      const absl::Duration wait =
          std::clamp(next - now, absl::Milliseconds(1), absl::Seconds(1));
      mu_.AwaitWithTimeout(absl::Condition(&wake), wait);
      if (stopping_ || stream_done_) return;
      if (clock_->Now() - last_received_ > options_.liveness_timeout) {
        cancel_reason_ = absl::UnavailableError(
            absl::StrCat("nothing from the coordinator for ",
                         absl::FormatDuration(options_.liveness_timeout), "; dialling again"));
        call_->TryCancel();
        return;
      }
      if (report_version_ != sent && report_version_ > 0) {
        report = report_;
        send = true;
      }
      sent = report_version_;
    }
    if (send && !stream->Write(report)) return;  // the stream broke; the reader sees it
    if (clock_->Now() >= renew_at) {
      absl::Status s = Renew(*stub, identity);
      if (s.ok()) {
        *renewed = true;
        absl::MutexLock lock(&mu_);
        call_->TryCancel();  // reconnect with the new certificate
        return;
      }
      Note(s);
      // Try again after a tenth of what is left, between 1 s and 10 min.
      const absl::Time not_after = info.ok() ? info->not_after : clock_->Now();
      renew_at = clock_->Now() + std::clamp((not_after - clock_->Now()) / 10, absl::Seconds(1),
                                            absl::Minutes(10));
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<SiteLink>> StartSiteLink(SiteLinkOptions options,
                                                        IdentityStore* store,
                                                        InvitationsCallback on_invitations,
                                                        Clock* clock) {
  if (options.coordinator_address.empty()) {
    return absl::InvalidArgumentError("coordinator_address: required (host:port)");
  }
  if (options.ca_bundle_pem.empty()) {
    return absl::InvalidArgumentError(
        "ca_bundle_pem: required (the CA the coordinator's certificate chains to)");
  }
  if (!IsDns1123Label(options.site)) {
    return absl::InvalidArgumentError(
        absl::StrCat("site: \"", options.site, "\" is not a DNS-1123 label"));
  }
  if (store == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("an identity store and a clock are required");
  }
  return std::unique_ptr<SiteLink>(
      new GrpcSiteLink(std::move(options), store, std::move(on_invitations), clock));
}

}  // namespace braid::federation
