#include "link_timing.h"

#include <algorithm>

namespace braid::federation {

Backoff::Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
    : initial_(std::max(initial, absl::Milliseconds(1))),
      max_(std::max(max, initial_)),
      current_(initial_),
      rng_(seed) {}

absl::Duration Backoff::Next() {
  const absl::Duration d = current_;
  current_ = std::min(current_ * 2, max_);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return d * jitter(rng_);
}

void Backoff::Reset() { current_ = initial_; }

absl::Time RenewAt(const pki::CertInfo& cert) {
  return cert.not_before + (cert.not_after - cert.not_before) * 2 / 3;
}

}  // namespace braid::federation
