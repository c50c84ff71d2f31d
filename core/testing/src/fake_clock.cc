#include "braid/core/testing/fake_clock.h"

#include <chrono>
#include <thread>

namespace braid {

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

bool FakeClock::Sleep(absl::Duration d, const CancelToken* cancel) {
  if (cancel != nullptr && cancel->cancelled()) return false;
  {
    absl::MutexLock lock(&mu_);
    sleeps_.push_back(d);
    now_ += d;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return cancel == nullptr || !cancel->cancelled();
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

std::vector<absl::Duration> FakeClock::sleeps() const {
  absl::MutexLock lock(&mu_);
  return sleeps_;
}

}  // namespace braid
