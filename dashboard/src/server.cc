#include "braid/dashboard/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/core/status_macros.h"
#include "braid/dashboard/request_rules.h"
#include "guarded_server.h"

namespace braid::dashboard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr absl::Duration kKeepAlive = absl::Seconds(15);
// How often an idle event stream checks whether its client went away (and
// gives its slot back).
constexpr absl::Duration kPeerCheck = absl::Seconds(1);

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

int HttpCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kFailedPrecondition: return 409;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

void SendError(httplib::Response& res, const absl::Status& s) {
  if (s.code() == absl::StatusCode::kUnauthenticated) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"braid\"");
  }
  SendJson(res, json{{"error", std::string(s.message())}}, HttpCode(s));
}

std::string Namespace(const std::string& job_key) {
  const size_t slash = job_key.find('/');
  return slash == std::string::npos ? "" : job_key.substr(0, slash);
}

ConnectionLimits ToConnectionLimits(const DashboardLimits& l) {
  ConnectionLimits c;
  c.max_connections = std::max(1, l.max_connections);
  c.max_connections_per_client = std::max(1, l.max_connections_per_client);
  c.max_head_bytes = std::max<size_t>(1024, l.max_head_bytes);
  c.request_timeout = l.request_timeout;
  c.idle_timeout = l.idle_timeout;
  return c;
}

void Refuse(httplib::Response& res, int status, const std::string& why) {
  SendJson(res, json{{"error", why}}, status);
}

// Holds one of the event streams the limits allow; released when the
// stream's response is done.
class StreamSlots {
 public:
  StreamSlots(int max, int per_client) : max_(max), per_client_max_(per_client) {}
  // 0 when a slot was taken for `client`, else the HTTP status to refuse.
  int Take(const std::string& client) {
    absl::MutexLock lock(&mu_);
    if (open_ >= max_) return 503;
    if (per_client_[client] >= per_client_max_) return 429;
    ++open_;
    ++per_client_[client];
    return 0;
  }
  void Give(const std::string& client) {
    absl::MutexLock lock(&mu_);
    --open_;
    if (--per_client_[client] <= 0) per_client_.erase(client);
  }

 private:
  const int max_, per_client_max_;
  absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> per_client_ ABSL_GUARDED_BY(mu_);
};

class HttplibDashboard final : public DashboardServer {
 public:
  HttplibDashboard(DashboardSource* source, EventFeed* feed, const DashboardOptions& o)
      : source_(source),
        feed_(feed),
        authorizer_(o.authorizer),
        allowed_hosts_(o.allowed_hosts),
        limits_(o.limits),
        server_(ToConnectionLimits(o.limits)),
        streams_(std::max(1, o.limits.max_event_streams),
                 std::max(1, o.limits.max_event_streams_per_client)) {
    // httplib's default adds SO_REUSEPORT, which would let a second server
    // share the port silently; keep only SO_REUSEADDR (fast restarts).
    server_.set_socket_options([](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server_.set_payload_max_length(limits_.max_body_bytes);  // a second line behind Screen
    // "Expect: 100-continue" is answered before routing: refuse a body
    // that is too large there, before the client sends it.
    server_.set_expect_100_continue_handler(
        [this](const httplib::Request& req, httplib::Response& res) {
          uint64_t length = 0;
          if (absl::SimpleAtoi(req.get_header_value("Content-Length"), &length) &&
              length <= limits_.max_body_bytes) {
            return 100;
          }
          CloseConnectionAfterResponse(res);
          Refuse(res, 413, absl::StrCat("the body must declare a length of at most ",
                                        limits_.max_body_bytes, " bytes"));
          return 413;
        });
    server_.set_pre_routing_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return Screen(req, res); });
    Routes();
  }
  ~HttplibDashboard() override { Stop(); }

  absl::Status Listen(const DashboardOptions& o) {
    if (o.authorizer == nullptr) {
      return absl::InvalidArgumentError(
          "the dashboard needs an authorizer (NewLocalTokenAuthorizer for one user)");
    }
    absl::StatusOr<HostPort> hp = ParseAddress(o.address);
    if (!hp.ok()) return hp.status();
    if (!o.api_only) {
      if (!fs::exists(fs::path(o.static_dir) / "index.html")) {
        return absl::InvalidArgumentError(absl::StrCat(
            o.static_dir, ": no index.html; build the web app (see docs/dashboard.md)"));
      }
      if (!server_.set_mount_point("/", o.static_dir)) {
        return absl::InvalidArgumentError(absl::StrCat(o.static_dir, ": not a directory"));
      }
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
  // Every request, before its route: the rules of server.h's header
  // comment that a browser's cross-origin or rebinding request would break.
  httplib::Server::HandlerResponse Screen(const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    const std::string host = req.get_header_value("Host");
    if (!HostAllowed(host, allowed_hosts_)) {
      CloseConnectionAfterResponse(res);
      Refuse(res, 421,
             absl::StrCat("this dashboard is not served as \"", host.substr(0, 200),
                          "\" (DNS rebinding?); reach it by its address or localhost, or add "
                          "the name to --dashboard-allowed-hosts"));
      return R::Handled;
    }
    if (req.method == "OPTIONS") {
      Refuse(res, 403, "cross-origin requests are not allowed");
      return R::Handled;
    }
    if (req.has_header("Transfer-Encoding")) {
      CloseConnectionAfterResponse(res);
      Refuse(res, 411, "send the body with a Content-Length");
      return R::Handled;
    }
    if (req.has_header("Content-Length")) {
      uint64_t length = 0;
      if (!absl::SimpleAtoi(req.get_header_value("Content-Length"), &length)) {
        CloseConnectionAfterResponse(res);
        Refuse(res, 400, "malformed Content-Length");
        return R::Handled;
      }
      if (length > limits_.max_body_bytes) {
        CloseConnectionAfterResponse(res);
        Refuse(res, 413, absl::StrCat("the body is larger than ", limits_.max_body_bytes,
                                      " bytes"));
        return R::Handled;
      }
    }
    if (req.path.rfind("/api/", 0) != 0) return R::Unhandled;
    const std::string origin = req.get_header_value("Origin");
    const std::string site = req.get_header_value("Sec-Fetch-Site");
    if (!SameOrigin(origin, host) || site == "cross-site" || site == "same-site") {
      Refuse(res, 403,
             absl::StrCat("cross-origin request refused (Origin \"", origin.substr(0, 200),
                          "\"): the dashboard's API answers its own pages only"));
      return R::Handled;
    }
    if (req.method != "GET" && req.method != "HEAD" && req.get_header_value_count("Content-Length") > 0 &&
        req.get_header_value("Content-Length") != "0") {
      const std::string type = req.get_header_value("Content-Type");
      if (type.rfind("application/json", 0) != 0) {
        CloseConnectionAfterResponse(res);
        Refuse(res, 415, "the body must be JSON (Content-Type: application/json)");
        return R::Handled;
      }
    }
    return R::Unhandled;
  }

  // The caller. Unauthenticated without a valid token.
  absl::StatusOr<Caller> Authenticate(const httplib::Request& req) const {
    std::string token;
    const std::string header = req.get_header_value("Authorization");
    if (header.rfind("Bearer ", 0) == 0) {
      token = header.substr(7);
    } else if (req.path == "/api/events" && req.has_param("access_token")) {
      token = req.get_param_value("access_token");
    }
    // An empty token is the authorizer's to refuse (with its own advice).
    return authorizer_->Authenticate(token);
  }

  // OK when allowed; PermissionDenied naming what is missing otherwise.
  absl::Status Check(const Caller& caller, const Access& access) const {
    BRAID_ASSIGN_OR_RETURN(bool ok, authorizer_->Allowed(caller, access));
    if (ok) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(caller.user, " may not ", access.verb, " ",
                                                    access.resource, " in namespace ", access.ns));
  }

  // Per request: whether the caller may read jobs in a namespace.
  class ReadableNamespaces {
   public:
    ReadableNamespaces(const HttplibDashboard* d, const Caller& c)
        : d_(d), caller_(c) {}
    bool operator()(const std::string& ns) {
      auto it = cache_.find(ns);
      if (it != cache_.end()) return it->second;
      const bool ok = d_->Check(caller_, Access{"get", "braid.dev", "federatedjobs", ns}).ok();
      cache_[ns] = ok;
      return ok;
    }

   private:
    const HttplibDashboard* d_;
    const Caller& caller_;
    std::map<std::string, bool> cache_;
  };

  // Wraps a handler: authenticates, then runs `fn(caller)`; a failed
  // status becomes the error answer.
  template <typename Fn>
  auto Guarded(Fn fn) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<Caller> caller = Authenticate(req);
      if (!caller.ok()) return SendError(res, caller.status());
      absl::StatusOr<json> body = fn(req, res, *caller);
      if (!body.ok()) return SendError(res, body.status());
      if (!body->is_null()) SendJson(res, *body);
    };
  }

  void Routes() {
    using Req = httplib::Request;
    using Res = httplib::Response;
    server_.Get("/api/jobs", Guarded([this](const Req&, Res&, const Caller& caller)
                                         -> absl::StatusOr<json> {
      json all = source_->Jobs();
      ReadableNamespaces readable(this, caller);
      json kept = json::array();
      for (const json& row : all["jobs"]) {
        if (readable(row.value("namespace", ""))) kept.push_back(row);
      }
      return json{{"jobs", kept}};
    }));
    server_.Get(R"(/api/jobs/([^/]+)/([^/]+))",
                Guarded([this](const Req& req, Res&, const Caller& caller)
                            -> absl::StatusOr<json> {
                  BRAID_RETURN_IF_ERROR(
                      Check(caller, Access{"get", "braid.dev", "federatedjobs", req.matches[1]}));
                  return source_->Job(req.matches[1], req.matches[2]);
                }));
    server_.Get(R"(/api/jobs/([^/]+)/([^/]+)/audit)",
                Guarded([this](const Req& req, Res&, const Caller& caller)
                            -> absl::StatusOr<json> {
                  BRAID_RETURN_IF_ERROR(
                      Check(caller, Access{"get", "braid.dev", "federatedjobs", req.matches[1]}));
                  return source_->Audit(req.matches[1], req.matches[2]);
                }));
    server_.Post(R"(/api/jobs/([^/]+)/([^/]+)/tenants/([^/]+)/(approve|refuse))",
                 Guarded([this](const Req& req, Res&, const Caller& caller)
                             -> absl::StatusOr<json> {
                   const std::string ns = req.matches[1], name = req.matches[2],
                                     tenant = req.matches[3];
                   const bool approve = req.matches[4] == "approve";
                   std::string comment;
                   if (!req.body.empty()) {
                     const json body = json::parse(req.body, nullptr, false);
                     if (!body.is_object() ||
                         (body.contains("comment") && !body["comment"].is_string())) {
                       return absl::InvalidArgumentError(
                           "the body must be a JSON object {\"comment\": \"...\"}");
                     }
                     comment = body.value("comment", "");
                   }
                   BRAID_ASSIGN_OR_RETURN(std::string tenant_ns, source_->TenantNamespace(tenant));
                   BRAID_RETURN_IF_ERROR(
                       Check(caller, Access{"create", "braid.dev", "tenantapprovals", tenant_ns}));
                   return source_->Decide(ns, name, tenant, approve, comment,
                                          caller.user);
                 }));
    server_.Get("/api/tenants", Guarded([this](const Req&, Res&, const Caller& caller)
                                            -> absl::StatusOr<json> {
      json all = source_->Tenants();
      ReadableNamespaces readable(this, caller);
      json kept = json::array();
      for (const json& t : all["tenants"]) {
        bool visible = false;
        for (const json& job : t.value("jobs", json::array())) {
          if (job.is_string() && readable(Namespace(job.get<std::string>()))) visible = true;
        }
        if (!visible) {
          visible = Check(caller, Access{"create", "braid.dev", "tenantapprovals",
                                         t.value("namespace", "")})
                        .ok();
        }
        if (visible) kept.push_back(t);
      }
      return json{{"tenants", kept}};
    }));
    server_.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
      absl::StatusOr<Caller> caller = Authenticate(req);
      if (!caller.ok()) return SendError(res, caller.status());
      const std::string client = req.remote_addr;
      if (const int refused = streams_.Take(client); refused != 0) {
        res.set_header("Retry-After", "5");
        return Refuse(res, refused,
                      refused == 429
                          ? absl::StrCat("too many event streams from this address (at most ",
                                         limits_.max_event_streams_per_client, ")")
                          : absl::StrCat("too many event streams (at most ",
                                         limits_.max_event_streams, ")"));
      }
      // The slot is given back when the response (and this provider) is gone.
      auto slot = std::shared_ptr<void>(nullptr, [this, client](void*) { streams_.Give(client); });
      int64_t after = feed_->last_id();
      if (int64_t id = 0; absl::SimpleAtoi(req.get_header_value("Last-Event-ID"), &id)) after = id;
      res.set_header("Cache-Control", "no-store");
      res.set_header("X-Accel-Buffering", "no");
      auto last = std::make_shared<int64_t>(after);
      auto last_write = std::make_shared<absl::Time>(absl::Now());
      auto greeted = std::make_shared<bool>(false);
      auto who = std::make_shared<Caller>(*caller);
      auto readable = std::make_shared<ReadableNamespaces>(this, *who);
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, last, last_write, greeted, who, readable, slot](size_t, httplib::DataSink& sink) {
            if (!*greeted) {
              *greeted = true;
              const std::string hello = "retry: 2000\n: braid dashboard events\n\n";
              if (!sink.write(hello.data(), hello.size())) return false;
              *last_write = absl::Now();
            }
            std::vector<DashboardEvent> events = feed_->After(*last, kPeerCheck);
            if (feed_->closed() || !sink.is_writable() || PeerClosedConnection()) return false;
            std::string out;
            for (const DashboardEvent& e : events) {
              *last = e.id;
              if (!(*readable)(e.data.value("namespace", ""))) continue;
              absl::StrAppend(&out, "id: ", e.id, "\nevent: job\ndata: ", e.data.dump(), "\n\n");
            }
            if (out.empty()) {
              if (absl::Now() - *last_write < kKeepAlive) return true;  // wait on
              out = ": keep-alive\n\n";
            }
            *last_write = absl::Now();
            return sink.write(out.data(), out.size());
          });
    });
    server_.Get(R"(/api/.*)", [](const httplib::Request& req, httplib::Response& res) {
      SendJson(res, json{{"error", absl::StrCat("no such API: ", req.path)}}, 404);
    });
    server_.Post(R"(/api/.*)", [](const httplib::Request& req, httplib::Response& res) {
      SendJson(res, json{{"error", absl::StrCat("no such API: ", req.path)}}, 404);
    });
  }

  DashboardSource* const source_;
  EventFeed* const feed_;
  DashboardAuthorizer* const authorizer_;
  const std::vector<std::string> allowed_hosts_;
  const DashboardLimits limits_;
  GuardedServer server_;
  StreamSlots streams_;
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
  auto server = std::make_unique<HttplibDashboard>(source, feed, options);
  if (absl::Status s = server->Listen(options); !s.ok()) return s;
  return std::unique_ptr<DashboardServer>(std::move(server));
}

}  // namespace braid::dashboard
