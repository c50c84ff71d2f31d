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
#include "absl/time/time.h"
#include "braid/cli/subprocess.h"
#include "tests/k8s/k8s_harness.h"
#include "tests/multisite/stand_in.h"

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
  // kubectl for this cluster without gtest (stand_in.h).
  multisite::Kubectl Client() const;
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

// Starts braid-worker for each worker Deployment of job `job_uid` in
// namespace `ns` of `site`, as its pod would run: the Deployment's args,
// with the job file (from its ConfigMap), the TLS files (from its Secret)
// and the data file (`data_file`) replaced by local copies under `dir`.
absl::StatusOr<std::vector<cli::Subprocess>> StartSiteWorkers(const Cluster& site,
                                                               const std::string& ns,
                                                               const std::string& job_uid,
                                                               const std::string& data_file,
                                                               const std::string& dir);

// --- For multisite_resilience_test.cc ------------------------------------

// One round_completed record of an aggregator's audit log.
struct CompletedRound {
  int round = 0;
  absl::Time time;                   // when the aggregator recorded it
  std::vector<std::string> tenants;  // who took part
};
// The round_completed records of `audit_file` (the aggregator's
// <checkpoint-dir>/audit.jsonl) in file order; empty when it cannot be read.
// Lines that do not parse are skipped (the file may be mid-write).
std::vector<CompletedRound> CompletedRounds(const std::string& audit_file);
// The mean time between consecutive completed rounds from the first on
// (the first round's own time includes start-up, so it is left out);
// nullopt with fewer than two rounds.
std::optional<absl::Duration> MeanRoundTime(const std::vector<CompletedRound>& rounds);
// metadata.uid of each worker Deployment of job `job_uid` in namespace
// `ns` of `site`, sorted; empty when there are none or kubectl fails.
std::vector<std::string> WorkerDeploymentUids(const Cluster& site, const std::string& ns,
                                              const std::string& job_uid);

}  // namespace braid::multisite

#endif  // BRAID_TESTS_MULTISITE_MULTISITE_HARNESS_H_
