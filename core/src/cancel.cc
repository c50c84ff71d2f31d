#include "braid/core/cancel.h"

namespace braid {

void CancelToken::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

bool CancelToken::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool CancelToken::WaitFor(absl::Duration d) const {
  absl::MutexLock lock(&mu_);
  auto is_cancelled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_; };
  mu_.AwaitWithTimeout(absl::Condition(&is_cancelled), d);
  return cancelled_;
}

}  // namespace braid
