#include "braid/operator/work_queue.h"

#include <algorithm>

namespace braid::op {

WorkQueue::WorkQueue(Clock* clock, absl::Duration poll)
    : clock_(clock != nullptr ? clock : RealClock()), poll_(poll) {}

void WorkQueue::Add(const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  delayed_.erase(key);
  if (processing_.count(key) > 0) {
    dirty_.insert(key);
    return;
  }
  if (queued_.insert(key).second) queue_.push_back(key);
}

void WorkQueue::AddAfter(const std::string& key, absl::Duration delay) {
  if (delay <= absl::ZeroDuration()) return Add(key);
  absl::MutexLock lock(&mu_);
  if (shut_down_ || queued_.count(key) > 0) return;
  const absl::Time due = clock_->Now() + delay;
  auto [it, inserted] = delayed_.emplace(key, due);
  if (!inserted) it->second = std::min(it->second, due);
  ++delay_changes_;
}

void WorkQueue::PromoteDue(absl::Time now) {
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    const std::string key = it->first;
    it = delayed_.erase(it);
    if (processing_.count(key) > 0) {
      dirty_.insert(key);
    } else if (queued_.insert(key).second) {
      queue_.push_back(key);
    }
  }
}

std::optional<std::string> WorkQueue::Get() {
  absl::MutexLock lock(&mu_);
  while (true) {
    const absl::Time now = clock_->Now();
    PromoteDue(now);
    if (shut_down_) return std::nullopt;
    if (!queue_.empty()) break;
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [key, due] : delayed_) next = std::min(next, due);
    // Wakes on Add/AddAfter/ShutDown, or when the earliest delayed key is due.
    const int64_t seen = delay_changes_;
    auto woken = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shut_down_ || !queue_.empty() || delay_changes_ != seen;
    };
    // Waited in real time: the clock's time to the next due key, capped at
    // poll_ (for clocks that are not the wall clock).
    mu_.AwaitWithTimeout(absl::Condition(&woken), std::min(next - now, poll_));
  }
  std::string key = queue_.front();
  queue_.pop_front();
  queued_.erase(key);
  processing_.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  absl::MutexLock lock(&mu_);
  processing_.erase(key);
  if (dirty_.erase(key) > 0 && !shut_down_ && queued_.insert(key).second) {
    queue_.push_back(key);
  }
}

void WorkQueue::ShutDown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

size_t WorkQueue::Pending() const {
  absl::MutexLock lock(&mu_);
  return queue_.size() + delayed_.size();
}

}  // namespace braid::op
