// An httplib::Server whose connections are bounded (internal to
// braid_dashboard). cpp-httplib 0.11 (Debian's) gives each connection a
// pooled thread for its whole life and bounds a request only per read:
// a client sending one header byte every few seconds, or a few event
// streams, held every thread. Here a connection is admitted on the
// accepting thread, in accept order, while fewer than `max_connections` are
// open (and fewer than `max_connections_per_client` from its address), and
// then served on a thread of its own; beyond that it is answered 503 at
// once and closed. A request's line and
// headers must arrive within `request_timeout` and `max_head_bytes`, else
// the connection is closed; an idle keep-alive connection is closed after
// `idle_timeout`. Request bodies are the routes' business (see
// CloseConnectionAfterResponse).
#ifndef BRAID_DASHBOARD_SRC_GUARDED_SERVER_H_
#define BRAID_DASHBOARD_SRC_GUARDED_SERVER_H_

#include <httplib.h>

#include <cstddef>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace braid::dashboard {

struct ConnectionLimits {
  int max_connections = 64;
  int max_connections_per_client = 32;
  size_t max_head_bytes = 32 * 1024;
  absl::Duration request_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
};

class GuardedServer final : public httplib::Server {
 public:
  explicit GuardedServer(const ConnectionLimits& limits);
  ~GuardedServer() override;
  GuardedServer(const GuardedServer&) = delete;
  GuardedServer& operator=(const GuardedServer&) = delete;

  // Connections open now (for tests and logs).
  int open_connections() const;

 private:
  bool process_and_close_socket(socket_t sock) override;
  void Serve(socket_t sock);
  // Counts the connection in; empty when admitted, else why not.
  std::string Admit(const std::string& client);
  // Joins every connection's thread (after stop(): they end within the
  // poll slice or their request's deadline).
  void JoinAll();

  const ConnectionLimits limits_;
  mutable absl::Mutex mu_;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> per_client_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<int> done_ ABSL_GUARDED_BY(mu_);  // threads that are ending
};

// Called from a route (a long response, e.g. an event stream): whether the
// client has closed its side of the connection. Never blocks.
bool PeerClosedConnection();

// Called from a route: the connection closes after this response (its
// request's body, if any, is not read). Sets "Connection: close" on `res`.
void CloseConnectionAfterResponse(httplib::Response& res);

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_SRC_GUARDED_SERVER_H_
