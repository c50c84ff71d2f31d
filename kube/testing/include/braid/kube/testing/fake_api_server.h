// In-memory stand-ins for unit tests (library braid_kube_fake, built only
// with tests): a small API server behind the HttpTransport seam, and a
// clock that only moves when told. For tests against the real thing, see
// tests/k8s/.
#ifndef BRAID_KUBE_TESTING_FAKE_API_SERVER_H_
#define BRAID_KUBE_TESTING_FAKE_API_SERVER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/core/testing/fake_clock.h"
#include "braid/kube/http.h"
#include "braid/kube/resource.h"
#include "nlohmann/json.hpp"

namespace braid::kube {

// Serves the REST paths Client uses, for any kind, from memory, with the
// behaviours callers depend on: resourceVersions (one global counter),
// optimistic concurrency on PUT (409 Conflict), AlreadyExists on POST, 404s,
// label selectors (=, ==, !=, exists, !exists), list paging
// (limit/continue), JSON merge patch, server-side apply approximated as
// create-or-merge (no field ownership), the status subresource (PUT/PATCH
// to /status change only .status; writes to the object keep .status), and
// watches (ADDED/MODIFIED/DELETED from a version, BOOKMARKs on demand, 410
// after Compact()). Watch bodies are delivered in small chunks so that
// event reassembly is exercised. Thread-safe.
class FakeApiServer final : public HttpTransport {
 public:
  FakeApiServer();
  ~FakeApiServer() override;
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  absl::StatusOr<HttpResponse> Do(const HttpRequest& request) override;
  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      const std::function<bool(std::string_view)>& on_data,
                                      const CancelToken* cancel) override;

  // A transport forwarding to this server (which must outlive it), for
  // NewClient(); many clients may share one server.
  std::unique_ptr<HttpTransport> NewTransport();

  // The next `times` requests whose method is `method` and whose path+query
  // contains `path_part` get `http_status` with `body` (default: a
  // metav1.Status naming the code). Also applies to watches.
  void FailNext(const std::string& method, const std::string& path_part, int http_status,
                int times = 1, const std::string& body = "");
  // Drops every pending FailNext / FailNextWatchWithEvent.
  void ClearFailures();
  // The next watch matching `path_part` ends with an ERROR event carrying
  // `code` (after the HTTP 200), as the API server reports a too-old
  // version (410) or an internal error (500).
  void FailNextWatchWithEvent(const std::string& path_part, int code, int times = 1);
  // Forgets history: watches from a version older than now get an ERROR
  // event with code 410 (Expired).
  void Compact();
  // Sends a BOOKMARK with the current version to open watches that allow
  // bookmarks.
  void SendBookmark();
  // Ends open watches cleanly, as the server does at timeoutSeconds.
  void EndWatches();
  // Ends open watches in the middle of an event, as a dropped connection.
  void CutWatches();
  // Watch chunk size in bytes (default 7).
  void set_chunk_size(size_t n);

  // Writes `obj` as another client would (create, or replace keeping
  // identity), emitting a watch event; returns the stored object.
  nlohmann::json Upsert(const ResourceRef& ref, const nlohmann::json& obj);
  // The stored object, or null.
  nlohmann::json Object(const ResourceRef& ref, const std::string& ns,
                        const std::string& name) const;
  // Every request received, in order.
  std::vector<HttpRequest> requests() const;
  void clear_requests();
  // Watches currently open.
  int open_watches() const;
  // The current (latest) resourceVersion.
  int64_t resource_version() const;

 private:
  struct Event {
    int64_t rv;
    std::string type;
    std::string collection;  // "<gv>|<plural>"
    std::string ns;
    nlohmann::json object;
  };
  struct Failure {
    std::string method, path_part, body;
    int status = 0;
    int times = 0;
  };

  HttpResponse Handle(const HttpRequest& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TakeFailure(const HttpRequest& request, HttpResponse* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(const std::string& type, const std::string& collection, const std::string& ns,
            const nlohmann::json& obj) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, nlohmann::json> objects_ ABSL_GUARDED_BY(mu_);  // by StoreKey
  std::deque<Event> log_ ABSL_GUARDED_BY(mu_);
  int64_t rv_ ABSL_GUARDED_BY(mu_) = 1000;
  int64_t compacted_rv_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t uid_counter_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bookmark_gen_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t end_gen_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t cut_gen_ ABSL_GUARDED_BY(mu_) = 0;
  int open_watches_ ABSL_GUARDED_BY(mu_) = 0;
  size_t chunk_size_ ABSL_GUARDED_BY(mu_) = 7;
  std::vector<Failure> failures_ ABSL_GUARDED_BY(mu_);
  std::vector<Failure> watch_event_failures_ ABSL_GUARDED_BY(mu_);
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};


}  // namespace braid::kube

#endif  // BRAID_KUBE_TESTING_FAKE_API_SERVER_H_
