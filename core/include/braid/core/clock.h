// Time behind a seam, so that leader election and retry back-off can be
// unit-tested without waiting.
#ifndef BRAID_CORE_CLOCK_H_
#define BRAID_CORE_CLOCK_H_

#include "absl/time/time.h"
#include "braid/core/cancel.h"

namespace braid {

// Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Sleeps `d`, returning early when `cancel` (may be null) is cancelled.
  // Returns false if cancelled (before or during the sleep), true otherwise.
  virtual bool Sleep(absl::Duration d, const CancelToken* cancel) = 0;
};

// The process-wide wall clock. Never null, never destroyed.
Clock* RealClock();

}  // namespace braid

#endif  // BRAID_CORE_CLOCK_H_
