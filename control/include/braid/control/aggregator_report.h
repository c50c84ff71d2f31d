// The aggregator's GetStatus answer as the status function reads it, from
// either runtime: braid-operator polls it over the cluster network, `braid
// run` over loopback.
#ifndef BRAID_CONTROL_AGGREGATOR_REPORT_H_
#define BRAID_CONTROL_AGGREGATOR_REPORT_H_

#include "braid/control/job_status.h"
#include "braid/v1/federation.pb.h"

namespace braid::control {

// Every field of AggregatorReport from `status`: its phase, reason, message
// and counts, the last round's figures (zero before the first round), each
// tenant's last contributing round, the privacy spent when enabled, and
// the audit log's head when it is a well-formed anchor.
AggregatorReport ReportFromStatus(const v1::JobStatus& status);

}  // namespace braid::control

#endif  // BRAID_CONTROL_AGGREGATOR_REPORT_H_
