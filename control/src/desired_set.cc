#include "braid/control/desired_set.h"

#include "absl/strings/str_cat.h"

namespace braid::control {

std::set<std::string> StoppedTenants(const std::vector<TenantConsent>& consent) {
  std::set<std::string> out;
  for (const TenantConsent& c : consent) {
    if (!MayRun(c.consent)) out.insert(c.tenant);
  }
  return out;
}

DesiredSet ComputeDesiredSet(const spec::JobSpec& job, const DesiredSetInput& input) {
  DesiredSet out;
  out.run_aggregator = !input.suspended;
  out.run_workers = !input.suspended && !input.ended;
  out.stopped_tenants = StoppedTenants(input.consent);
  out.workloads.push_back(
      Workload{Workload::Role::kAggregator, "aggregator", "", 0, out.run_aggregator, ""});
  int expected = 0;
  for (const spec::Tenant& t : job.tenants) {
    const bool stopped = out.stopped_tenants.count(t.name) > 0;
    if (!stopped) expected += t.replicas;
    for (int r = 0; r < t.replicas; ++r) {
      out.workloads.push_back(Workload{Workload::Role::kWorker,
                                       absl::StrCat("worker-", t.name, "-", r), t.name, r,
                                       out.run_workers && !stopped, t.site});
    }
  }
  out.expected_clients = input.running_expected_clients.value_or(expected);
  if (out.expected_clients != job.TotalReplicas()) {
    out.aggregator_args.push_back(absl::StrCat("--expected-clients=", out.expected_clients));
  }
  return out;
}

}  // namespace braid::control
