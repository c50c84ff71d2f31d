#include "braid/operator/dashboard_server.h"

#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::op {
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
  json Tenants() const override { return json{{"tenants", json::array()}}; }
};

class DashboardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    web_ = fs::temp_directory_path() / ("braid-dash-web-" + std::to_string(::getpid()));
    fs::create_directories(web_);
    std::ofstream(web_ / "index.html") << "<!doctype html><title>Braid</title>";
    options_.static_dir = web_.string();
    options_.address = "127.0.0.1:0";
  }
  void TearDown() override { fs::remove_all(web_); }

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
  httplib::Client client("127.0.0.1", (*server)->port());

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
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(300));
    feed_.Publish(json{{"type", "round"}, {"round", 2}});
  });
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(20, 0);
  std::string body;
  std::string content_type;
  auto res = client.Get(
      "/api/events",
      [&](const httplib::Response& r) {
        content_type = r.get_header_value("Content-Type");
        return true;
      },
      [&](const char* data, size_t len) {
        body.append(data, len);
        return body.find("\"round\":2") == std::string::npos;  // stop once it arrived
      });
  publisher.join();
  EXPECT_EQ(content_type, "text/event-stream");
  EXPECT_THAT(body, HasSubstr("id: 2\nevent: job\ndata: {\"round\":2,\"type\":\"round\"}"));
  EXPECT_THAT(body, ::testing::Not(HasSubstr("\"round\":1")));
}

TEST_F(DashboardServerTest, StopEndsOpenEventStreams) {
  auto server = DashboardServer::Start(options_, &source_, &feed_);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::thread reader([port] {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(60, 0);
    client.Get("/api/events", [](const char*, size_t) { return true; });
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

TEST(FindWebDir, SaysHowToBuildWhenMissing) {
  auto dir = FindWebDir("/nonexistent/bin");
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dir.status().message(), HasSubstr("braid_web"));
}

}  // namespace
}  // namespace braid::op
