// The libcurl transport against a small HTTP/1.1 server on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "braid/kube/http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

using ::testing::HasSubstr;

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Serves each request on a connection with `handler`; counts connections.
class TestServer {
 public:
  struct Request {
    std::string head;  // request line and headers
    std::string body;
  };
  // Writes a response to `fd`; `stop` turns true when the server closes.
  using Handler = std::function<void(int fd, const Request&, const std::atomic<bool>& stop)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listen_fd_, 16);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestServer() {
    stop_ = true;
    accept_thread_.join();
    for (std::thread& t : conn_threads_) t.join();
    ::close(listen_fd_);
  }
  // Makes every handler see `stop` and every connection close; idempotent.
  void Stop() { stop_ = true; }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int connections() const { return connections_.load(); }
  std::vector<Request> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      conn_threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string buf;
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char tmp[4096];
      const ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
      for (;;) {
        const size_t end = buf.find("\r\n\r\n");
        if (end == std::string::npos) break;
        Request r{buf.substr(0, end), ""};
        size_t length = 0;
        const size_t cl = r.head.find("Content-Length: ");
        if (cl != std::string::npos) {
          (void)absl::SimpleAtoi(r.head.substr(cl + 16, r.head.find("\r\n", cl) - cl - 16), &length);
        }
        if (buf.size() < end + 4 + length) break;
        r.body = buf.substr(end + 4, length);
        buf.erase(0, end + 4 + length);
        {
          absl::MutexLock lock(&mu_);
          requests_.push_back(r);
        }
        handler_(fd, r, stop_);
      }
    }
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::vector<std::thread> conn_threads_;  // touched only by the accept thread, then joined
  absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
};

void Respond(int fd, int status, const std::string& body) {
  SendAll(fd, absl::StrCat("HTTP/1.1 ", status, " X\r\nContent-Type: application/json\r\n",
                           "Content-Length: ", body.size(), "\r\n\r\n", body));
}

std::string Chunk(const std::string& data) {
  return absl::StrFormat("%x\r\n%s\r\n", data.size(), data);
}

Config ConfigFor(const TestServer& server) {
  Config c;
  c.server = server.url();
  c.token = "secret-token";
  return c;
}

TEST(CurlTransportTest, SendsMethodPathHeadersAndBodyAndReusesTheConnection) {
  TestServer server([](int fd, const TestServer::Request& r, const std::atomic<bool>&) {
    Respond(fd, absl::StartsWith(r.head, "POST") ? 201 : 200, R"({"ok":true})");
  });
  auto transport = NewCurlTransport(ConfigFor(server));
  ASSERT_TRUE(transport.ok()) << transport.status();
  absl::StatusOr<HttpResponse> r = (*transport)->Do({"GET", "/api/v1/pods?limit=5", "", "", absl::Seconds(5)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  r = (*transport)->Do({"POST", "/api/v1/namespaces/a/configmaps", "application/json", R"({"x":1})", absl::Seconds(5)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(requests[0].head, "GET /api/v1/pods?limit=5 HTTP/1.1"));
  EXPECT_THAT(requests[0].head, HasSubstr("Authorization: Bearer secret-token"));
  EXPECT_THAT(requests[0].head, HasSubstr("Accept: application/json"));
  EXPECT_TRUE(absl::StartsWith(requests[1].head, "POST /api/v1/namespaces/a/configmaps HTTP/1.1"));
  EXPECT_THAT(requests[1].head, HasSubstr("Content-Type: application/json"));
  EXPECT_EQ(requests[1].body, R"({"x":1})");
  EXPECT_EQ(server.connections(), 1);  // pooled handle kept the connection
}

TEST(CurlTransportTest, TokenFileIsReReadWhenItChanges) {
  namespace fs = std::filesystem;
  const fs::path token = fs::temp_directory_path() / absl::StrCat("braid_kube_token_", ::getpid());
  std::ofstream(token) << "first\n";
  TestServer server([](int fd, const TestServer::Request&, const std::atomic<bool>&) {
    Respond(fd, 200, "{}");
  });
  Config config = ConfigFor(server);
  config.token.clear();
  config.token_file = token.string();
  auto transport = NewCurlTransport(config);
  ASSERT_TRUE(transport.ok());
  ASSERT_TRUE((*transport)->Do({"GET", "/a", "", "", absl::Seconds(5)}).ok());
  std::ofstream(token) << "second-token\n";  // rotated (size and mtime change)
  fs::last_write_time(token, fs::last_write_time(token) + std::chrono::seconds(1));
  ASSERT_TRUE((*transport)->Do({"GET", "/b", "", "", absl::Seconds(5)}).ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[0].head, HasSubstr("Authorization: Bearer first"));
  EXPECT_THAT(requests[0].head, ::testing::Not(HasSubstr("first\n")));  // trimmed
  EXPECT_THAT(requests[1].head, HasSubstr("Authorization: Bearer second-token"));
  fs::remove(token);
}

TEST(CurlTransportTest, StreamDeliversBytesAsTheyArrive) {
  TestServer server([](int fd, const TestServer::Request&, const std::atomic<bool>&) {
    SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (const char* part : {"{\"type\":\"ADD", "ED\"}\n", "{\"x\":1}\n"}) {
      SendAll(fd, Chunk(part));
      absl::SleepFor(absl::Milliseconds(20));
    }
    SendAll(fd, "0\r\n\r\n");
  });
  auto transport = NewCurlTransport(ConfigFor(server));
  ASSERT_TRUE(transport.ok());
  std::string got;
  int calls = 0;
  absl::StatusOr<HttpResponse> r = (*transport)->Stream(
      {"GET", "/w?watch=1", "", "", absl::ZeroDuration()},
      [&](std::string_view d) { got.append(d); ++calls; return true; }, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(got, "{\"type\":\"ADDED\"}\n{\"x\":1}\n");
  EXPECT_GE(calls, 2);
}

TEST(CurlTransportTest, StreamStopsOnCancelAndOnCallback) {
  TestServer server([](int fd, const TestServer::Request&, const std::atomic<bool>& stop) {
    SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    SendAll(fd, Chunk("{}\n"));
    // Then silence until the client hangs up, as an idle watch.
    while (!stop) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        char c;
        if (::recv(fd, &c, 1, MSG_PEEK) <= 0) return;
      }
    }
  });
  auto transport = NewCurlTransport(ConfigFor(server));
  ASSERT_TRUE(transport.ok());
  // Cancel once the first chunk has arrived, i.e. while the stream idles.
  CancelToken cancel;
  absl::Notification got_first_chunk;
  std::promise<absl::StatusOr<HttpResponse>> result;
  std::thread streamer([&] {
    result.set_value((*transport)->Stream(
        {"GET", "/w", "", "", absl::ZeroDuration()},
        [&](std::string_view) {
          if (!got_first_chunk.HasBeenNotified()) got_first_chunk.Notify();
          return true;
        },
        &cancel));
  });
  ASSERT_TRUE(got_first_chunk.WaitForNotificationWithTimeout(absl::Seconds(30)));
  cancel.Cancel();
  // The idle server never hangs up: only the cancellation can end the call.
  std::future<absl::StatusOr<HttpResponse>> returned = result.get_future();
  const bool ended = returned.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  if (!ended) server.Stop();  // unblock the streamer so the test can fail cleanly
  streamer.join();
  ASSERT_TRUE(ended) << "Stream did not return after Cancel()";
  absl::StatusOr<HttpResponse> r = returned.get();
  ASSERT_TRUE(r.ok()) << r.status();

  r = (*transport)->Stream({"GET", "/w", "", "", absl::ZeroDuration()},
                           [](std::string_view) { return false; }, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST(CurlTransportTest, StreamReturnsErrorBodiesWhole) {
  TestServer server([](int fd, const TestServer::Request&, const std::atomic<bool>&) {
    Respond(fd, 403, R"({"kind":"Status","code":403})");
  });
  auto transport = NewCurlTransport(ConfigFor(server));
  ASSERT_TRUE(transport.ok());
  bool called = false;
  absl::StatusOr<HttpResponse> r = (*transport)->Stream(
      {"GET", "/w", "", "", absl::Seconds(5)}, [&](std::string_view) { called = true; return true; },
      nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(r->body, R"({"kind":"Status","code":403})");
  EXPECT_FALSE(called);
}

TEST(CurlTransportTest, TransportFailuresAreUnavailable) {
  int port = 0;
  {
    TestServer closed([](int, const TestServer::Request&, const std::atomic<bool>&) {});
    port = std::stoi(closed.url().substr(closed.url().rfind(':') + 1));
  }
  Config config;
  config.server = absl::StrCat("http://127.0.0.1:", port);
  auto transport = NewCurlTransport(config);
  ASSERT_TRUE(transport.ok());
  absl::StatusOr<HttpResponse> r = (*transport)->Do({"GET", "/api/v1/pods", "", "", absl::Seconds(5)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("GET "));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/api/v1/pods"));
}

TEST(CurlTransportTest, RejectsBadConfig) {
  Config c;
  c.server = "ftp://x";
  EXPECT_EQ(NewCurlTransport(c).status().code(), absl::StatusCode::kInvalidArgument);
  c.server = "https://x";
  c.client_cert_pem = "-----BEGIN CERTIFICATE-----";
  EXPECT_EQ(NewCurlTransport(c).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid::kube
