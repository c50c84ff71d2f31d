#include "tests/multisite/multisite_harness.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/harness.h"

namespace braid::multisite {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int counter = 0;

Cluster FromEnv(const char* variable, const char* fallback) {
  const char* path = std::getenv(variable);
  if (path == nullptr || *path == '\0') path = fallback;
  if (path == nullptr || !fs::exists(path)) {
    ADD_FAILURE() << "$" << variable << " names no kubeconfig ("
                  << path
                  << "): ctest starts the site clusters with tests/k8s/cluster.sh up --name";
    return Cluster{""};
  }
  return Cluster{path};
}

}  // namespace

k8s::CommandResult Cluster::Kubectl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {k8s::Tool("kubectl"), "--kubeconfig", kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  return k8s::RunCommand(argv);
}

k8s::CommandResult Cluster::Apply(const std::string& yaml) const {
  const std::string file =
      (fs::path(testing::TempDir()) / absl::StrCat("ms-apply-", ::getpid(), "-", counter++, ".yaml"))
          .string();
  std::ofstream(file) << yaml;
  return Kubectl({"apply", "--server-side", "--force-conflicts", "--field-manager=braid-test", "-f",
                  file});
}

// The gtest-free kubectl of stand_in.h, for this cluster.
multisite::Kubectl Cluster::Client() const {
  return multisite::Kubectl(k8s::Tool("kubectl"), kubeconfig,
                            (fs::path(testing::TempDir()) / "ms-kubectl").string());
}

std::optional<json> Cluster::Get(const std::vector<std::string>& args) const {
  return Client().Get(args);
}

std::string Cluster::SecretValue(const std::string& ns, const std::string& name,
                                 const std::string& key) const {
  return Client().SecretValue(ns, name, key);
}

void Cluster::Prepare() const {
  k8s::CommandResult r =
      Kubectl({"apply", "--server-side", "--force-conflicts", "-f", e2e::SourcePath("crds")});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Kubectl({"wait", "--for=condition=Established", "--timeout=60s", "crd/federatedjobs.braid.dev",
               "crd/tenants.braid.dev", "crd/sites.braid.dev",
               "crd/federatedinvitations.braid.dev"});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: braid-system}\n");
  ASSERT_EQ(r.code, 0) << r.err;
}

Cluster CoordinatorCluster() { return Cluster{k8s::Kubeconfig()}; }

Cluster SiteCluster(int index) {
  return index == 0 ? FromEnv("BRAID_SITE_A_KUBECONFIG", BRAID_SITE_A_KUBECONFIG_DEFAULT)
                    : FromEnv("BRAID_SITE_B_KUBECONFIG", BRAID_SITE_B_KUBECONFIG_DEFAULT);
}

void CreateSiteTenant(const Cluster& site, const std::string& tenant, const std::string& ns,
                      const std::string& dataset, const std::string& file, const json& policy) {
  const std::string pv = ns + "-data";
  json tenant_object = {
      {"apiVersion", "braid.dev/v1alpha1"},
      {"kind", "Tenant"},
      {"metadata", {{"name", tenant}}},
      {"spec",
       {{"namespace", ns},
        {"dataSources", {{{"claimName", "data"}}}},
        {"datasets", {{{"name", dataset}, {"claimName", "data"}, {"subPath", file}}}}}}};
  if (!policy.empty()) tenant_object["spec"]["policy"] = policy;
  // The whole Tenant is replaced (not merged), so a policy of an earlier
  // test does not linger.
  site.Kubectl({"delete", "tenant", tenant, "--ignore-not-found"});
  k8s::CommandResult r = site.Apply(absl::StrCat(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: ", ns, "}\n---\n", tenant_object.dump(),
      "\n---\n", "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: ", pv, "}\n",
      "spec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadOnlyMany]\n",
      "  storageClassName: \"\"\n  hostPath: {path: /tmp/", pv, "}\n",
      "  claimRef: {namespace: ", ns, ", name: data}\n---\n",
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: ", ns, "}\n",
      "spec:\n  accessModes: [ReadOnlyMany]\n  storageClassName: \"\"\n  volumeName: ", pv,
      "\n  resources: {requests: {storage: 1Gi}}\n"));
  ASSERT_EQ(r.code, 0) << r.err;
}

absl::StatusOr<std::vector<cli::Subprocess>> StartSiteWorkers(const Cluster& site,
                                                               const std::string& ns,
                                                               const std::string& job_uid,
                                                               const std::string& data_file,
                                                               const std::string& dir) {
  std::optional<json> deployments =
      site.Get({"deployments", "-n", ns, "-l", "braid.dev/job-uid=" + job_uid});
  if (!deployments.has_value() || (*deployments)["items"].empty()) {
    return absl::NotFoundError("no worker Deployments in " + ns);
  }
  std::vector<cli::Subprocess> workers;
  for (const json& d : (*deployments)["items"]) {
    StandInRequest request;
    request.binary = e2e::Binary("braid-worker");
    request.local_dir = dir + "/" + d["metadata"]["name"].get<std::string>();
    request.claim_files = {{"data", data_file}};  // the claim's one file
    absl::StatusOr<std::vector<std::string>> argv = StandInArgv(site.Client(), d, request);
    if (!argv.ok()) return argv.status();
    absl::StatusOr<cli::Subprocess> worker =
        cli::Subprocess::Start(*argv, request.local_dir + "/worker.log");
    if (!worker.ok()) return worker.status();
    workers.push_back(*std::move(worker));
  }
  return workers;
}

// --- For multisite_resilience_test.cc ------------------------------------

std::vector<CompletedRound> CompletedRounds(const std::string& audit_file) {
  std::vector<CompletedRound> rounds;
  std::ifstream in(audit_file);
  std::string line;
  while (std::getline(in, line)) {
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object() ||
        record.value("kind", "") != "round_completed") {
      continue;
    }
    CompletedRound r;
    r.round = record.value("/details/round"_json_pointer, 0);
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, record.value("time", ""), &r.time, &error)) continue;
    for (const json& t : record.value("/details/tenants"_json_pointer, json::array())) {
      if (t.is_string()) r.tenants.push_back(t.get<std::string>());
    }
    rounds.push_back(std::move(r));
  }
  return rounds;
}

std::optional<absl::Duration> MeanRoundTime(const std::vector<CompletedRound>& rounds) {
  if (rounds.size() < 2) return std::nullopt;
  return (rounds.back().time - rounds.front().time) / static_cast<int64_t>(rounds.size() - 1);
}

std::vector<std::string> WorkerDeploymentUids(const Cluster& site, const std::string& ns,
                                              const std::string& job_uid) {
  std::vector<std::string> uids;
  std::optional<json> list =
      site.Get({"deployments", "-n", ns, "-l", "braid.dev/job-uid=" + job_uid});
  if (!list.has_value()) return uids;
  for (const json& d : list->value("items", json::array())) {
    uids.push_back(d.value("/metadata/uid"_json_pointer, std::string()));
  }
  std::sort(uids.begin(), uids.end());
  return uids;
}

}  // namespace braid::multisite
