#include "braid/operator/desired_set.h"

#include "absl/strings/str_cat.h"

namespace braid::op {

std::vector<Workload> DesiredWorkloads(const spec::JobSpec& job) {
  std::vector<Workload> out;
  out.push_back(Workload{Workload::Role::kAggregator, "aggregator", "", 0});
  for (const spec::Tenant& t : job.tenants) {
    for (int r = 0; r < t.replicas; ++r) {
      out.push_back(Workload{Workload::Role::kWorker, absl::StrCat("worker-", t.name, "-", r),
                             t.name, r});
    }
  }
  return out;
}

}  // namespace braid::op
