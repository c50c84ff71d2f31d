// Multi-site tests on three real control planes on loopback: the
// coordinator's (the k8s fixture's cluster, $BRAID_KUBECONFIG) and two
// sites' ($BRAID_SITE_A_KUBECONFIG, $BRAID_SITE_B_KUBECONFIG, started by
// ctest with tests/k8s/cluster.sh up --name site-a / site-b). Each cluster
// gets its own braid-operator process in its role; the aggregator and the
// workers run as local processes standing in for the pods (kwok runs no
// containers), started from what the operators put in each cluster.
#ifndef BRAID_TESTS_MULTISITE_MULTISITE_HARNESS_H_
#define BRAID_TESTS_MULTISITE_MULTISITE_HARNESS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/cli/subprocess.h"
#include "tests/k8s/k8s_harness.h"

namespace braid::multisite {

// One control plane, by its admin kubeconfig.
struct Cluster {
  std::string kubeconfig;

  k8s::CommandResult Kubectl(const std::vector<std::string>& args) const;
  // kubectl apply --server-side of `yaml`.
  k8s::CommandResult Apply(const std::string& yaml) const;
  // kubectl get ... -o json; nullopt when it fails (e.g. NotFound).
  std::optional<nlohmann::json> Get(const std::vector<std::string>& args) const;
  // The decoded value of `key` in Secret ns/name; "" when absent.
  std::string SecretValue(const std::string& ns, const std::string& name,
                          const std::string& key) const;
  // crds/ applied and Established; namespace braid-system made.
  void Prepare() const;
};

// The coordinator's and the sites' clusters; fails the test when a
// kubeconfig is missing.
Cluster CoordinatorCluster();
Cluster SiteCluster(int index);  // 0: site-a, 1: site-b

// At a site: namespace `ns`, a Tenant `tenant` whose dataset `dataset`
// maps to file `file` on claim "data" (a bound PV + PVC), with `policy`
// (JSON object, may be empty) as spec.policy.
void CreateSiteTenant(const Cluster& site, const std::string& tenant, const std::string& ns,
                      const std::string& dataset, const std::string& file,
                      const nlohmann::json& policy);

// Writes `content` to `path` and returns `path`.
std::string WriteText(const std::string& path, const std::string& content);

// Starts braid-worker for each worker Deployment of job `job_uid` in
// namespace `ns` of `site`, as its pod would run: the Deployment's args,
// with the job file (from its ConfigMap), the TLS files (from its Secret)
// and the data file (`data_file`) replaced by local copies under `dir`.
absl::StatusOr<std::vector<cli::Subprocess>> StartSiteWorkers(const Cluster& site,
                                                               const std::string& ns,
                                                               const std::string& job_uid,
                                                               const std::string& data_file,
                                                               const std::string& dir);

}  // namespace braid::multisite

#endif  // BRAID_TESTS_MULTISITE_MULTISITE_HARNESS_H_
