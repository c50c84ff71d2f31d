#include "braid/operator/site_directory.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "braid/core/testing/fake_clock.h"
#include "braid/federation/enrollment_token.h"
#include "braid/kube/testing/fake_api_server.h"
#include "gtest/gtest.h"

namespace braid::op {
namespace {

using nlohmann::json;

class SiteDirectoryTest : public ::testing::Test {
 protected:
  void AddSite(const std::string& name, bool revoked = false) {
    server_.Upsert(kSite, {{"apiVersion", "braid.dev/v1alpha1"},
                           {"kind", "Site"},
                           {"metadata", {{"name", name}}},
                           {"spec", {{"revoked", revoked}}}});
  }
  std::string Token(const std::string& site) {
    const json secret = server_.Object(kube::kSecret, "braid-system", EnrollmentSecretName(site));
    std::string token;
    if (secret.is_null() || !absl::Base64Unescape(secret["data"].value("token", ""), &token)) {
      return "";
    }
    return token;
  }
  json Status(const std::string& site) {
    return server_.Object(kSite, "", site).value("status", json::object());
  }

  kube::FakeApiServer server_;
  std::unique_ptr<kube::Client> client_ = kube::NewClient(server_.NewTransport());
  FakeClock clock_;
  SiteDirectory directory_{client_.get(), "braid-system", &clock_};
};

TEST_F(SiteDirectoryTest, ANewSiteGetsATokenThatEnrollsItExactlyOnce) {
  AddSite("st-mary");
  ASSERT_TRUE(directory_.Sync().ok());
  const std::string token = Token("st-mary");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(Status("st-mary")["phase"], "Pending");
  EXPECT_EQ(Status("st-mary")["enrollmentSecret"], EnrollmentSecretName("st-mary"));
  EXPECT_TRUE(directory_.Lookup("st-mary").member());

  EXPECT_FALSE(directory_.SpendEnrollmentToken("st-mary", federation::TokenDigest("guess")));
  EXPECT_FALSE(directory_.SpendEnrollmentToken("charite", federation::TokenDigest(token)));
  // Concurrent callers with the right token: exactly one wins.
  std::atomic<int> won{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&] {
      won += directory_.SpendEnrollmentToken("st-mary", federation::TokenDigest(token)) ? 1 : 0;
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_TRUE(Token("st-mary").empty()) << "the spent token's Secret must go";

  // Spent for good: the next Sync writes enrolledAt and makes no new token.
  ASSERT_TRUE(directory_.Sync().ok());
  EXPECT_TRUE(Token("st-mary").empty());
  EXPECT_EQ(Status("st-mary")["phase"], "Enrolled");
  EXPECT_FALSE(Status("st-mary").value("enrolledAt", "").empty());
  EXPECT_FALSE(directory_.SpendEnrollmentToken("st-mary", federation::TokenDigest(token)));
}

TEST_F(SiteDirectoryTest, StatusFollowsTheLinkAndRevocationIsRefused) {
  AddSite("st-mary");
  ASSERT_TRUE(directory_.Sync().ok());
  ASSERT_TRUE(directory_.SpendEnrollmentToken("st-mary", federation::TokenDigest(Token("st-mary"))));
  directory_.OnConnected("st-mary");
  v1::SiteReport report;
  v1::InvitationState* job = report.add_jobs();
  job->set_job_uid("uid-1");
  job->set_state("Running");
  job->set_workers_ready(2);
  directory_.OnReport("st-mary", report);
  ASSERT_TRUE(directory_.Sync().ok());
  EXPECT_EQ(Status("st-mary")["phase"], "Connected");
  const SiteJobView view = directory_.View("st-mary", "uid-1");
  EXPECT_TRUE(view.member && view.connected);
  ASSERT_TRUE(view.state.has_value());
  EXPECT_EQ(view.state->workers_ready(), 2);

  directory_.OnDisconnected("st-mary");
  ASSERT_TRUE(directory_.Sync().ok());
  EXPECT_EQ(Status("st-mary")["phase"], "Disconnected");

  AddSite("st-mary", /*revoked=*/true);
  ASSERT_TRUE(directory_.Sync().ok());
  EXPECT_FALSE(directory_.Lookup("st-mary").member());
  EXPECT_EQ(Status("st-mary")["phase"], "Revoked");
  EXPECT_FALSE(directory_.View("st-mary", "uid-1").member);
}

TEST_F(SiteDirectoryTest, ADeletedSiteIsForgotten) {
  AddSite("st-mary");
  ASSERT_TRUE(directory_.Sync().ok());
  ASSERT_TRUE(client_->Delete(kSite, "", "st-mary").ok());
  ASSERT_TRUE(directory_.Sync().ok());
  EXPECT_FALSE(directory_.Lookup("st-mary").exists);
  EXPECT_TRUE(directory_.Sites().empty());
}

TEST_F(SiteDirectoryTest, ASiteMadeAgainBetweenTwoListingsIsANewSite) {
  AddSite("st-mary");
  ASSERT_TRUE(directory_.Sync().ok());
  ASSERT_TRUE(directory_.SpendEnrollmentToken("st-mary", federation::TokenDigest(Token("st-mary"))));
  ASSERT_TRUE(directory_.Sync().ok());
  const federation::SiteRecord old = directory_.Lookup("st-mary");
  ASSERT_FALSE(old.uid.empty());
  EXPECT_TRUE(old.Admits(old.uid));

  // Deleted and made again before the directory looked.
  ASSERT_TRUE(client_->Delete(kSite, "", "st-mary").ok());
  AddSite("st-mary");
  ASSERT_TRUE(directory_.Sync().ok());
  const federation::SiteRecord fresh = directory_.Lookup("st-mary");
  EXPECT_NE(fresh.uid, old.uid);
  EXPECT_FALSE(fresh.Admits(old.uid)) << "the old Site's certificates speak for no one";
  // Not enrolled: it gets its own token, which enrolls it.
  EXPECT_EQ(Status("st-mary")["phase"], "Pending");
  const std::string token = Token("st-mary");
  ASSERT_FALSE(token.empty());
  EXPECT_TRUE(directory_.SpendEnrollmentToken("st-mary", federation::TokenDigest(token)));
}

TEST_F(SiteDirectoryTest, ARevokedSiteGetsNoToken) {
  AddSite("gone", /*revoked=*/true);
  ASSERT_TRUE(directory_.Sync().ok());
  EXPECT_TRUE(Token("gone").empty());
  EXPECT_EQ(Status("gone")["phase"], "Revoked");
}

}  // namespace
}  // namespace braid::op
