#include "braid/dashboard/event_feed.h"

#include "absl/time/clock.h"

namespace braid::dashboard {

int64_t EventFeed::Publish(nlohmann::json data) {
  absl::MutexLock lock(&mu_);
  const int64_t id = next_id_++;
  events_.push_back(DashboardEvent{id, std::move(data)});
  while (events_.size() > keep_) events_.pop_front();
  cv_.SignalAll();
  return id;
}

std::vector<DashboardEvent> EventFeed::After(int64_t after, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (!closed_ && next_id_ - 1 <= after) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  std::vector<DashboardEvent> out;
  if (closed_) return out;
  for (const DashboardEvent& e : events_) {
    if (e.id > after) out.push_back(e);
  }
  return out;
}

int64_t EventFeed::last_id() const {
  absl::MutexLock lock(&mu_);
  return next_id_ - 1;
}

void EventFeed::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  cv_.SignalAll();
}

bool EventFeed::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

}  // namespace braid::dashboard
