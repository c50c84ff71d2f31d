#include "braid/dashboard/server.h"

#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/time/clock.h"
#include "braid/dashboard/auth.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::dashboard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

// A scripted source: one job, "lab/demo".
class FakeSource final : public DashboardSource {
 public:
  json Jobs() const override { return json{{"jobs", json::array({json{{"name", "demo"}}})}}; }
  absl::StatusOr<json> Job(const std::string& ns, const std::string& name) const override {
    if (ns != "lab" || name != "demo") return absl::NotFoundError("no job " + ns + "/" + name);
    return json{{"name", name}, {"rounds", json::array()}};
  }
  absl::StatusOr<json> Audit(const std::string& ns, const std::string& name) const override {
    if (ns != "lab" || name != "demo") return absl::NotFoundError("no job");
    return json{{"verification", {{"ok", true}}}};
  }
  json Tenants() const override {
    return json{{"tenants", json::array({json{{"name", "a"}, {"namespace", "tenant-a"},
                                              {"jobs", json::array({"lab/demo"})}}})}};
  }
  absl::StatusOr<std::string> TenantNamespace(const std::string& tenant) const override {
    if (tenant != "a") return absl::NotFoundError("no tenant " + tenant);
    return std::string("tenant-a");
  }
  absl::StatusOr<json> Decide(const std::string& ns, const std::string& name,
                              const std::string& tenant, bool approve, const std::string& comment,
                              const std::string& by) override {
    if (ns != "lab" || name != "demo") return absl::NotFoundError("no job");
    decisions.push_back(json{{"tenant", tenant}, {"approve", approve}, {"comment", comment},
                             {"by", by}});
    return decisions.back();
  }
  std::vector<json> decisions;
};

class DashboardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    web_ = fs::temp_directory_path() / ("braid-dash-web-" + std::to_string(::getpid()));
    fs::create_directories(web_);
    std::ofstream(web_ / "index.html") << "<!doctype html><title>Braid</title>";
    options_.static_dir = web_.string();
    options_.address = "127.0.0.1:0";
    options_.authorizer = local_.get();
  }
  void TearDown() override { fs::remove_all(web_); }

  // A client of the server at `port` that sends the local token.
  static std::unique_ptr<httplib::Client> Authorized(int port) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_default_headers({{"Authorization", "Bearer s3cret"}});
    return client;
  }

  std::unique_ptr<DashboardAuthorizer> local_ = NewLocalTokenAuthorizer("s3cret", "dashboard");
  fs::path web_;
  DashboardOptions options_;
  FakeSource source_;
  EventFeed feed_;
};

TEST_F(DashboardServerTest, ServesTheApiAndTheApp) {
  auto server = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->url(), "http://127.0.0.1:" + std::to_string((*server)->port()) + "/");
  auto authorized = Authorized((*server)->port());
  httplib::Client& client = *authorized;

  auto res = client.Get("/api/jobs");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(res->body)["jobs"][0]["name"], "demo");

  res = client.Get("/api/jobs/lab/demo");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["name"], "demo");

  res = client.Get("/api/jobs/lab/demo/audit");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["verification"]["ok"], true);

  res = client.Get("/api/jobs/lab/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_THAT(json::parse(res->body)["error"].get<std::string>(), HasSubstr("lab/nope"));

  res = client.Get("/api/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);

  res = client.Get("/api/tenants");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);

  res = client.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("<title>Braid</title>"));
}

TEST_F(DashboardServerTest, StreamsEventsPublishedAfterConnecting) {
  auto server = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(server.ok()) << server.status();
  feed_.Publish(json{{"type", "round"}, {"round", 1}});  // before: not replayed
  // Subscribe, then trigger: the server sends its greeting once the stream
  // has taken its place in the feed, and only then is round 2 published, so
  // a slow connect cannot miss it. The read timeout bounds a broken server.
  auto authorized = Authorized((*server)->port());
  httplib::Client& client = *authorized;
  client.set_read_timeout(20, 0);
  std::string body;
  std::string content_type;
  bool published = false;
  auto res = client.Get(
      "/api/events",
      [&](const httplib::Response& r) {
        content_type = r.get_header_value("Content-Type");
        return true;
      },
      [&](const char* data, size_t len) {
        body.append(data, len);
        if (!published && body.find(": braid dashboard events\n") != std::string::npos) {
          published = true;
          feed_.Publish(json{{"type", "round"}, {"round", 2}});
        }
        return body.find("\"round\":2") == std::string::npos;  // stop once it arrived
      });
  EXPECT_TRUE(published) << body;
  EXPECT_EQ(content_type, "text/event-stream");
  EXPECT_THAT(body, HasSubstr("id: 2\nevent: job\ndata: {\"round\":2,\"type\":\"round\"}"));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("\"round\":1")));
}

TEST_F(DashboardServerTest, StopEndsOpenEventStreams) {
  auto server = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::thread reader([port] {
    auto client = Authorized(port);
    client->set_read_timeout(60, 0);
    client->Get("/api/events", [](const char*, size_t) { return true; });
  });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  (*server)->Stop();
  reader.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(DashboardServerTest, RefusesBadAddressesAndMissingApp) {
  options_.address = "localhost";
  EXPECT_EQ(DashboardServer::Start(options_, &source_, &feed_).status().code(),
            absl::StatusCode::kInvalidArgument);
  options_.address = "127.0.0.1:99999";
  EXPECT_EQ(DashboardServer::Start(options_, &source_, &feed_).status().code(),
            absl::StatusCode::kInvalidArgument);
  options_.address = "127.0.0.1:0";
  options_.static_dir = (web_ / "missing").string();
  auto s = DashboardServer::Start(options_, &source_, &feed_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("index.html"));
}

TEST_F(DashboardServerTest, PortInUseIsUnavailable) {
  auto first = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(first.ok());
  EventFeed other_feed;
  options_.address = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_EQ(DashboardServer::Start(options_, &source_, &other_feed).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(DashboardServerTest, ApproveAndRefuseReachTheSource) {
  auto server = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto authorized = Authorized((*server)->port());
  httplib::Client& client = *authorized;
  auto res = client.Post("/api/jobs/lab/demo/tenants/a/approve", R"({"comment": "ok by DPO"})",
                         "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  res = client.Post("/api/jobs/lab/demo/tenants/a/refuse", "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  ASSERT_EQ(source_.decisions.size(), 2u);
  EXPECT_EQ(source_.decisions[0],
            (json{{"tenant", "a"}, {"approve", true}, {"comment", "ok by DPO"}, {"by", "dashboard"}}));
  EXPECT_EQ(source_.decisions[1]["approve"], false);

  res = client.Post("/api/jobs/lab/demo/tenants/zed/approve", "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = client.Post("/api/jobs/lab/demo/tenants/a/approve", "[1]", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(source_.decisions.size(), 2u);
}

// Tokens "alice" (reads lab, administers tenant-a) and "bob" (reads lab).
class FakeAuthorizer final : public DashboardAuthorizer {
 public:
  absl::StatusOr<Caller> Authenticate(const std::string& token) override {
    if (token != "alice" && token != "bob") return absl::UnauthenticatedError("unknown token");
    return Caller{"user:" + token, "", {}};
  }
  absl::StatusOr<bool> Allowed(const Caller& caller, const Access& a) override {
    asked.push_back(caller.user + " " + a.verb + " " + a.resource + " " + a.ns);
    if (a.verb == "get" && a.resource == "federatedjobs") return a.ns == "lab";
    if (a.verb == "create" && a.resource == "tenantapprovals") {
      return caller.user == "user:alice" && a.ns == "tenant-a";
    }
    return false;
  }
  std::vector<std::string> asked;
};

TEST_F(DashboardServerTest, WithAnAuthorizerTokensAndPermissionsDecide) {
  FakeAuthorizer auth;
  options_.authorizer = &auth;
  auto server = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());

  auto res = client.Get("/api/jobs");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_THAT(res->get_header_value("WWW-Authenticate"), HasSubstr("Bearer"));
  res = client.Get("/api/jobs", {{"Authorization", "Bearer mallory"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = client.Get("/api/events?access_token=mallory");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);

  res = client.Get("/api/jobs/lab/demo", {{"Authorization", "Bearer bob"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(auth.asked.back(), "user:bob get federatedjobs lab");

  res = client.Post("/api/jobs/lab/demo/tenants/a/approve", {{"Authorization", "Bearer bob"}}, "",
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  EXPECT_THAT(res->body, HasSubstr("may not create tenantapprovals in namespace tenant-a"));
  EXPECT_TRUE(source_.decisions.empty());

  res = client.Post("/api/jobs/lab/demo/tenants/a/approve", {{"Authorization", "Bearer alice"}},
                    "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  ASSERT_EQ(source_.decisions.size(), 1u);
  EXPECT_EQ(source_.decisions[0]["by"], "user:alice");
}

TEST(FindWebDir, SaysHowToBuildWhenMissing) {
  auto dir = FindWebDir("/nonexistent/bin");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dir.status().message(), HasSubstr("braid_web"));
}

}  // namespace
}  // namespace braid::dashboard
