#include "braid/aggregator/stream_guard.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace braid::aggregator {

StreamWatchdog::StreamWatchdog(absl::Duration timeout, uint64_t bytes_per_timeout, Clock* clock,
                               bool run_thread, absl::Duration period)
    : timeout_(timeout),
      bytes_per_timeout_(std::max<uint64_t>(1, bytes_per_timeout)),
      clock_(clock != nullptr ? clock : RealClock()),
      period_(period) {
  if (run_thread) thread_ = std::thread([this] { Loop(); });
}

StreamWatchdog::~StreamWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void StreamWatchdog::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    mu_.AwaitWithTimeout(absl::Condition(&stop_), period_);
    if (stop_) break;
    mu_.Unlock();
    Sweep(clock_->Now());
    mu_.Lock();
  }
}

std::unique_ptr<StreamWatchdog::Watch> StreamWatchdog::Start(std::function<void()> cancel) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = ++next_id_;
  entries_[id] = Entry{std::move(cancel), clock_->Now() + timeout_};
  return std::unique_ptr<Watch>(new Watch(this, id));
}

void StreamWatchdog::Sweep(absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, e] : entries_) {
    if (e.paused || e.expired || now <= e.deadline) continue;
    e.expired = true;
    e.cancel();  // non-blocking (TryCancel); the Watch, and so the call, is alive
  }
}

StreamWatchdog::Watch::~Watch() {
  absl::MutexLock lock(&dog_->mu_);
  dog_->entries_.erase(id_);
}

void StreamWatchdog::Watch::Progress(uint64_t bytes) {
  const absl::Time now = dog_->clock_->Now();
  absl::MutexLock lock(&dog_->mu_);
  Entry& e = dog_->entries_[id_];
  const absl::Duration credit =
      dog_->timeout_ * (static_cast<double>(bytes) / static_cast<double>(dog_->bytes_per_timeout_));
  e.deadline = std::min(e.deadline + credit, now + dog_->timeout_);
}

void StreamWatchdog::Watch::Pause() {
  absl::MutexLock lock(&dog_->mu_);
  dog_->entries_[id_].paused = true;
}

void StreamWatchdog::Watch::Resume() {
  const absl::Time now = dog_->clock_->Now();
  absl::MutexLock lock(&dog_->mu_);
  Entry& e = dog_->entries_[id_];
  e.paused = false;
  e.deadline = now + dog_->timeout_;
}

bool StreamWatchdog::Watch::expired() const {
  absl::MutexLock lock(&dog_->mu_);
  auto it = dog_->entries_.find(id_);
  return it != dog_->entries_.end() && it->second.expired;
}

CallLimiter::Permit::~Permit() {
  if (limiter_ != nullptr) limiter_->Release(key_);
}

absl::StatusOr<CallLimiter::Permit> CallLimiter::Acquire(const std::string& key) {
  const int limit = limit_(key);
  absl::MutexLock lock(&mu_);
  int& n = in_flight_[key];
  if (n >= limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "'", key, "' has ", n, " calls in flight, its limit; finish or cancel one first"));
  }
  ++n;
  return Permit(this, key);
}

void CallLimiter::Release(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(key);
  if (it == in_flight_.end()) return;
  if (--it->second <= 0) in_flight_.erase(it);
}

int CallLimiter::InFlight(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(key);
  return it == in_flight_.end() ? 0 : it->second;
}

}  // namespace braid::aggregator
