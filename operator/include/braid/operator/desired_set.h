// What a FederatedJob needs running: one aggregator and one worker per
// tenant replica. A pure function of the spec; each runtime (local
// processes today, Kubernetes objects later) makes it real.
#ifndef BRAID_OPERATOR_DESIRED_SET_H_
#define BRAID_OPERATOR_DESIRED_SET_H_

#include <string>
#include <vector>

#include "braid/core/spec.h"

namespace braid::op {

struct Workload {
  enum class Role { kAggregator, kWorker };
  Role role = Role::kAggregator;
  std::string name;    // "aggregator" or "worker-<tenant>-<replica>", unique in the job
  std::string tenant;  // workers only
  int replica = 0;     // workers only
};

// The aggregator first, then workers in tenant order, replicas ascending.
std::vector<Workload> DesiredWorkloads(const spec::JobSpec& job);

}  // namespace braid::op

#endif  // BRAID_OPERATOR_DESIRED_SET_H_
