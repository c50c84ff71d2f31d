// Records core/v1 Events about objects, as `kubectl describe` shows them.
#ifndef BRAID_KUBE_EVENTS_H_
#define BRAID_KUBE_EVENTS_H_

#include <cstdint>
#include <list>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "braid/kube/client.h"
#include "braid/core/clock.h"

namespace braid::kube {

enum class EventType { kNormal, kWarning };

// The Event (not yet created) for `involved` (any object with apiVersion,
// kind and metadata): in the object's namespace ("default" for
// cluster-scoped objects), named "<object name>.<hex nanoseconds>",
// involvedObject {apiVersion, kind, name, namespace, uid, resourceVersion},
// first/lastTimestamp `now` (RFC 3339), count 1, source.component and
// reportingComponent `component`, reportingInstance `instance` if given.
Json MakeEvent(const Json& involved, EventType type, const std::string& reason,
               const std::string& message, const std::string& component, absl::Time now,
               const std::string& instance = "");

// Creates MakeEvent(...) with `client`. Errors as Client::Create;
// InvalidArgument if `involved` lacks kind or metadata.name.
absl::Status RecordEvent(Client& client, const Json& involved, EventType type,
                         const std::string& reason, const std::string& message,
                         const std::string& component, Clock* clock = nullptr);

// RecordEvent with de-duplication: a repeat of an event (same object uid,
// type, reason, message) recorded within `window` bumps the count and
// lastTimestamp of the existing Event (merge patch) instead of creating
// another; if that Event is gone, a new one is created. Remembers at most
// `capacity` distinct events (least recently used forgotten). Thread-safe.
class EventRecorder {
 public:
  // `client` and `clock` (null: RealClock()) must outlive the recorder.
  EventRecorder(Client* client, std::string component, std::string instance = "",
                Clock* clock = nullptr, absl::Duration window = absl::Minutes(10),
                size_t capacity = 4096);
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  absl::Status Record(const Json& involved, EventType type, const std::string& reason,
                      const std::string& message);

 private:
  struct Seen {
    std::string ns, name;
    int64_t count = 0;
    absl::Time last;
    std::list<std::string>::iterator lru;
  };
  Client* const client_;
  const std::string component_, instance_;
  Clock* const clock_;
  const absl::Duration window_;
  const size_t capacity_;
  absl::Mutex mu_;
  std::map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
};

}  // namespace braid::kube

#endif  // BRAID_KUBE_EVENTS_H_
