// Where the operator learns a job's round progress: the aggregator's
// GetStatus over gRPC. A seam, so reconciler tests can script the answers.
#ifndef BRAID_OPERATOR_AGGREGATOR_STATUS_H_
#define BRAID_OPERATOR_AGGREGATOR_STATUS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/operator/job_status.h"

namespace braid::op {

class AggregatorStatusSource {
 public:
  virtual ~AggregatorStatusSource() = default;
  // The aggregator's answer at `address` (host:port). Unavailable or
  // DeadlineExceeded when it cannot be reached within `timeout`. Thread-safe.
  virtual absl::StatusOr<AggregatorReport> Poll(const std::string& address,
                                                absl::Duration timeout) = 0;
};

// Plain-text gRPC (mTLS comes with the security work); one channel per
// address, kept.
std::unique_ptr<AggregatorStatusSource> NewGrpcAggregatorStatusSource();

}  // namespace braid::op

#endif  // BRAID_OPERATOR_AGGREGATOR_STATUS_H_
