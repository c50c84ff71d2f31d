// The dashboard's live updates: a bounded feed of events that sources
// publish and each Server-Sent Events connection of DashboardServer reads.
#ifndef BRAID_DASHBOARD_EVENT_FEED_H_
#define BRAID_DASHBOARD_EVENT_FEED_H_

#include <cstdint>
#include <deque>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace braid::dashboard {

// One live update: a round completed or a job's phase changed.
struct DashboardEvent {
  int64_t id = 0;  // increasing from 1
  nlohmann::json data;  // {"type": "round"|"phase", "namespace", "name", "phase", "round"}
};

// A bounded feed of events for Server-Sent Events: sources Publish, each
// SSE connection waits for events after the last id it sent. Thread-safe.
class EventFeed {
 public:
  explicit EventFeed(size_t keep = 1024) : keep_(keep) {}
  // Appends an event and wakes every waiter; returns its id.
  int64_t Publish(nlohmann::json data);
  // The events with id > after, waiting up to `timeout` for one when there
  // are none. Empty on timeout or once Close() was called. Events older
  // than the last `keep` are dropped; a slow reader skips them.
  std::vector<DashboardEvent> After(int64_t after, absl::Duration timeout);
  int64_t last_id() const;
  // Wakes every waiter for good (the server is stopping).
  void Close();
  bool closed() const;

 private:
  const size_t keep_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<DashboardEvent> events_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_EVENT_FEED_H_
