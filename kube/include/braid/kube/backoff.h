// Capped exponential back-off with jitter, for retry loops.
#ifndef BRAID_KUBE_BACKOFF_H_
#define BRAID_KUBE_BACKOFF_H_

#include <cstdint>

#include "absl/time/time.h"

namespace braid::kube {

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(200);  // first delay
  absl::Duration max = absl::Seconds(30);            // cap for any delay
  double multiplier = 2.0;                           // growth per attempt
  // Each delay is drawn uniformly from [(1 - jitter) * d, d], where d is the
  // un-jittered delay; 0 disables jitter. Spreads reconnecting clients.
  double jitter = 0.2;
};

// Not thread-safe: one instance per retry loop.
class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {}, uint64_t seed = 0);
  // The delay before the next attempt; each call grows the next one, up to
  // options.max.
  absl::Duration Next();
  // Back to options.initial, after a success.
  void Reset();

 private:
  BackoffOptions options_;
  absl::Duration current_;
  uint64_t state_;
};

}  // namespace braid::kube

#endif  // BRAID_KUBE_BACKOFF_H_
