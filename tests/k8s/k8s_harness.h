// Helpers for tests against the real control plane that tests/k8s/cluster.sh
// starts (ctest starts it as a fixture): kubectl, the operator as a local
// process, polling. The cluster is named by the environment:
//   BRAID_KUBECONFIG  admin kubeconfig (tests fail, not skip, when unset)
//   BRAID_K8S_BIN     directory holding kubectl, helm, ...
#ifndef BRAID_TESTS_K8S_K8S_HARNESS_H_
#define BRAID_TESTS_K8S_K8S_HARNESS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/cli/subprocess.h"

namespace braid::k8s {

// $BRAID_KUBECONFIG; fails the calling test (ADD_FAILURE) when unset.
std::string Kubeconfig();
// $BRAID_K8S_BIN/<tool>.
std::string Tool(const std::string& name);

struct CommandResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs argv to completion (killed after `timeout`).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(60));
// kubectl --kubeconfig <admin> args...
CommandResult Kubectl(const std::vector<std::string>& args,
                      absl::Duration timeout = absl::Seconds(60));
// kubectl apply --server-side -f <file holding yaml>.
CommandResult Apply(const std::string& yaml);
// kubectl get ... -o json, parsed; nullopt when kubectl fails (e.g. NotFound).
std::optional<nlohmann::json> GetJson(const std::vector<std::string>& args);

// Objects of `kind` (e.g. "deployments") labelled with a job's uid, in
// every namespace; empty when kubectl fails.
std::vector<nlohmann::json> OwnedByJob(const std::string& kind, const std::string& uid);
// The condition of `type` in a job's status, or null JSON.
nlohmann::json JobCondition(const nlohmann::json& job, const std::string& type);

// Calls `pred` every 200 ms until it returns true or `timeout` passes.
bool WaitUntil(absl::Duration timeout, const std::function<bool()>& pred);

// Applies crds/ and waits until they are Established.
void InstallCrds();

// braid-operator as a child process against `kubeconfig`, with its metrics
// port known. Extra flags are appended.
struct Operator {
  cli::Subprocess proc;
  int metrics_port = 0;
  std::string log;
  // The metrics page (GET /metrics), "" if unreachable.
  std::string Metrics() const;
};
absl::StatusOr<Operator> StartOperator(const std::string& kubeconfig, const std::string& dir,
                                       const std::vector<std::string>& extra_flags);

// A namespace, a Tenant whose data source is claim `claim` in it, and a
// bound PersistentVolume + PersistentVolumeClaim of that name, so that
// worker pods mounting it are schedulable.
void CreateTenant(const std::string& tenant, const std::string& ns, const std::string& claim);
void CreateNamespace(const std::string& ns);

// The start of a consent scenario, re-runnable on the same cluster: job
// namespace `job_ns` without FederatedJob `job`; each tenant created (its
// namespace named after it) with no TenantApprovals and no "approvers"
// RoleBinding left from an earlier run; `requiring` set to
// policy.requireApproval.
void ResetConsentScenario(const std::string& job_ns, const std::string& job,
                          const std::vector<std::string>& tenants, const std::string& requiring);

// A small FederatedJob (an MLP, 3 rounds) over two tenants whose data is
// a.csv and b.csv on their claim "data".
std::string TwoTenantJobYaml(const std::string& job_ns, const std::string& job,
                             const std::string& tenant_a, const std::string& tenant_b);

// Renders the chart's tenant-approver ClusterRole as Helm release `release`
// (its own name, so tests do not collide with the chart helm_install_test
// installs into the same cluster) and applies it; its name
// ("<release>-braid-tenant-approver") once applied.
absl::StatusOr<std::string> ApplyTenantApproverRole(const std::string& release);

// The value of `metric` (first sample whose line starts with it) in a
// Prometheus text page; -1 when absent.
double MetricValue(const std::string& page, const std::string& metric);

}  // namespace braid::k8s

#endif  // BRAID_TESTS_K8S_K8S_HARNESS_H_
