// The dashboard against clients that lie or linger, over plain HTTP on
// loopback (the browser half, a cross-origin page, is
// tests/browser/dashboard_csrf.test.mjs): rebinding Host headers,
// cross-origin and form posts, no or a wrong token, huge bodies, trickled
// headers, and more event streams and connections than the limits allow,
// while an honest client is still answered.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/dashboard/auth.h"
#include "braid/dashboard/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::dashboard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class RecordingSource final : public DashboardSource {
 public:
  json Jobs() const override { return json{{"jobs", json::array({json{{"name", "demo"}}})}}; }
  absl::StatusOr<json> Job(const std::string&, const std::string&) const override {
    return json{{"name", "demo"}};
  }
  absl::StatusOr<json> Audit(const std::string&, const std::string&) const override {
    return json{{"entries", json::array()}};
  }
  json Tenants() const override { return json{{"tenants", json::array()}}; }
  absl::StatusOr<std::string> TenantNamespace(const std::string&) const override {
    return std::string("tenant-a");
  }
  absl::StatusOr<json> Decide(const std::string&, const std::string&, const std::string& tenant,
                              bool approve, const std::string&, const std::string& by) override {
    decisions.push_back(json{{"tenant", tenant}, {"approve", approve}, {"by", by}});
    return decisions.back();
  }
  std::vector<json> decisions;
};

// A raw TCP connection to 127.0.0.1:port, from `from` (any 127/8 address:
// another "client").
class Raw {
 public:
  Raw(int port, const char* from = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
  }
  ~Raw() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Reads until `until` is in what was read, the peer closes, or `timeout`.
  // Returns what was read.
  std::string Read(const std::string& until, absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(got_, until) && !closed_) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }
  // Whether the server closes this connection within `timeout`.
  bool ClosedWithin(absl::Duration timeout) {
    Read("\x01never\x02", timeout);
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string got_;
};

constexpr char kToken[] = "0123456789abcdef";

class DashboardHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    web_ = fs::temp_directory_path() / ("braid-dash-hostile-" + std::to_string(::getpid()));
    fs::create_directories(web_);
    std::ofstream(web_ / "index.html") << "<!doctype html><title>Braid</title>";
    options_.static_dir = web_.string();
    options_.authorizer = auth_.get();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(web_);
  }
  void Start() {
    auto s = DashboardServer::Start(options_, &source_, &feed_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    port_ = server_->port();
    host_ = absl::StrCat("127.0.0.1:", port_);
  }
  // One request on its own connection; the status line and headers read.
  std::string Request(const std::string& method, const std::string& path,
                      const std::string& headers, const std::string& body = "",
                      const char* from = "127.0.0.1") {
    Raw c(port_, from);
    EXPECT_TRUE(c.connected());
    c.Send(absl::StrCat(method, " ", path, " HTTP/1.1\r\n", headers,
                        body.empty() ? "" : absl::StrCat("Content-Length: ", body.size(), "\r\n"),
                        "Connection: close\r\n\r\n", body));
    return c.Read("\x01never\x02");
  }
  std::string Authorized() const { return absl::StrCat("Authorization: Bearer ", kToken, "\r\n"); }
  std::string HostIs(const std::string& h) const { return absl::StrCat("Host: ", h, "\r\n"); }
  // An event stream that has started (its greeting arrived).
  std::unique_ptr<Raw> EventStream(const char* from = "127.0.0.1") {
    auto c = std::make_unique<Raw>(port_, from);
    c->Send(absl::StrCat("GET /api/events HTTP/1.1\r\n", HostIs(host_), Authorized(), "\r\n"));
    return c;
  }
  // Whether a normal client is answered 200 for /api/jobs within 3 s.
  bool HonestClientServed(const char* from = "127.0.0.1") {
    Raw c(port_, from);
    c.Send(absl::StrCat("GET /api/jobs HTTP/1.1\r\n", HostIs(host_), Authorized(),
                        "Connection: close\r\n\r\n"));
    return absl::StartsWith(c.Read("\"demo\"", absl::Seconds(3)), "HTTP/1.1 200");
  }

  // A connection the server has accepted and counted: it was served one
  // keep-alive request and stays open. Retries while a connection closed
  // just before still holds its slot on the server.
  std::unique_ptr<Raw> KeptAlive(const char* from = "127.0.0.1") {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      auto c = std::make_unique<Raw>(port_, from);
      c->Send(absl::StrCat("GET /api/jobs HTTP/1.1\r\n", HostIs(host_), Authorized(), "\r\n"));
      if (absl::StartsWith(c->Read("\"demo\"", absl::Seconds(3)), "HTTP/1.1 200")) return c;
    }
    ADD_FAILURE() << "no keep-alive connection from " << from << " was served";
    return std::make_unique<Raw>(port_, from);
  }

  std::unique_ptr<DashboardAuthorizer> auth_ = NewLocalTokenAuthorizer(kToken, "local-user");
  fs::path web_;
  DashboardOptions options_;
  RecordingSource source_;
  EventFeed feed_;
  std::unique_ptr<DashboardServer> server_;
  int port_ = 0;
  std::string host_;
};

TEST_F(DashboardHostileTest, EveryApiReadNeedsTheRunsToken) {
  Start();
  for (const char* path : {"/api/jobs", "/api/jobs/lab/demo", "/api/jobs/lab/demo/audit",
                           "/api/tenants", "/api/events"}) {
    SCOPED_TRACE(path);
    EXPECT_THAT(Request("GET", path, HostIs(host_)), StartsWith("HTTP/1.1 401"));
    EXPECT_THAT(Request("GET", path, HostIs(host_) + "Authorization: Bearer 0123456789abcdeX\r\n"),
                StartsWith("HTTP/1.1 401"));
    EXPECT_THAT(Request("GET", path, HostIs(host_) + "Authorization: Bearer \r\n"),
                StartsWith("HTTP/1.1 401"));
  }
  EXPECT_THAT(Request("GET", "/api/events?access_token=nope", HostIs(host_)),
              StartsWith("HTTP/1.1 401"));
  EXPECT_THAT(Request("GET", "/api/jobs", HostIs(host_) + Authorized()),
              StartsWith("HTTP/1.1 200"));
  Raw events(port_);
  events.Send(absl::StrCat("GET /api/events?access_token=", kToken, " HTTP/1.1\r\n", HostIs(host_),
                           "\r\n"));
  EXPECT_THAT(events.Read(": braid dashboard events"), StartsWith("HTTP/1.1 200"));
  // The app itself holds no job data: it loads, then asks for the token.
  EXPECT_THAT(Request("GET", "/", HostIs(host_)), StartsWith("HTTP/1.1 200"));
}

TEST_F(DashboardHostileTest, OtherHostNamesAreRefused) {
  options_.allowed_hosts = {"braid.example.org"};
  Start();
  const std::string port = absl::StrCat(":", port_);
  for (const char* path : {"/", "/api/jobs"}) {
    SCOPED_TRACE(path);
    // DNS rebinding: evil.example now resolves to 127.0.0.1.
    const std::string rebound = Request("GET", path, HostIs("evil.example" + port) + Authorized());
    EXPECT_THAT(rebound, StartsWith("HTTP/1.1 421"));
    EXPECT_THAT(rebound, HasSubstr("--dashboard-allowed-hosts"));
    EXPECT_THAT(rebound, ::testing::Not(HasSubstr("demo")));
    EXPECT_THAT(Request("GET", path, Authorized()), StartsWith("HTTP/1.1 421"));  // no Host
    EXPECT_THAT(Request("GET", path, HostIs("localhost" + port) + Authorized()),
                StartsWith("HTTP/1.1 200"));
    EXPECT_THAT(Request("GET", path, HostIs("braid.example.org") + Authorized()),
                StartsWith("HTTP/1.1 200"));
  }
  EXPECT_THAT(Request("POST", "/api/jobs/lab/demo/tenants/a/approve",
                      HostIs("evil.example" + port) + Authorized() +
                          "Content-Type: application/json\r\n",
                      "{}"),
              StartsWith("HTTP/1.1 421"));
  EXPECT_TRUE(source_.decisions.empty());
}

TEST_F(DashboardHostileTest, CrossOriginAndFormPostsRecordNothing) {
  Start();
  const std::string approve = "/api/jobs/lab/demo/tenants/a/approve";
  const std::string json_type = "Content-Type: application/json\r\n";
  // A page on another port of this machine, even with the token.
  std::string res = Request("POST", approve,
                            HostIs(host_) + Authorized() + json_type +
                                "Origin: http://127.0.0.1:9999\r\n",
                            "{}");
  EXPECT_THAT(res, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(res, HasSubstr("cross-origin"));
  EXPECT_THAT(Request("POST", approve,
                      HostIs(host_) + Authorized() + json_type + "Origin: null\r\n", "{}"),
              StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(Request("POST", approve,
                      HostIs(host_) + Authorized() + json_type + "Sec-Fetch-Site: same-site\r\n",
                      "{}"),
              StartsWith("HTTP/1.1 403"));
  // A form post: no token can be attached, and its type is not JSON.
  EXPECT_THAT(Request("POST", approve,
                      HostIs(host_) + "Content-Type: application/x-www-form-urlencoded\r\n",
                      "comment=x"),
              StartsWith("HTTP/1.1 415"));
  EXPECT_THAT(Request("POST", approve,
                      HostIs(host_) + Authorized() + "Content-Type: text/plain\r\n", "{}"),
              StartsWith("HTTP/1.1 415"));
  EXPECT_THAT(Request("POST", approve, HostIs(host_) + json_type, "{}"),
              StartsWith("HTTP/1.1 401"));
  // A preflight is never granted.
  res = Request("OPTIONS", approve,
                HostIs(host_) + "Origin: http://127.0.0.1:9999\r\n"
                                "Access-Control-Request-Method: POST\r\n"
                                "Access-Control-Request-Headers: authorization,content-type\r\n");
  EXPECT_THAT(res, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(res, ::testing::Not(HasSubstr("Access-Control-Allow")));
  EXPECT_TRUE(source_.decisions.empty());

  // The dashboard's own page: same origin, token, JSON.
  EXPECT_THAT(Request("POST", approve,
                      HostIs(host_) + Authorized() + json_type +
                          absl::StrCat("Origin: http://", host_, "\r\nSec-Fetch-Site: same-origin\r\n"),
                      R"({"comment": "DPO ok"})"),
              StartsWith("HTTP/1.1 200"));
  ASSERT_EQ(source_.decisions.size(), 1u);
  EXPECT_EQ(source_.decisions[0]["by"], "local-user");
}

TEST_F(DashboardHostileTest, AHugeBodyIsRefusedBeforeItIsRead) {
  Start();
  const std::string head = absl::StrCat("POST /api/jobs/lab/demo/tenants/a/approve HTTP/1.1\r\n",
                                        HostIs(host_), Authorized(),
                                        "Content-Type: application/json\r\n");
  {
    // 400 MB announced, none sent: answered at once, and the connection closed.
    Raw c(port_);
    c.Send(head + "Content-Length: 400000000\r\n\r\n{\"comment\": \"");
    EXPECT_THAT(c.Read("\r\n\r\n", absl::Seconds(3)), StartsWith("HTTP/1.1 413"));
    EXPECT_TRUE(c.ClosedWithin(absl::Seconds(3)));
  }
  {
    Raw c(port_);
    c.Send(head + "Content-Length: 400000000\r\nExpect: 100-continue\r\n\r\n");
    const std::string got = c.Read("\r\n\r\n", absl::Seconds(3));
    EXPECT_THAT(got, StartsWith("HTTP/1.1 413"));
    EXPECT_THAT(got, ::testing::Not(HasSubstr("100 Continue")));
  }
  {
    // Chunked bodies have no length to check up front: refused.
    Raw c(port_);
    c.Send(head + "Transfer-Encoding: chunked\r\n\r\n10000000\r\n");
    EXPECT_THAT(c.Read("\r\n\r\n", absl::Seconds(3)), StartsWith("HTTP/1.1 411"));
    EXPECT_TRUE(c.ClosedWithin(absl::Seconds(3)));
  }
  EXPECT_TRUE(source_.decisions.empty());
  EXPECT_TRUE(HonestClientServed());
}

TEST_F(DashboardHostileTest, TrickledHeadersAreCutOffAtTheRequestDeadline) {
  options_.limits.request_timeout = absl::Seconds(1);
  Start();
  Raw slow(port_);
  slow.Send("GET /api/jobs HTTP/1.1\r\n");
  // One header byte every 200 ms: every single read is quick, the request
  // never ends.
  const absl::Time start = absl::Now();
  bool closed = false;
  while (!closed && absl::Now() - start < absl::Seconds(8)) {
    slow.Send("X");
    closed = slow.ClosedWithin(absl::Milliseconds(200));
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_TRUE(HonestClientServed());
}

TEST_F(DashboardHostileTest, EndlessHeadersAreCutAtTheirBound) {
  Start();  // the request deadline (10 s) is not what ends it
  Raw big(port_);
  big.Send(absl::StrCat("GET /api/jobs HTTP/1.1\r\nX-Junk: ", std::string(64 * 1024, 'a')));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(big.ClosedWithin(absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(HonestClientServed());
}

TEST_F(DashboardHostileTest, StreamsAndSlowClientsLeaveRoomForHonestRequests) {
  Start();  // defaults: 16 streams, 8 per address; 64 connections, 32 per address
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(EventStream());
    ASSERT_THAT(held.back()->Read(": braid dashboard events"), StartsWith("HTTP/1.1 200"));
  }
  for (int i = 0; i < 8; ++i) {  // slow clients: half a request each
    held.push_back(std::make_unique<Raw>(port_));
    held.back()->Send(absl::StrCat("GET /api/jobs HTTP/1.1\r\n", HostIs(host_)));
  }
  EXPECT_TRUE(HonestClientServed());
  // A ninth stream from the same address is refused; another address may
  // open its own up to the overall bound, then everyone is refused.
  EXPECT_THAT(EventStream()->Read("\r\n\r\n"), StartsWith("HTTP/1.1 429"));
  for (int i = 0; i < 8; ++i) {
    held.push_back(EventStream("127.0.0.2"));
    ASSERT_THAT(held.back()->Read(": braid dashboard events"), StartsWith("HTTP/1.1 200"));
  }
  EXPECT_THAT(EventStream("127.0.0.3")->Read("\r\n\r\n"), StartsWith("HTTP/1.1 503"));
  EXPECT_TRUE(HonestClientServed());
  EXPECT_TRUE(HonestClientServed("127.0.0.3"));
  // A closed stream gives its slot back.
  held.erase(held.begin());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool reopened = false;
  while (!reopened && absl::Now() < deadline) {
    auto again = EventStream();
    reopened = absl::StartsWith(again->Read("\r\n\r\n"), "HTTP/1.1 200");
    if (reopened) held.push_back(std::move(again));
  }
  EXPECT_TRUE(reopened);
}

TEST_F(DashboardHostileTest, ConnectionsBeyondTheLimitsAreRefusedAtOnce) {
  options_.limits.max_connections = 6;
  options_.limits.max_connections_per_client = 3;
  Start();
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(KeptAlive());
  // The fourth from that address: 503 and closed, without waiting for it.
  Raw fourth(port_);
  fourth.Send(absl::StrCat("GET /api/jobs HTTP/1.1\r\n", HostIs(host_), Authorized(), "\r\n"));
  EXPECT_THAT(fourth.Read("\r\n\r\n", absl::Seconds(2)), StartsWith("HTTP/1.1 503"));
  EXPECT_TRUE(HonestClientServed("127.0.0.2"));
  for (int i = 0; i < 3; ++i) idle.push_back(KeptAlive("127.0.0.2"));
  Raw seventh(port_, "127.0.0.3");
  seventh.Send(absl::StrCat("GET /api/jobs HTTP/1.1\r\n", HostIs(host_), Authorized(), "\r\n"));
  EXPECT_THAT(seventh.Read("\r\n\r\n", absl::Seconds(2)), StartsWith("HTTP/1.1 503"));
  // Idle connections are closed after idle_timeout and make room again.
  idle.clear();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  bool served = false;
  while (!served && absl::Now() < deadline) served = HonestClientServed();
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace braid::dashboard
