// Keeps a local cache of one kind of object in sync with the API server
// (list, then watch; relist when the watch falls too far behind) and tells a
// handler about every change.
#ifndef BRAID_KUBE_INFORMER_H_
#define BRAID_KUBE_INFORMER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/kube/backoff.h"
#include "braid/core/cancel.h"
#include "braid/kube/client.h"
#include "braid/core/clock.h"

namespace braid::kube {

struct InformerOptions {
  ResourceRef ref;             // the kind to follow
  std::string ns;              // "" = all namespaces (or cluster-scoped)
  std::string label_selector;  // "" = every object
  // Retry delays after a failed list/watch; reset after a healthy watch.
  BackoffOptions backoff;  // default 200 ms doubling to 30 s, 20% jitter
  // A watch that delivered an event or stayed open this long counts as
  // healthy: the back-off resets and a clean end is followed by an
  // immediate re-watch. Shorter, eventless watches wait a back-off step.
  absl::Duration healthy_watch = absl::Seconds(5);
  // Asked of the server per watch; it then ends the watch cleanly and the
  // informer resumes from its last version. 0 = server default.
  int watch_timeout_seconds = 300;
};

// Called on the informer's thread, one at a time, in event order. The cache
// already reflects the change when a callback runs. Callbacks must not call
// Stop(); they may call Snapshot()/Get(). Any may be empty.
struct InformerHandlers {
  std::function<void(const Json& obj)> on_upsert;  // added, or changed version
  std::function<void(const Json& obj)> on_delete;  // last known state
  // After every (re)list has been folded into the cache and its callbacks
  // ran: the cache is a consistent view of the server at that point.
  std::function<void()> on_synced;
  // Each failed list or watch, for logging; the informer retries anyway.
  std::function<void(const absl::Status& error)> on_error;
};

// Lifecycle: construct, Start() once, Stop() (or destroy) once. Snapshot(),
// Get(), HasSynced() and the counters are thread-safe at any time.
class Informer {
 public:
  // `client` and `clock` (null: RealClock()) must outlive the informer.
  Informer(Client* client, InformerOptions options, InformerHandlers handlers,
           Clock* clock = nullptr);
  ~Informer();  // Stop()s
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Starts the list/watch thread. Errors never stop it: they are counted
  // and retried with back-off until Stop().
  void Start();
  // Cancels the in-flight request or sleep and joins the thread (within
  // about 100 ms). Idempotent.
  void Stop();

  // Copies of the cached objects, ordered by namespace/name.
  std::vector<Json> Snapshot() const;
  std::optional<Json> Get(const std::string& ns, const std::string& name) const;
  // True once the first list has been folded in.
  bool HasSynced() const;
  // The latest resourceVersion seen (list, event or bookmark).
  std::string LastResourceVersion() const;

  // Counters since Start(), for metrics.
  int64_t relists() const { return relists_.load(); }  // lists after the first
  int64_t watch_restarts() const { return watch_restarts_.load(); }  // re-watches
  int64_t errors() const { return errors_.load(); }  // failed lists/watches

 private:
  void Run();
  // Lists and folds the result into the cache (synthetic deletes for
  // vanished objects). Sets rv_.
  absl::Status ListAndReplace();
  // Applies one watch event to the cache and handlers. False on a malformed
  // event.
  bool HandleEvent(const WatchEvent& event);
  void SetResourceVersion(const std::string& rv);

  Client* const client_;
  const InformerOptions options_;
  const InformerHandlers handlers_;
  Clock* const clock_;
  CancelToken cancel_;
  std::thread thread_;
  bool started_ = false;

  mutable absl::Mutex mu_;
  std::map<std::string, Json> cache_ ABSL_GUARDED_BY(mu_);  // key "ns/name"
  std::string rv_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<int64_t> lists_{0};
  std::atomic<int64_t> relists_{0};
  std::atomic<int64_t> watch_restarts_{0};
  std::atomic<int64_t> errors_{0};
};

// "ns/name" (or "name" when ns is empty), the cache key of `obj`.
std::string ObjectKey(const Json& obj);

}  // namespace braid::kube

#endif  // BRAID_KUBE_INFORMER_H_
