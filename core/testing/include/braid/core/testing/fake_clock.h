// A Clock for unit tests: time moves only when the test says so. Test-only
// (target braid_core_testing); never linked into what ships.
#ifndef BRAID_CORE_TESTING_FAKE_CLOCK_H_
#define BRAID_CORE_TESTING_FAKE_CLOCK_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"

namespace braid {

// Starts at 2024-01-01T00:00:00Z; moves only by Advance() and Sleep(),
// which returns at once (after yielding the CPU briefly, so loops driven by
// it don't spin) having advanced the time by the requested duration, and
// records it. Thread-safe.
class FakeClock final : public Clock {
 public:
  absl::Time Now() const override;
  bool Sleep(absl::Duration d, const CancelToken* cancel) override;
  void Advance(absl::Duration d);
  std::vector<absl::Duration> sleeps() const;

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1704067200);
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid

#endif  // BRAID_CORE_TESTING_FAKE_CLOCK_H_
