#include "braid/operator/dashboard_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace braid::op {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr absl::Duration kKeepAlive = absl::Seconds(15);

struct HostPort {
  std::string host;
  int port = 0;
};

absl::StatusOr<HostPort> ParseAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dashboard ", address, ": expected HOST:PORT, e.g. 127.0.0.1:8080"));
  }
  HostPort hp;
  hp.host = address.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), &hp.port) || hp.port < 0 || hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dashboard ", address, ": the port must be 0..65535 (0 picks a free one)"));
  }
  return hp;
}

void SendJson(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, const absl::Status& s) {
  const int code = s.code() == absl::StatusCode::kNotFound ? 404 : 500;
  SendJson(res, json{{"error", std::string(s.message())}}, code);
}

class HttplibDashboard final : public DashboardServer {
 public:
  HttplibDashboard(DashboardSource* source, EventFeed* feed, int threads)
      : source_(source), feed_(feed) {
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // httplib's default adds SO_REUSEPORT, which would let a second server
    // share the port silently; keep only SO_REUSEADDR (fast restarts).
    server_.set_socket_options([](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    Routes();
  }
  ~HttplibDashboard() override { Stop(); }

  absl::Status Listen(const DashboardOptions& o) {
    absl::StatusOr<HostPort> hp = ParseAddress(o.address);
    if (!hp.ok()) return hp.status();
    if (!fs::exists(fs::path(o.static_dir) / "index.html")) {
      return absl::InvalidArgumentError(
          absl::StrCat(o.static_dir, ": no index.html; build the web app (see docs/dashboard.md)"));
    }
    if (!server_.set_mount_point("/", o.static_dir)) {
      return absl::InvalidArgumentError(absl::StrCat(o.static_dir, ": not a directory"));
    }
    host_ = hp->host;
    if (hp->port == 0) {
      port_ = server_.bind_to_any_port(host_);
    } else {
      port_ = server_.bind_to_port(host_, hp->port) ? hp->port : -1;
    }
    if (port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("--dashboard ", o.address, ": cannot listen (address in use or not local)"));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the loop runs would be lost and join() would hang: wait
    // until it is accepting.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_.is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
    if (!server_.is_running()) return absl::InternalError("the dashboard server did not start");
    return absl::OkStatus();
  }

  std::string url() const override {
    const bool v6 = host_.find(':') != std::string::npos;
    return absl::StrCat("http://", v6 ? "[" : "", host_, v6 ? "]" : "", ":", port_, "/");
  }
  int port() const override { return port_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    feed_->Close();
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Routes() {
    server_.Get("/api/jobs", [this](const httplib::Request&, httplib::Response& res) {
      SendJson(res, source_->Jobs());
    });
    server_.Get(R"(/api/jobs/([^/]+)/([^/]+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  absl::StatusOr<json> j = source_->Job(req.matches[1], req.matches[2]);
                  j.ok() ? SendJson(res, *j) : SendError(res, j.status());
                });
    server_.Get(R"(/api/jobs/([^/]+)/([^/]+)/audit)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  absl::StatusOr<json> j = source_->Audit(req.matches[1], req.matches[2]);
                  j.ok() ? SendJson(res, *j) : SendError(res, j.status());
                });
    server_.Get("/api/tenants", [this](const httplib::Request&, httplib::Response& res) {
      SendJson(res, source_->Tenants());
    });
    server_.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
      int64_t after = feed_->last_id();
      if (int64_t id = 0; absl::SimpleAtoi(req.get_header_value("Last-Event-ID"), &id)) after = id;
      res.set_header("Cache-Control", "no-store");
      res.set_header("X-Accel-Buffering", "no");
      auto last = std::make_shared<int64_t>(after);
      res.set_chunked_content_provider(
          "text/event-stream", [this, last](size_t offset, httplib::DataSink& sink) {
            if (offset == 0) {
              const std::string hello = "retry: 2000\n: braid dashboard events\n\n";
              if (!sink.write(hello.data(), hello.size())) return false;
            }
            std::vector<DashboardEvent> events = feed_->After(*last, kKeepAlive);
            if (feed_->closed() || !sink.is_writable()) return false;
            std::string out;
            for (const DashboardEvent& e : events) {
              absl::StrAppend(&out, "id: ", e.id, "\nevent: job\ndata: ", e.data.dump(), "\n\n");
              *last = e.id;
            }
            if (out.empty()) out = ": keep-alive\n\n";
            return sink.write(out.data(), out.size());
          });
    });
    server_.Get(R"(/api/.*)", [](const httplib::Request& req, httplib::Response& res) {
      SendJson(res, json{{"error", absl::StrCat("no such API: ", req.path)}}, 404);
    });
  }

  DashboardSource* const source_;
  EventFeed* const feed_;
  httplib::Server server_;
  std::string host_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

absl::StatusOr<std::string> FindWebDir(const std::string& bin_dir) {
  std::vector<std::string> tried;
  if (const char* env = std::getenv("BRAID_WEB_DIR"); env != nullptr && *env != '\0') {
    tried.push_back(env);
  }
  tried.push_back((fs::path(bin_dir).parent_path() / "share" / "braid" / "web").string());
  for (const std::string& dir : tried) {
    if (fs::exists(fs::path(dir) / "index.html")) return fs::absolute(dir).string();
  }
  std::string list;
  for (const std::string& d : tried) absl::StrAppend(&list, list.empty() ? "" : ", ", d);
  return absl::NotFoundError(absl::StrCat(
      "the dashboard's web app is not built (looked in ", list,
      "); build it with `cmake --build build --target braid_web` (needs node and npm) or set "
      "BRAID_WEB_DIR"));
}

absl::StatusOr<std::unique_ptr<DashboardServer>> DashboardServer::Start(
    const DashboardOptions& options, DashboardSource* source, EventFeed* feed) {
  auto server = std::make_unique<HttplibDashboard>(source, feed, std::max(2, options.threads));
  if (absl::Status s = server->Listen(options); !s.ok()) return s;
  return std::unique_ptr<DashboardServer>(std::move(server));
}

}  // namespace braid::op
