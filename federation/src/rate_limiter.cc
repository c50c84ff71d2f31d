#include "rate_limiter.h"

#include <algorithm>

namespace braid::federation {

RateLimiter::RateLimiter(RateLimit limit, size_t max_keys) : limit_(limit), max_keys_(max_keys) {}

void RateLimiter::Refill(Bucket& b, absl::Time now) const {
  if (now <= b.updated) return;
  const double refill = limit_.refill_every > absl::ZeroDuration()
                            ? absl::FDivDuration(now - b.updated, limit_.refill_every)
                            : static_cast<double>(limit_.burst);
  b.tokens = std::min(static_cast<double>(limit_.burst), b.tokens + refill);
  b.updated = now;
}

void RateLimiter::Prune(absl::Time now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Refill(it->second, now);
    if (it->second.tokens >= limit_.burst) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

bool RateLimiter::Allow(const std::string& key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) Prune(now);
    if (buckets_.size() >= max_keys_) return false;
    it = buckets_.emplace(key, Bucket{static_cast<double>(limit_.burst), now}).first;
  }
  Refill(it->second, now);
  if (it->second.tokens < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

}  // namespace braid::federation
