// A work queue of object keys ("ns/name") for controllers, after
// client-go's: a key waiting is queued once however often it is added; a key
// being processed is never handed to a second worker; a key added while
// being processed is handed out again after Done(). Thread-safe.
#ifndef BRAID_OPERATOR_WORK_QUEUE_H_
#define BRAID_OPERATOR_WORK_QUEUE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"

namespace braid::op {

class WorkQueue {
 public:
  // `clock` (not owned; null: braid::RealClock()) decides when delayed keys
  // fall due. A blocked Get() re-reads it at least every `poll` of real
  // time, so a test that advances a fake clock sees a delayed key handed
  // out within `poll` of the advance.
  explicit WorkQueue(Clock* clock = nullptr, absl::Duration poll = absl::Seconds(1));
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` now.
  void Add(const std::string& key);
  // Queues `key` after `delay` (an earlier pending time wins).
  void AddAfter(const std::string& key, absl::Duration delay);
  // Blocks until a key is due or ShutDown(); nullopt after shutdown.
  std::optional<std::string> Get();
  // Marks `key` (from Get) finished.
  void Done(const std::string& key);
  // Wakes every Get() with nullopt; later Adds are dropped.
  void ShutDown();
  // Keys queued or delayed (not being processed).
  size_t Pending() const;

 private:
  void PromoteDue(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration poll_;
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> queued_ ABSL_GUARDED_BY(mu_);      // in queue_
  std::set<std::string> processing_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);       // added while processing
  std::map<std::string, absl::Time> delayed_ ABSL_GUARDED_BY(mu_);
  // Bumped when a delayed key may fall due sooner than before, so that a
  // Get() already waiting recomputes its wake-up time.
  int64_t delay_changes_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace braid::op

#endif  // BRAID_OPERATOR_WORK_QUEUE_H_
