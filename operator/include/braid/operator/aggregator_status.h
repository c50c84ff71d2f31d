// Where the operator learns a job's round progress: the aggregator's
// GetStatus over gRPC. A seam, so reconciler tests can script the answers.
#ifndef BRAID_OPERATOR_AGGREGATOR_STATUS_H_
#define BRAID_OPERATOR_AGGREGATOR_STATUS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/pki.h"
#include "braid/control/job_status.h"

namespace braid::op {

// How the operator proves itself to a job's aggregator and checks it.
struct TlsTarget {
  pki::TlsMaterial material;  // the job's CA, the operator's certificate and key
  std::string server_name;    // the name the aggregator's certificate must carry
};

class AggregatorStatusSource {
 public:
  virtual ~AggregatorStatusSource() = default;
  // The aggregator's answer at `address` (host:port), over mTLS with `tls`
  // (the aggregator's certificate is verified for tls->server_name, whatever
  // address is dialed) or plaintext without. Unavailable or
  // DeadlineExceeded when it cannot be reached within `timeout`. Thread-safe.
  virtual absl::StatusOr<control::AggregatorReport> Poll(const std::string& address,
                                                absl::Duration timeout,
                                                const std::optional<TlsTarget>& tls) = 0;
};

// gRPC; one channel per (address, server name, certificate), kept.
std::unique_ptr<AggregatorStatusSource> NewGrpcAggregatorStatusSource();

}  // namespace braid::op

#endif  // BRAID_OPERATOR_AGGREGATOR_STATUS_H_
