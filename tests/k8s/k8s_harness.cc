#include "tests/k8s/k8s_harness.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/harness.h"

namespace braid::k8s {
namespace fs = std::filesystem;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int counter = 0;

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

std::string Kubeconfig() {
  const std::string path = EnvOr("BRAID_KUBECONFIG", BRAID_K8S_KUBECONFIG);
  if (!fs::exists(path)) {
    ADD_FAILURE() << "no kubeconfig at " << path
                  << ": these tests need the control plane that `ctest -L k8s` starts with "
                     "tests/k8s/cluster.sh (by hand: export BRAID_KUBECONFIG=$(tests/k8s/cluster.sh up))";
  }
  return path;
}

std::string Tool(const std::string& name) {
  const std::string path = (fs::path(EnvOr("BRAID_K8S_BIN", BRAID_K8S_BIN_DIR)) / name).string();
  if (!fs::exists(path)) {
    ADD_FAILURE() << path << " does not exist: scripts/k8s-tools.sh builds it (make test runs it)";
  }
  return path;
}

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout) {
  const std::string dir = fs::path(testing::TempDir()) / "braid-cmd";
  fs::create_directories(dir);
  const std::string base = absl::StrCat(dir, "/", ::getpid(), "-", counter++);
  fs::remove(base + ".out");
  fs::remove(base + ".err");
  CommandResult result;
  absl::StatusOr<cli::Subprocess> proc = cli::Subprocess::Start(argv, base + ".err", base + ".out");
  if (!proc.ok()) {
    result.err = std::string(proc.status().message());
    return result;
  }
  result.code = proc->Wait(timeout);
  result.out = Slurp(base + ".out");
  result.err = Slurp(base + ".err");
  return result;
}

CommandResult Kubectl(const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> argv = {Tool("kubectl"), "--kubeconfig", Kubeconfig()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

CommandResult Apply(const std::string& yaml) {
  const std::string file =
      (fs::path(testing::TempDir()) / absl::StrCat("apply-", ::getpid(), "-", counter++, ".yaml"))
          .string();
  std::ofstream(file) << yaml;
  return Kubectl({"apply", "--server-side", "--field-manager=braid-test", "-f", file});
}

std::optional<nlohmann::json> GetJson(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"get"};
  full.insert(full.end(), args.begin(), args.end());
  full.push_back("-o");
  full.push_back("json");
  CommandResult r = Kubectl(full);
  if (r.code != 0) return std::nullopt;
  nlohmann::json parsed = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

std::vector<nlohmann::json> OwnedByJob(const std::string& kind, const std::string& uid) {
  std::optional<nlohmann::json> list = GetJson({kind, "-A", "-l", "braid.dev/job-uid=" + uid});
  if (!list.has_value()) return {};
  return (*list)["items"].get<std::vector<nlohmann::json>>();
}

nlohmann::json JobCondition(const nlohmann::json& job, const std::string& type) {
  for (const nlohmann::json& c :
       job.value("/status/conditions"_json_pointer, nlohmann::json::array())) {
    if (c.value("type", "") == type) return c;
  }
  return nlohmann::json();
}

bool WaitUntil(absl::Duration timeout, const std::function<bool()>& pred) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return pred();
}

void InstallCrds() {
  CommandResult r = Kubectl({"apply", "--server-side", "--force-conflicts", "-f",
                             e2e::SourcePath("crds")});
  ASSERT_EQ(r.code, 0) << r.err;
  r = Kubectl({"wait", "--for=condition=Established", "--timeout=60s",
               "crd/federatedjobs.braid.dev", "crd/tenants.braid.dev"});
  ASSERT_EQ(r.code, 0) << r.err;
}

std::string Operator::Metrics() const {
  CommandResult r = RunCommand(
      {"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics")},
      absl::Seconds(10));
  return r.code == 0 ? r.out : "";
}

absl::StatusOr<Operator> StartOperator(const std::string& kubeconfig, const std::string& dir,
                                       const std::vector<std::string>& extra_flags) {
  const std::string log = dir + "/operator.log";
  const std::string port_file = dir + "/operator.port";
  fs::remove(port_file);
  std::vector<std::string> argv = {e2e::Binary("braid-operator"),
                                   "--kubeconfig=" + kubeconfig,
                                   "--namespace=braid-system",
                                   "--metrics-listen=127.0.0.1:0",
                                   "--metrics-port-file=" + port_file,
                                   "--status-interval=500ms"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  absl::StatusOr<cli::Subprocess> proc = cli::Subprocess::Start(argv, log);
  if (!proc.ok()) return proc.status();
  if (!WaitUntil(absl::Seconds(30), [&] { return !Slurp(port_file).empty(); })) {
    return absl::DeadlineExceededError("braid-operator did not start; log:\n" + Slurp(log));
  }
  return Operator{*std::move(proc), std::atoi(Slurp(port_file).c_str()), log};
}

void CreateNamespace(const std::string& ns) {
  CommandResult r = Apply(absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata: {name: ", ns,
                                       "}\n"));
  ASSERT_EQ(r.code, 0) << r.err;
}

void CreateTenant(const std::string& tenant, const std::string& ns, const std::string& claim) {
  CreateNamespace(ns);
  const std::string pv = ns + "-" + claim;
  CommandResult r = Apply(absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: Tenant\nmetadata: {name: ", tenant, "}\n",
      "spec:\n  namespace: ", ns, "\n  dataSources: [{claimName: ", claim, "}]\n---\n",
      "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: ", pv, "}\n",
      "spec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadOnlyMany]\n",
      "  storageClassName: \"\"\n  hostPath: {path: /tmp/", pv, "}\n",
      "  claimRef: {namespace: ", ns, ", name: ", claim, "}\n---\n",
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: ", claim,
      ", namespace: ", ns, "}\n",
      "spec:\n  accessModes: [ReadOnlyMany]\n  storageClassName: \"\"\n  volumeName: ", pv,
      "\n  resources: {requests: {storage: 1Gi}}\n"));
  ASSERT_EQ(r.code, 0) << r.err;
}

void ResetConsentScenario(const std::string& job_ns, const std::string& job,
                          const std::vector<std::string>& tenants, const std::string& requiring) {
  CreateNamespace(job_ns);
  for (const std::string& t : tenants) CreateTenant(t, t, "data");
  Kubectl({"delete", "fedjob", "-n", job_ns, job, "--ignore-not-found", "--wait=true"});
  for (const std::string& t : tenants) {
    Kubectl({"delete", "tenantapprovals", "--all", "-n", t, "--ignore-not-found"});
    Kubectl({"delete", "rolebinding", "approvers", "-n", t, "--ignore-not-found"});
  }
  CommandResult patched = Kubectl({"patch", "tenant", requiring, "--type=merge", "-p",
                                   R"({"spec":{"policy":{"requireApproval":true}}})"});
  ASSERT_EQ(patched.code, 0) << patched.err;
}

std::string TwoTenantJobYaml(const std::string& job_ns, const std::string& job,
                             const std::string& tenant_a, const std::string& tenant_b) {
  return absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n", "metadata: {name: ", job,
      ", namespace: ", job_ns, "}\n",
      "spec:\n"
      "  model: {kind: mlp, mlp: {hidden: [8], numClasses: 4}}\n"
      "  data: {features: [x0, x1], label: label}\n"
      // minTenants 1: the consent tests run the job with one tenant refused.
      "  strategy: {rounds: 3, minClients: 1, minTenants: 1, roundTimeout: 1m}\n"
      "  tenants:\n"
      "  - {name: ", tenant_a, ", data: {persistentVolumeClaim: {claimName: data, subPath: a.csv}}}\n"
      "  - {name: ", tenant_b, ", data: {persistentVolumeClaim: {claimName: data, subPath: b.csv}}}\n");
}

absl::StatusOr<std::string> ApplyTenantApproverRole(const std::string& release) {
  CommandResult role =
      RunCommand({Tool("helm"), "template", release, e2e::SourcePath("charts/braid"),
                  "--show-only", "templates/tenant-approver-clusterrole.yaml"});
  if (role.code != 0) return absl::InternalError("helm template: " + role.err);
  const std::string name = release + "-braid-tenant-approver";
  if (role.out.find("name: " + name) == std::string::npos) {
    return absl::InternalError("the rendered ClusterRole is not named " + name + ":\n" + role.out);
  }
  CommandResult applied = Apply(role.out);
  if (applied.code != 0) return absl::InternalError("kubectl apply: " + applied.err);
  return name;
}

double MetricValue(const std::string& page, const std::string& metric) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(metric, 0) == 0 && line.size() > metric.size() &&
        (line[metric.size()] == ' ' || line[metric.size()] == '{')) {
      return std::atof(line.substr(line.rfind(' ') + 1).c_str());
    }
  }
  return -1;
}

}  // namespace braid::k8s
