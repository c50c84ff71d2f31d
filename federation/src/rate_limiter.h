// Token buckets keyed by a name (a site), with a bound on the names held, so
// that a caller inventing names cannot grow it without end.
#ifndef BRAID_FEDERATION_SRC_RATE_LIMITER_H_
#define BRAID_FEDERATION_SRC_RATE_LIMITER_H_

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/federation/coordinator_service.h"

namespace braid::federation {

// Thread-safe.
class RateLimiter final {
 public:
  // At most `max_keys` names are tracked; names whose bucket has refilled
  // are forgotten first.
  explicit RateLimiter(RateLimit limit, size_t max_keys = 4096);

  // Takes one token from `key`'s bucket at `now`. False when it is empty,
  // or when `max_keys` names have partly spent buckets and `key` is new.
  bool Allow(const std::string& key, absl::Time now);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  // Refills `b` up to `now`.
  void Refill(Bucket& b, absl::Time now) const;
  void Prune(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RateLimit limit_;
  const size_t max_keys_;
  absl::Mutex mu_;
  std::map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_RATE_LIMITER_H_
