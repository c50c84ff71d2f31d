// A one-way cancellation flag that blocking calls (watches, sleeps) observe.
#ifndef BRAID_CORE_CANCEL_H_
#define BRAID_CORE_CANCEL_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace braid {

// Starts un-cancelled; Cancel() is permanent. Thread-safe: any thread may
// Cancel() while others poll cancelled() or block in WaitFor().
class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Sets the flag and wakes every WaitFor(). Idempotent.
  void Cancel();
  bool cancelled() const;
  // Blocks until cancelled or `d` elapsed (real time). Returns true if
  // cancelled.
  bool WaitFor(absl::Duration d) const;

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace braid

#endif  // BRAID_CORE_CANCEL_H_
