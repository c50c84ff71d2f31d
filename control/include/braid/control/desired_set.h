// What a FederatedJob needs running, as both runtimes make it real: the
// local runtime (`braid run`, cli/local_runtime.h) starts each running
// workload as a child process; braid-operator (operator/job_objects.h)
// renders one Deployment per workload, scaled to 0 when it does not run.
// A pure function of the spec and what the runtime observed (suspension,
// the aggregator's final word, the tenants' consent), so that worker names,
// stopped tenants and the count of workers the aggregator waits for are
// decided once, here, for both.
#ifndef BRAID_CONTROL_DESIRED_SET_H_
#define BRAID_CONTROL_DESIRED_SET_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "braid/control/tenant_approval.h"
#include "braid/core/spec.h"

namespace braid::control {

struct Workload {
  enum class Role { kAggregator, kWorker };
  Role role = Role::kAggregator;
  std::string name;    // "aggregator" or "worker-<tenant>-<replica>", unique in the job
  std::string tenant;  // workers only
  int replica = 0;     // workers only
  // False: the workload exists (a Deployment at 0 replicas) but does not
  // run (no process): suspended, ended, or its tenant's consent does not
  // let it run.
  bool run = true;
  // Workers of a site tenant: its spec.tenants[].site. Such a worker runs
  // in that site's cluster, made by the site's operator; the coordinator
  // (and any other runtime) makes only the workloads whose site is "".
  // The aggregator counts it like any other (expected_clients).
  std::string site;
};

// What the runtime observed that decides what runs. Defaults: a fresh job
// that runs everything.
struct DesiredSetInput {
  // spec.suspend: nothing runs; the aggregator's checkpoint is kept.
  bool suspended = false;
  // The aggregator ended the job (Succeeded or Failed): workers stop, the
  // aggregator keeps serving status and the model.
  bool ended = false;
  // Each tenant's consent (ResolveConsent); empty or kNotRequired/kApproved:
  // its workers may run. Tenants not MayRun() are stopped.
  std::vector<TenantConsent> consent;
  // The count the aggregator already runs with (its --expected-clients,
  // or the job's total replicas when it has none). Unset: the aggregator
  // is yet to start, and the count follows the consent now. A runtime whose
  // aggregator runs passes it, so that a later revocation does not change
  // the aggregator's arguments (on Kubernetes that would restart it and
  // lose the round in progress); the aggregator declares the revoked
  // tenant's workers lost by itself.
  std::optional<int> running_expected_clients;
};

struct DesiredSet {
  // The aggregator first, then workers in tenant order, replicas ascending:
  // every workload, running or not (Kubernetes keeps a Deployment at 0).
  std::vector<Workload> workloads;
  bool run_aggregator = true;   // false while suspended
  bool run_workers = true;      // false while suspended or once ended
  // Tenants whose workers are kept at 0 even when run_workers: those whose
  // consent is not kNotRequired or kApproved (refused, revoked, pending).
  std::set<std::string> stopped_tenants;
  // Workers the aggregator waits for before a round starts: the replicas of
  // the tenants not stopped (or input.running_expected_clients).
  int expected_clients = 0;
  // The aggregator's arguments that carry it: {"--expected-clients=N"}, or
  // none when N is the job's total replicas (the aggregator's own default),
  // so a job without stopped tenants runs its aggregator as it always did.
  std::vector<std::string> aggregator_args;
};

DesiredSet ComputeDesiredSet(const spec::JobSpec& job, const DesiredSetInput& input = {});

// Names of the tenants whose consent does not let their workers run.
std::set<std::string> StoppedTenants(const std::vector<TenantConsent>& consent);

}  // namespace braid::control

#endif  // BRAID_CONTROL_DESIRED_SET_H_
