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
// With an authorizer every /api/ call needs "Authorization: Bearer TOKEN"
// (/api/events may pass ?access_token=TOKEN instead: EventSource cannot set
// headers); 401 without a valid token. Then: a job, its audit and its events
// need `get federatedjobs` in the job's namespace (the job list and the
// event stream leave out the others; 403 for one job); a tenant is listed
// when one of its jobs is readable or the caller may `create
// tenantapprovals` in its namespace; approve/refuse needs `create
// tenantapprovals` in the tenant's namespace (403 otherwise, and nothing is
// recorded). The decision names the caller's user.
// Requests are served on the server's own threads: a slow or stuck client
// never blocks the job that feeds the source.
#ifndef BRAID_DASHBOARD_SERVER_H_
#define BRAID_DASHBOARD_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "braid/dashboard/auth.h"
#include "braid/dashboard/event_feed.h"
#include "braid/dashboard/source.h"

namespace braid::dashboard {

struct DashboardOptions {
  // host:port to listen on, e.g. "127.0.0.1:8080" or "[::1]:0"; port 0
  // picks a free port. Only this address is bound.
  std::string address = "127.0.0.1:0";
  // The built web app (index.html, assets/). Required to exist unless
  // api_only.
  std::string static_dir;
  bool api_only = false;  // serve /api/ only (no web app available)
  int threads = 8;  // concurrent requests, SSE connections included
  // Not owned; outlives the server. nullptr: no authentication (loopback,
  // `braid run`), decisions are recorded as by `local_user`.
  DashboardAuthorizer* authorizer = nullptr;
  std::string local_user = "dashboard";
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
  // server). InvalidArgument for a malformed address or a missing
  // static_dir; Unavailable when the address cannot be bound.
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
