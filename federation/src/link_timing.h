// When the site link acts: capped exponential back-off with jitter for its
// reconnects, and when a certificate is due for renewal.
#ifndef BRAID_FEDERATION_SRC_LINK_TIMING_H_
#define BRAID_FEDERATION_SRC_LINK_TIMING_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"
#include "braid/core/pki.h"

namespace braid::federation {

// Not thread-safe (one owner).
class Backoff final {
 public:
  // `initial` and `max` > 0; `seed` makes the jitter reproducible.
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed);

  // The next wait: uniform in [d/2, d] where d = initial x 2^(calls since
  // Reset), at most `max`.
  absl::Duration Next();
  // Back to `initial` (after a connection that worked).
  void Reset();

 private:
  const absl::Duration initial_;
  const absl::Duration max_;
  absl::Duration current_;
  std::mt19937_64 rng_;
};

// Two thirds into the certificate's validity [not_before, not_after].
absl::Time RenewAt(const pki::CertInfo& cert);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_LINK_TIMING_H_
