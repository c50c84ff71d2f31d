// The coordinator's SiteFederation service over real gRPC on loopback with
// TLS: what a site (honest or not) sees.
#include "braid/federation/coordinator_service.h"

#include <thread>

#include "braid/federation/enrollment_token.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_federation.h"

namespace braid::federation {
namespace {

using ::testing::HasSubstr;
using test::Context;
using test::Enroll;
using test::Stub;

using SyncStream = grpc::ClientReaderWriter<v1::SiteReport, v1::InvitationSet>;

v1::Invitation Invite(const std::string& uid) {
  v1::Invitation inv;
  inv.set_job_uid(uid);
  inv.set_job_name("job-" + uid);
  inv.set_dataset("notes");
  return inv;
}

std::vector<std::string> Uids(const v1::InvitationSet& set) {
  std::vector<std::string> uids;
  for (const v1::Invitation& inv : set.invitations()) uids.push_back(inv.job_uid());
  return uids;
}

// The next snapshot on `stream`, skipping keepalive markers; false if the
// stream ended first.
bool NextSnapshot(SyncStream* stream, v1::InvitationSet* set) {
  while (stream->Read(set)) {
    if (!set->keepalive()) return true;
  }
  return false;
}

class CoordinatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = test::MakePki();
    registry_.AddSite("st-mary", "mary-token");
    registry_.AddSite("charite", "charite-token");
    Start(test::FastOptions(pki_));
  }
  void Start(CoordinatorOptions options) {
    server_.reset();
    server_ = test::StartServer(pki_, std::move(options), &registry_, &board_);
    ASSERT_NE(server_, nullptr);
    port_ = server_->port();
  }
  SiteIdentity EnrollOrDie(const std::string& site, const std::string& token) {
    SiteIdentity id;
    grpc::Status s = Enroll(port_, pki_.ca.cert_pem, site, token, &id);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return id;
  }

  test::Pki pki_;
  FakeSiteRegistry registry_;
  InvitationBoard board_;
  std::unique_ptr<CoordinatorServer> server_;
  int port_ = 0;
};

TEST_F(CoordinatorServiceTest, EnrollWithAGoodTokenWorksOnceAndNamesTheSite) {
  SiteIdentity id;
  v1::Certificate cert;
  const absl::Time before = absl::Now();
  grpc::Status s = Enroll(port_, pki_.ca.cert_pem, "st-mary", "mary-token", &id, &cert);
  ASSERT_TRUE(s.ok()) << s.error_message();
  absl::StatusOr<pki::CertInfo> info = pki::InspectCert(id.cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "site:st-mary");
  EXPECT_TRUE(pki::KeyMatchesCert(id.key_pem, id.cert_pem)) << "for the site's own key";
  EXPECT_EQ(cert.ca_pem(), pki_.ca.cert_pem);
  // Expires as configured (2 h).
  EXPECT_GE(info->not_after, before + absl::Hours(2) - absl::Seconds(2));
  EXPECT_LE(info->not_after, absl::Now() + absl::Hours(2) + absl::Seconds(2));
  EXPECT_EQ(cert.not_after_unix(), absl::ToUnixSeconds(info->not_after));
  EXPECT_EQ(registry_.last_not_after("st-mary"), info->not_after);

  grpc::Status again = Enroll(port_, pki_.ca.cert_pem, "st-mary", "mary-token");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(again.error_message(), HasSubstr("already used"));
}

TEST_F(CoordinatorServiceTest, ConcurrentEnrollmentsWithOneTokenYieldOneCertificate) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (Enroll(port_, pki_.ca.cert_pem, "st-mary", "mary-token").ok()) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
}

TEST_F(CoordinatorServiceTest, WrongSiteWrongTokenUnknownAndRevokedSitesGetOneAnswer) {
  registry_.AddSite("revoked", "revoked-token");
  registry_.Revoke("revoked");
  const grpc::Status wrong_token = Enroll(port_, pki_.ca.cert_pem, "st-mary", "guess");
  const grpc::Status other_site = Enroll(port_, pki_.ca.cert_pem, "charite", "mary-token");
  const grpc::Status unknown = Enroll(port_, pki_.ca.cert_pem, "nowhere", "mary-token");
  const grpc::Status revoked = Enroll(port_, pki_.ca.cert_pem, "revoked", "revoked-token");
  for (const grpc::Status& s : {wrong_token, other_site, unknown, revoked}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.error_message(), wrong_token.error_message()) << "one message for all";
  }
  // A bad CSR is refused before the token is spent.
  v1::EnrollRequest bad;
  bad.set_site("st-mary");
  bad.set_token("mary-token");
  bad.set_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\ngarbage\n");
  v1::Certificate cert;
  grpc::Status s = Stub(port_, pki_.ca.cert_pem)->Enroll(Context().get(), bad, &cert);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("csr_pem"));
  bad.set_site("nowhere");  // the same answer: it does not tell which sites exist
  grpc::Status unknown_bad = Stub(port_, pki_.ca.cert_pem)->Enroll(Context().get(), bad, &cert);
  EXPECT_EQ(unknown_bad.error_code(), s.error_code());
  EXPECT_EQ(unknown_bad.error_message(), s.error_message());
  bad.set_site("Not_A_Name");
  s = Stub(port_, pki_.ca.cert_pem)->Enroll(Context().get(), bad, &cert);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // None of that spent st-mary's token.
  EXPECT_TRUE(Enroll(port_, pki_.ca.cert_pem, "st-mary", "mary-token").ok());
}

TEST_F(CoordinatorServiceTest, EnrollmentAttemptsAreRateLimitedPerSite) {
  CoordinatorOptions options = test::FastOptions(pki_);
  options.enroll_per_site = RateLimit{3, absl::Hours(1)};
  Start(options);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Enroll(port_, pki_.ca.cert_pem, "st-mary", "guess").error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::Status limited = Enroll(port_, pki_.ca.cert_pem, "st-mary", "mary-token");
  EXPECT_EQ(limited.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Enroll(port_, pki_.ca.cert_pem, "charite", "charite-token").ok())
      << "another site is not held back";
}

TEST_F(CoordinatorServiceTest, RenewIssuesForTheSiteInTheCertificateOnly) {
  SiteIdentity id = EnrollOrDie("st-mary", "mary-token");
  const std::string key = *pki::MakeKey();
  v1::RenewRequest req;
  req.set_csr_pem(*pki::MakeCsr(key));
  v1::Certificate cert;
  grpc::Status s = Stub(port_, pki_.ca.cert_pem, id)->Renew(Context().get(), req, &cert);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(pki::InspectCert(cert.cert_pem())->common_name, "site:st-mary");
  EXPECT_TRUE(pki::KeyMatchesCert(key, cert.cert_pem()));

  // Without a certificate, or with a tenant's from the same CA: refused.
  s = Stub(port_, pki_.ca.cert_pem)->Renew(Context().get(), req, &cert);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  pki::CertRequest tenant_req;
  tenant_req.common_name = pki::TenantCommonName("st-mary");
  tenant_req.client = true;
  pki::KeyPair tenant = *pki::Issue(pki_.ca, tenant_req);
  s = Stub(port_, pki_.ca.cert_pem, SiteIdentity{tenant.key_pem, tenant.cert_pem, ""})
          ->Renew(Context().get(), req, &cert);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A certificate from another CA does not get past TLS.
  absl::StatusOr<pki::KeyPair> rogue_ca = pki::MakeFederationCa("rogue", absl::Hours(1));
  pki::CertRequest site_req;
  site_req.common_name = pki::SiteCommonName("st-mary");
  site_req.client = true;
  pki::KeyPair forged = *pki::Issue(*rogue_ca, site_req);
  s = Stub(port_, pki_.ca.cert_pem, SiteIdentity{forged.key_pem, forged.cert_pem, ""})
          ->Renew(Context().get(), req, &cert);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_code(), grpc::StatusCode::OK);
}

TEST_F(CoordinatorServiceTest, SyncSendsTheSitesOwnInvitationsAndEveryChangeNeverAnothers) {
  board_.Set("st-mary", {Invite("a")});
  board_.Set("charite", {Invite("b")});
  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  SiteIdentity charite = EnrollOrDie("charite", "charite-token");

  auto mary_stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto mary_ctx = Context();
  std::unique_ptr<SyncStream> mary_stream = mary_stub->Sync(mary_ctx.get());
  auto charite_stub = Stub(port_, pki_.ca.cert_pem, charite);
  auto charite_ctx = Context();
  std::unique_ptr<SyncStream> charite_stream = charite_stub->Sync(charite_ctx.get());

  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(mary_stream.get(), &set));
  EXPECT_THAT(Uids(set), ::testing::ElementsAre("a"));
  ASSERT_TRUE(NextSnapshot(charite_stream.get(), &set));
  EXPECT_THAT(Uids(set), ::testing::ElementsAre("b"));
  EXPECT_TRUE(registry_.AwaitConnected("st-mary", true, absl::Seconds(5)));

  board_.Set("st-mary", {Invite("a"), Invite("c")});
  ASSERT_TRUE(NextSnapshot(mary_stream.get(), &set));
  EXPECT_THAT(Uids(set), ::testing::ElementsAre("a", "c"));
  board_.Set("st-mary", {});
  ASSERT_TRUE(NextSnapshot(mary_stream.get(), &set));
  EXPECT_TRUE(set.invitations().empty()) << "an empty snapshot withdraws everything";

  // charite saw keepalives only since its first snapshot: end its stream
  // and check that nothing of st-mary's reached it.
  board_.Set("charite", {Invite("b"), Invite("d")});
  ASSERT_TRUE(NextSnapshot(charite_stream.get(), &set));
  EXPECT_THAT(Uids(set), ::testing::ElementsAre("b", "d"));
  charite_ctx->TryCancel();
  mary_ctx->TryCancel();
}

TEST_F(CoordinatorServiceTest, KeepaliveMarkersComeWithinTheInterval) {
  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  auto stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = stub->Sync(ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(stream.get(), &set));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(stream->Read(&set));
  EXPECT_TRUE(set.keepalive());
  // The interval is 200 ms; the bound leaves room for a loaded machine.
  EXPECT_LE(absl::Now() - start, absl::Seconds(2));
  ctx->TryCancel();
}

TEST_F(CoordinatorServiceTest, ARevokedSiteIsRefusedAtItsNextCallAndItsStreamEnds) {
  board_.Set("st-mary", {Invite("a")});
  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  auto stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = stub->Sync(ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(stream.get(), &set));

  registry_.Revoke("st-mary");
  const absl::Time revoked = absl::Now();
  while (stream->Read(&set)) {
  }
  grpc::Status ended = stream->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::PERMISSION_DENIED) << ended.error_message();
  // Within a keepalive interval (200 ms), with room for a loaded machine.
  EXPECT_LE(absl::Now() - revoked, absl::Seconds(2));
  EXPECT_TRUE(registry_.AwaitConnected("st-mary", false, absl::Seconds(5)));

  auto ctx2 = Context();
  std::unique_ptr<SyncStream> again = stub->Sync(ctx2.get());
  EXPECT_FALSE(again->Read(&set));
  EXPECT_EQ(again->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::RenewRequest req;
  req.set_csr_pem(*pki::MakeCsr(*pki::MakeKey()));
  v1::Certificate cert;
  EXPECT_EQ(stub->Renew(Context().get(), req, &cert).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // A deleted site likewise.
  SiteIdentity charite = EnrollOrDie("charite", "charite-token");
  registry_.Delete("charite");
  EXPECT_EQ(Stub(port_, pki_.ca.cert_pem, charite)->Renew(Context().get(), req, &cert).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(CoordinatorServiceTest, ASiteMadeAgainRefusesTheCertificatesOfTheOldOne) {
  SiteIdentity old = EnrollOrDie("st-mary", "mary-token");
  const std::string old_uid = pki::SiteUidOf(*pki::InspectCert(old.cert_pem));
  EXPECT_EQ(old_uid, registry_.Lookup("st-mary").uid);
  auto old_stub = Stub(port_, pki_.ca.cert_pem, old);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = old_stub->Sync(ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(stream.get(), &set));

  // Deleted and made again under the same name: the open stream of the old
  // certificate ends, and no call of it is answered.
  registry_.Delete("st-mary");
  registry_.AddSite("st-mary", "new-token");
  while (stream->Read(&set)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::RenewRequest req;
  req.set_csr_pem(*pki::MakeCsr(*pki::MakeKey()));
  v1::Certificate cert;
  grpc::Status renewed = old_stub->Renew(Context().get(), req, &cert);
  EXPECT_EQ(renewed.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(renewed.error_message(), HasSubstr("made again"));

  // The new Site's token gives a certificate for the new uid, which works.
  SiteIdentity fresh = EnrollOrDie("st-mary", "new-token");
  const std::string new_uid = pki::SiteUidOf(*pki::InspectCert(fresh.cert_pem));
  EXPECT_FALSE(new_uid.empty());
  EXPECT_NE(new_uid, old_uid);
  grpc::Status ok = Stub(port_, pki_.ca.cert_pem, fresh)->Renew(Context().get(), req, &cert);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(pki::SiteUidOf(*pki::InspectCert(cert.cert_pem())), new_uid);

  // A certificate of the federation CA naming no uid speaks for no Site.
  pki::CertRequest bare_req;
  bare_req.common_name = pki::SiteCommonName("st-mary");
  bare_req.client = true;
  pki::KeyPair bare = *pki::Issue(pki_.ca, bare_req);
  EXPECT_EQ(Stub(port_, pki_.ca.cert_pem, SiteIdentity{bare.key_pem, bare.cert_pem, ""})
                ->Renew(Context().get(), req, &cert)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(CoordinatorServiceTest, AReportAboutAJobNotInvitedToTheSiteIsIgnored) {
  board_.Set("st-mary", {Invite("a")});
  board_.Set("charite", {Invite("b")});
  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  auto stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = stub->Sync(ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(stream.get(), &set));

  v1::SiteReport report;
  v1::InvitationState* own = report.add_jobs();
  own->set_job_uid("a");
  own->set_state("Running");
  own->set_workers_ready(1);
  v1::InvitationState* other = report.add_jobs();
  other->set_job_uid("b");  // charite's job
  other->set_state("Refused");
  ASSERT_TRUE(stream->Write(report));
  ASSERT_TRUE(registry_.AwaitReports("st-mary", 1, absl::Seconds(5)));
  v1::SiteReport got = *registry_.last_report("st-mary");
  ASSERT_EQ(got.jobs_size(), 1);
  EXPECT_EQ(got.jobs(0).job_uid(), "a");
  EXPECT_EQ(got.jobs(0).state(), "Running");
  EXPECT_EQ(registry_.reports("charite"), 0) << "a site never reports for another";
  ctx->TryCancel();
}

TEST_F(CoordinatorServiceTest, ReportsReachTheRegistryNoFasterThanTheInterval) {
  CoordinatorOptions options = test::FastOptions(pki_);
  options.min_report_interval = absl::Milliseconds(300);
  Start(options);
  board_.Set("st-mary", {Invite("a")});
  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  auto stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = stub->Sync(ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(stream.get(), &set));
  v1::SiteReport report;
  v1::InvitationState* job = report.add_jobs();
  job->set_job_uid("a");
  for (const char* state : {"Invited", "AwaitingApproval", "Running"}) {
    job->set_state(state);
    ASSERT_TRUE(stream->Write(report));
  }
  ASSERT_TRUE(registry_.AwaitReports("st-mary", 3, absl::Seconds(10)));
  std::vector<absl::Time> times = registry_.report_times("st-mary");
  ASSERT_EQ(times.size(), 3u);
  EXPECT_GE(times[1] - times[0], absl::Milliseconds(290));
  EXPECT_GE(times[2] - times[1], absl::Milliseconds(290));
  EXPECT_EQ(registry_.last_report("st-mary")->jobs(0).state(), "Running") << "none lost, in order";
  ctx->TryCancel();
}

TEST_F(CoordinatorServiceTest, SyncWithoutASiteCertificateIsRefused) {
  auto anonymous = Stub(port_, pki_.ca.cert_pem);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = anonymous->Sync(ctx.get());
  v1::InvitationSet set;
  EXPECT_FALSE(stream->Read(&set));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  pki::CertRequest req;
  req.common_name = pki::TenantCommonName("st-mary");  // the right CA, not a site
  req.client = true;
  pki::KeyPair tenant = *pki::Issue(pki_.ca, req);
  auto tenant_stub =
      Stub(port_, pki_.ca.cert_pem, SiteIdentity{tenant.key_pem, tenant.cert_pem, ""});
  auto ctx2 = Context();
  std::unique_ptr<SyncStream> stream2 = tenant_stub->Sync(ctx2.get());
  EXPECT_FALSE(stream2->Read(&set));
  EXPECT_EQ(stream2->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(registry_.connected("st-mary"));
}

TEST_F(CoordinatorServiceTest, OversizedMessagesAreRefused) {
  v1::EnrollRequest big;
  big.set_site("st-mary");
  big.set_token("mary-token");
  big.set_csr_pem(std::string(100 << 10, 'x'));
  v1::Certificate cert;
  grpc::Status s = Stub(port_, pki_.ca.cert_pem)->Enroll(Context().get(), big, &cert);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();

  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  auto stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto ctx = Context();
  std::unique_ptr<SyncStream> stream = stub->Sync(ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(stream.get(), &set));
  v1::SiteReport huge;
  v1::InvitationState* job = huge.add_jobs();
  job->set_job_uid("a");
  job->set_state("Running");
  job->set_message(std::string(100 << 10, 'x'));
  stream->Write(huge);
  while (stream->Read(&set)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(registry_.reports("st-mary"), 0);
}

TEST_F(CoordinatorServiceTest, ANewStreamOfASiteReplacesTheOldOne) {
  SiteIdentity mary = EnrollOrDie("st-mary", "mary-token");
  auto stub = Stub(port_, pki_.ca.cert_pem, mary);
  auto first_ctx = Context();
  std::unique_ptr<SyncStream> first = stub->Sync(first_ctx.get());
  v1::InvitationSet set;
  ASSERT_TRUE(NextSnapshot(first.get(), &set));
  auto second_ctx = Context();
  std::unique_ptr<SyncStream> second = stub->Sync(second_ctx.get());
  ASSERT_TRUE(NextSnapshot(second.get(), &set));
  while (first->Read(&set)) {
  }
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(server_->service().open_streams(), 1);
  EXPECT_TRUE(registry_.connected("st-mary")) << "the replaced stream's end is not a disconnect";
  EXPECT_EQ(registry_.connects("st-mary"), 2);
  second_ctx->TryCancel();
  EXPECT_TRUE(registry_.AwaitConnected("st-mary", false, absl::Seconds(5)));
}

TEST(EnrollmentTokenTest, TokensAreRandomAndDigestsCompareWhole) {
  absl::StatusOr<std::string> a = NewEnrollmentToken(), b = NewEnrollmentToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 43u);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(DigestsEqual(TokenDigest(*a), TokenDigest(*a)));
  EXPECT_FALSE(DigestsEqual(TokenDigest(*a), TokenDigest(*b)));
  EXPECT_FALSE(DigestsEqual(TokenDigest(*a), TokenDigest(*a).substr(0, 31)));
}

}  // namespace
}  // namespace braid::federation
