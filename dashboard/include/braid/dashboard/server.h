// The dashboard's HTTP server (cpp-httplib): the built web app's static
// files and the JSON API under /api/ over a DashboardSource, with live
// updates as Server-Sent Events.
//
//   GET /api/jobs                      DashboardSource::Jobs()
//   GET /api/jobs/{namespace}/{name}   DashboardSource::Job()
//   GET /api/jobs/{ns}/{name}/audit    DashboardSource::Audit()
//   GET /api/tenants                   DashboardSource::Tenants()
//   POST /api/jobs/{ns}/{name}/tenants/{tenant}/approve|refuse
//                                      DashboardSource::Decide(); optional
//                                      JSON body {"comment": "..."}
//   GET /api/events                    text/event-stream: "event: job" with
//                                      the EventFeed's data; a comment every
//                                      15 s keeps idle connections open;
//                                      Last-Event-ID resumes
//   GET /...                           files under static_dir (index.html)
//
// Errors are JSON {"error": "..."} with 404 (unknown job or path), 409
// (decisions cannot be recorded), 503 (the authorizer cannot be asked) or
// 500.
//
// Every /api/ call needs "Authorization: Bearer TOKEN" (/api/events may
// pass ?access_token=TOKEN instead: EventSource cannot set headers); 401
// without a valid token. The authorizer decides what the token may do: a
// LocalTokenAuthorizer everything; a KubeDashboardAuthorizer asks RBAC: a
// job, its audit and its events need `get federatedjobs` in the job's
// namespace (the job list and the event stream leave out the others; 403
// for one job); a tenant is listed when one of its jobs is readable or the
// caller may `create tenantapprovals` in its namespace; approve/refuse needs
// `create tenantapprovals` in the tenant's namespace (403 otherwise, and
// nothing is recorded). The decision names the caller's user.
//
// Before any route, every request is checked (browsers are the threat: a
// page of any origin can make this browser send requests here):
//   - Host must be an IP address, localhost, or one of allowed_hosts: 421
//     otherwise (DNS rebinding);
//   - OPTIONS (CORS preflights) are 403 and no response carries
//     Access-Control-* headers, so no other origin may send the token;
//   - an /api/ request whose Origin is not this server's, or whose
//     Sec-Fetch-Site is cross-site or same-site (another port), is 403;
//   - a POST body must be application/json (415), declare its length (411
//     for chunked) and be at most limits.max_body_bytes (413, answered before
//     the body is read; the connection is then closed).
// Connections, event streams and request heads are bounded (DashboardLimits).
// Requests are served on the server's own threads: a slow or stuck client
// never blocks the job that feeds the source.
#ifndef BRAID_DASHBOARD_SERVER_H_
#define BRAID_DASHBOARD_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/dashboard/auth.h"
#include "braid/dashboard/event_feed.h"
#include "braid/dashboard/source.h"

namespace braid::dashboard {

// What one client, and all of them, may hold of the server. Each open
// connection holds a thread.
struct DashboardLimits {
  // Open connections, overall and from one address; beyond: 503 and closed.
  int max_connections = 64;
  int max_connections_per_client = 32;
  // Open /api/events streams, overall and from one address; beyond: 503
  // overall, 429 per address. Kept below max_connections so that streams
  // never take every thread.
  int max_event_streams = 16;
  int max_event_streams_per_client = 8;
  // A request body (approve/refuse: a comment); beyond: 413 unread.
  size_t max_body_bytes = 64 * 1024;
  // A request's line and headers; beyond: the connection is closed.
  size_t max_head_bytes = 32 * 1024;
  // A request's line, headers and body must arrive within this from its
  // first byte (a client trickling bytes holds a thread at most this long).
  absl::Duration request_timeout = absl::Seconds(10);
  // An idle keep-alive connection is closed after this.
  absl::Duration idle_timeout = absl::Seconds(5);
};

struct DashboardOptions {
  // host:port to listen on, e.g. "127.0.0.1:8080" or "[::1]:0"; port 0
  // picks a free port. Only this address is bound.
  std::string address = "127.0.0.1:0";
  // The built web app (index.html, assets/). Required to exist unless
  // api_only.
  std::string static_dir;
  bool api_only = false;  // serve /api/ only (no web app available)
  // Required; not owned; outlives the server. Who each token is and what
  // it may do (auth.h: NewLocalTokenAuthorizer for one user and a secret).
  DashboardAuthorizer* authorizer = nullptr;
  // Host names (besides IP addresses and localhost) this dashboard is
  // reached by, e.g. an Ingress's "braid.example.org"; ".example.org"
  // allows every name under it. Other Host headers get 421.
  std::vector<std::string> allowed_hosts;
  DashboardLimits limits;
};

// Where the web app is when none is given: $BRAID_WEB_DIR if set, else
// <bin_dir>/../share/braid/web (where the build and `make` put it). Returns
// the first that holds an index.html, or NotFound naming what was tried and
// how to build it.
absl::StatusOr<std::string> FindWebDir(const std::string& bin_dir);

class DashboardServer {
 public:
  virtual ~DashboardServer() = default;
  // Starts serving `source` and `feed` (neither owned; both outlive the
  // server). InvalidArgument for a malformed address, a missing
  // static_dir or no authorizer; Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<DashboardServer>> Start(const DashboardOptions& options,
                                                                DashboardSource* source,
                                                                EventFeed* feed);
  // http://host:port/ as bound (the real port when 0 was asked for).
  virtual std::string url() const = 0;
  virtual int port() const = 0;
  // Closes the feed's waiters and stops serving; idempotent. The destructor
  // calls it.
  virtual void Stop() = 0;
};

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_SERVER_H_
