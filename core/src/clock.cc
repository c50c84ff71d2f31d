#include "braid/core/clock.h"

#include "absl/time/clock.h"

namespace braid {
namespace {

class WallClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool Sleep(absl::Duration d, const CancelToken* cancel) override {
    if (cancel == nullptr) {
      absl::SleepFor(d);
      return true;
    }
    return !cancel->WaitFor(d);
  }
};

}  // namespace

Clock* RealClock() {
  static WallClock* const clock = new WallClock();
  return clock;
}

}  // namespace braid
