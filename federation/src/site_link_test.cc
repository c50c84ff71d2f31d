// The site's link against a real coordinator server on loopback with TLS.
#include "braid/federation/site_link.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_federation.h"

namespace braid::federation {
namespace {

using test::Eventually;

v1::Invitation Invite(const std::string& uid) {
  v1::Invitation inv;
  inv.set_job_uid(uid);
  inv.set_job_name("job-" + uid);
  return inv;
}

// What the link delivered, waitable.
class Snapshots {
 public:
  InvitationsCallback callback() {
    return [this](const v1::InvitationSet& set) {
      absl::MutexLock lock(&mu_);
      sets_.push_back(set);
    };
  }
  // Until the latest snapshot holds exactly `uids`.
  bool AwaitLatest(const std::vector<std::string>& uids,
                   absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (sets_.empty()) return false;
      std::vector<std::string> got;
      for (const v1::Invitation& inv : sets_.back().invitations()) got.push_back(inv.job_uid());
      return got == uids;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  std::vector<v1::InvitationSet> all() {
    absl::MutexLock lock(&mu_);
    return sets_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::InvitationSet> sets_ ABSL_GUARDED_BY(mu_);
};

v1::SiteReport Report(const std::string& uid, const std::string& state) {
  v1::SiteReport r;
  v1::InvitationState* j = r.add_jobs();
  j->set_job_uid(uid);
  j->set_state(state);
  return r;
}

class SiteLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = test::MakePki();
    registry_.AddSite("st-mary", "mary-token");
    registry_.AddSite("charite", "charite-token");
    server_ = test::StartServer(pki_, test::FastOptions(pki_), &registry_, &board_);
    ASSERT_NE(server_, nullptr);
    dir_ = absl::StrCat(::testing::TempDir(), "/site_link_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);  // fresh under --gtest_repeat too
    store_ = NewFileIdentityStore(dir_);
  }

  SiteLinkOptions Options(const std::string& token = "mary-token") const {
    SiteLinkOptions o;
    o.coordinator_address = absl::StrCat("127.0.0.1:", server_->port());
    o.server_name = "localhost";
    o.ca_bundle_pem = pki_.ca.cert_pem;
    o.site = "st-mary";
    o.enrollment_token = token;
    o.initial_backoff = absl::Milliseconds(20);
    o.max_backoff = absl::Milliseconds(200);
    return o;
  }

  std::unique_ptr<SiteLink> Link(SiteLinkOptions options, Snapshots* snapshots,
                                 Clock* clock = RealClock()) {
    absl::StatusOr<std::unique_ptr<SiteLink>> link =
        StartSiteLink(std::move(options), store_.get(), snapshots->callback(), clock);
    EXPECT_TRUE(link.ok()) << link.status();
    return link.ok() ? *std::move(link) : nullptr;
  }

  test::Pki pki_;
  FakeSiteRegistry registry_;
  InvitationBoard board_;
  std::unique_ptr<CoordinatorServer> server_;
  std::string dir_;
  std::unique_ptr<IdentityStore> store_;
};

TEST_F(SiteLinkTest, EnrollsOnceThenSyncsInvitationsAndReports) {
  board_.Set("st-mary", {Invite("a")});
  board_.Set("charite", {Invite("b")});
  Snapshots snapshots;
  std::unique_ptr<SiteLink> link = Link(Options(), &snapshots);
  ASSERT_TRUE(snapshots.AwaitLatest({"a"}));
  EXPECT_TRUE(link->state().enrolled);
  EXPECT_TRUE(registry_.AwaitConnected("st-mary", true, absl::Seconds(10)));

  // The identity is kept, the key private.
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/site.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<std::optional<SiteIdentity>> stored = store_->Load();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ(pki::InspectCert((*stored)->cert_pem)->common_name, "site:st-mary");
  EXPECT_EQ((*stored)->ca_pem, pki_.ca.cert_pem);

  board_.Set("st-mary", {Invite("a"), Invite("c")});
  ASSERT_TRUE(snapshots.AwaitLatest({"a", "c"}));
  link->SetReport(Report("a", "Running"));
  ASSERT_TRUE(registry_.AwaitReports("st-mary", 1, absl::Seconds(10)));
  EXPECT_EQ(registry_.last_report("st-mary")->jobs(0).state(), "Running");
  for (const v1::InvitationSet& set : snapshots.all()) {
    EXPECT_FALSE(set.keepalive()) << "keepalive markers are not delivered";
    for (const v1::Invitation& inv : set.invitations()) EXPECT_NE(inv.job_uid(), "b");
  }
  link->Stop();
  EXPECT_TRUE(registry_.AwaitConnected("st-mary", false, absl::Seconds(10)));

  // A restarted link uses the stored identity: no token needed (it was spent).
  Snapshots again;
  std::unique_ptr<SiteLink> second = Link(Options(/*token=*/""), &again);
  ASSERT_TRUE(again.AwaitLatest({"a", "c"}));
  EXPECT_EQ(second->state().connects, 1);
}

TEST_F(SiteLinkTest, AWrongTokenNeverConnectsAndSaysWhy) {
  Snapshots snapshots;
  std::unique_ptr<SiteLink> link = Link(Options("guess"), &snapshots);
  ASSERT_TRUE(Eventually([&] {
    return link->state().last_error.code() == absl::StatusCode::kUnauthenticated;
  }));
  EXPECT_THAT(std::string(link->state().last_error.message()), ::testing::HasSubstr("enrollment"));
  EXPECT_FALSE(link->state().enrolled);
  EXPECT_EQ(link->state().connects, 0);
  EXPECT_TRUE(snapshots.all().empty());
}

TEST_F(SiteLinkTest, ReconnectsAfterTheCoordinatorRestartsAndResendsItsReport) {
  board_.Set("st-mary", {Invite("a")});
  Snapshots snapshots;
  std::unique_ptr<SiteLink> link = Link(Options(), &snapshots);
  ASSERT_TRUE(snapshots.AwaitLatest({"a"}));
  link->SetReport(Report("a", "AwaitingApproval"));
  ASSERT_TRUE(registry_.AwaitReports("st-mary", 1, absl::Seconds(10)));

  const int port = server_->port();
  server_->Shutdown();
  server_.reset();
  ASSERT_TRUE(Eventually([&] { return !link->state().connected; }));
  // A new coordinator process on the same port, same CA and sites.
  board_.Set("st-mary", {Invite("a"), Invite("b")});
  server_ = test::StartServer(pki_, test::FastOptions(pki_), &registry_, &board_, port);
  ASSERT_NE(server_, nullptr);
  ASSERT_TRUE(snapshots.AwaitLatest({"a", "b"}));
  ASSERT_TRUE(registry_.AwaitReports("st-mary", 2, absl::Seconds(10)))
      << "the report is sent again on the new stream";
  EXPECT_EQ(registry_.last_report("st-mary")->jobs(0).state(), "AwaitingApproval");
  EXPECT_EQ(link->state().connects, 2);
}

TEST_F(SiteLinkTest, RenewsAtTwoThirdsOfTheLifetimeAndReconnectsWithTheNewCertificate) {
  FakeClock clock;
  clock.Advance(absl::Now() - clock.Now());  // the certificates are real time
  board_.Set("st-mary", {Invite("a")});
  Snapshots snapshots;
  SiteLinkOptions options = Options();
  options.liveness_timeout = absl::Hours(10);  // the fake clock jumps hours
  std::unique_ptr<SiteLink> link = Link(options, &snapshots, &clock);
  ASSERT_TRUE(snapshots.AwaitLatest({"a"}));
  const std::string first_cert = (*store_->Load())->cert_pem;
  const absl::Time first_not_after = link->state().cert_not_after;

  EXPECT_EQ(link->state().connects, 1);
  // (That it waits until then is RenewAtTest's; here: that it renews then.)
  clock.Advance(absl::Minutes(85));  // > 2/3 of (2 h + the 1 min back-dating)
  ASSERT_TRUE(Eventually([&] { return link->state().connects == 2; }));
  absl::StatusOr<std::optional<SiteIdentity>> renewed = store_->Load();
  ASSERT_TRUE(renewed.ok() && renewed->has_value());
  EXPECT_NE((*renewed)->cert_pem, first_cert);
  EXPECT_TRUE(pki::KeyMatchesCert((*renewed)->key_pem, (*renewed)->cert_pem));
  EXPECT_EQ(pki::InspectCert((*renewed)->cert_pem)->common_name, "site:st-mary");
  EXPECT_GE(link->state().cert_not_after, first_not_after);
  EXPECT_EQ(link->state().last_error, absl::OkStatus());
}

TEST_F(SiteLinkTest, ARevokedSiteIsDisconnectedAndStaysOut) {
  board_.Set("st-mary", {Invite("a")});
  Snapshots snapshots;
  std::unique_ptr<SiteLink> link = Link(Options(), &snapshots);
  ASSERT_TRUE(snapshots.AwaitLatest({"a"}));
  registry_.Revoke("st-mary");
  ASSERT_TRUE(Eventually([&] {
    SiteLinkState s = link->state();
    return !s.connected && s.last_error.code() == absl::StatusCode::kPermissionDenied;
  })) << link->state().last_error;
  EXPECT_EQ(link->state().connects, 1);
}

TEST(SiteLinkOptionsTest, MissingOptionsAreNamed) {
  std::unique_ptr<IdentityStore> store = NewFileIdentityStore(::testing::TempDir() + "/unused");
  SiteLinkOptions o;
  o.site = "st-mary";
  o.ca_bundle_pem = "x";
  EXPECT_THAT(std::string(StartSiteLink(o, store.get(), nullptr, RealClock()).status().message()),
              ::testing::HasSubstr("coordinator_address"));
  o.coordinator_address = "127.0.0.1:1";
  o.site = "St Mary";
  EXPECT_THAT(std::string(StartSiteLink(o, store.get(), nullptr, RealClock()).status().message()),
              ::testing::HasSubstr("site"));
}

}  // namespace
}  // namespace braid::federation
