#include "braid/operator/job_objects.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "braid/core/spec.h"
#include "braid/control/desired_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::op {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Tenant alpha runs in its own namespace with two workers; tenant beta runs
// in the job's namespace.
constexpr char kJobYaml[] = R"(apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: train, namespace: lab}
spec:
  model: {kind: mlp}
  data: {features: [x0, x1]}
  strategy: {rounds: 5, minClients: 2}
  tenants:
  - name: alpha
    namespace: tenant-a
    replicas: 2
    data: {persistentVolumeClaim: {claimName: alpha-data, subPath: train/alpha.csv}}
  - name: beta
    data: {persistentVolumeClaim: {claimName: beta-data, subPath: beta.csv}}
)";
constexpr char kUid[] = "0f1e2d3c-uid";

spec::JobSpec ParseJob(const std::string& yaml) {
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(yaml, "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

JobObjectsContext Context() {
  JobObjectsContext c;
  c.job_uid = kUid;
  c.job_yaml = kJobYaml;
  c.aggregator_image = "registry.test/braid/aggregator:1";
  c.worker_image = "registry.test/braid/worker:1";
  c.operator_namespace = "braid-system";
  c.tenant_namespaces = {{"alpha", "tenant-a"}, {"beta", "lab"}};
  return c;
}

std::string Kind(const json& o) { return o.value("kind", ""); }
std::string Ns(const json& o) { return o["metadata"].value("namespace", ""); }
std::string Name(const json& o) { return o["metadata"].value("name", ""); }
json Labels(const json& o) { return o["metadata"].value("labels", json::object()); }
std::string Label(const json& o, const std::string& key) { return Labels(o).value(key, ""); }

std::vector<json> OfKind(const std::vector<json>& objects, const std::string& kind) {
  std::vector<json> out;
  for (const json& o : objects) {
    if (Kind(o) == kind) out.push_back(o);
  }
  return out;
}

const json* Find(const std::vector<json>& objects, const std::string& kind,
                 const std::string& ns, const std::string& name) {
  for (const json& o : objects) {
    if (Kind(o) == kind && Ns(o) == ns && Name(o) == name) return &o;
  }
  return nullptr;
}

// Whether the label selector "k=v,k=v" (equality only, as JobSelector
// makes) selects `labels`.
bool SelectorMatches(const std::string& selector, const json& labels) {
  for (absl::string_view req : absl::StrSplit(selector, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(req, absl::MaxSplits('=', 1));
    if (!labels.contains(kv.first) || labels[kv.first] != kv.second) return false;
  }
  return true;
}

// Whether matchLabels `selector` (a LabelSelector object) selects `labels`.
bool MatchLabels(const json& selector, const json& labels) {
  const json match = selector.value("matchLabels", json::object());
  for (const auto& [k, v] : match.items()) {
    if (!labels.contains(k) || labels[k] != v) return false;
  }
  return true;
}

const json& PodSpec(const json& deployment) { return deployment["spec"]["template"]["spec"]; }
const json& PodLabels(const json& deployment) {
  return deployment["spec"]["template"]["metadata"]["labels"];
}

// The value of "--<flag>=" in the container's args ("" if absent).
std::string Arg(const json& container, const std::string& flag) {
  const std::string prefix = "--" + flag + "=";
  for (const json& a : container.value("args", json::array())) {
    const std::string s = a;
    if (absl::StartsWith(s, prefix)) return s.substr(prefix.size());
  }
  return "";
}

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() >= 'a' && s.front() <= 'z' && s.back() != '-';
}

class JobObjectsTest : public ::testing::Test {
 protected:
  JobObjectsTest() : job_(ParseJob(kJobYaml)), objects_(DesiredObjects(job_, Context())) {}
  spec::JobSpec job_;
  std::vector<json> objects_;
};

TEST_F(JobObjectsTest, ObjectsLandInTheJobAndTenantNamespaces) {
  std::set<std::string> got;
  for (const json& o : objects_) got.insert(absl::StrCat(Kind(o), " ", Ns(o), "/", Name(o)));
  const std::string a = "tenant-a/";
  const std::set<std::string> want = {
      // The job's namespace: the aggregator, its Service, policy and the job
      // file, plus tenant beta's one worker and its policy.
      "ConfigMap lab/train-job",
      "Service lab/train-aggregator",
      "NetworkPolicy lab/train-aggregator",
      "Deployment lab/train-aggregator",
      "NetworkPolicy lab/train-workers",
      "Deployment lab/train-beta-0",
      // Tenant alpha's namespace: its two workers, their policy, the job file.
      "ConfigMap " + a + ObjectName(job_, "tenant-a", "job"),
      "NetworkPolicy " + a + ObjectName(job_, "tenant-a", "workers"),
      "Deployment " + a + ObjectName(job_, "tenant-a", "alpha-0"),
      "Deployment " + a + ObjectName(job_, "tenant-a", "alpha-1"),
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), objects_.size()) << "an object is rendered twice";
  // Names outside the job's namespace say which job they belong to.
  EXPECT_TRUE(absl::StrContains(ObjectName(job_, "tenant-a", "alpha-0"), "lab"));
  EXPECT_TRUE(absl::StrContains(ObjectName(job_, "tenant-a", "alpha-0"), "train"));
  EXPECT_EQ(AggregatorAddress(job_), "train-aggregator.lab.svc:7070");
}

TEST_F(JobObjectsTest, OnlyObjectsInTheJobNamespaceAreOwnedByTheJob) {
  for (const json& o : objects_) {
    SCOPED_TRACE(Kind(o) + " " + Ns(o) + "/" + Name(o));
    const json& meta = o["metadata"];
    if (Ns(o) == "lab") {
      ASSERT_TRUE(meta.contains("ownerReferences"));
      ASSERT_EQ(meta["ownerReferences"].size(), 1u);
      const json& ref = meta["ownerReferences"][0];
      EXPECT_EQ(ref["apiVersion"], "braid.dev/v1alpha1");
      EXPECT_EQ(ref["kind"], "FederatedJob");
      EXPECT_EQ(ref["name"], "train");
      EXPECT_EQ(ref["uid"], kUid);
      EXPECT_EQ(ref["controller"], true);
    } else {
      // Owner references cannot cross namespaces; the finalizer cleans up.
      EXPECT_FALSE(meta.contains("ownerReferences"));
    }
  }
}

TEST_F(JobObjectsTest, EveryObjectIsLabelledAndFoundByJobSelector) {
  const std::string selector = JobSelector(kUid);
  for (const json& o : objects_) {
    SCOPED_TRACE(Kind(o) + " " + Ns(o) + "/" + Name(o));
    EXPECT_EQ(Label(o, kJobUidLabel), kUid);
    EXPECT_EQ(Label(o, "braid.dev/job"), "train");
    EXPECT_EQ(Label(o, "braid.dev/job-namespace"), "lab");
    EXPECT_TRUE(SelectorMatches(selector, Labels(o))) << selector;
    // Another job's clean-up never selects this job's objects.
    EXPECT_FALSE(SelectorMatches(JobSelector("another-uid"), Labels(o)));
    EXPECT_TRUE(IsDnsLabel(Name(o))) << Name(o);
  }
}

TEST_F(JobObjectsTest, EachWorkerMountsOnlyItsTenantsFileReadOnly) {
  std::map<std::string, int> workers_per_tenant;
  for (const json& d : OfKind(objects_, "Deployment")) {
    if (Label(d, "braid.dev/role") != "worker") continue;
    SCOPED_TRACE(Ns(d) + "/" + Name(d));
    const std::string tenant = Label(d, "braid.dev/tenant");
    const int replica = std::stoi(Label(d, "braid.dev/replica"));
    ++workers_per_tenant[tenant];
    const spec::Tenant& t = tenant == "alpha" ? job_.tenants[0] : job_.tenants[1];
    ASSERT_EQ(t.name, tenant);
    EXPECT_EQ(Ns(d), tenant == "alpha" ? "tenant-a" : "lab");
    EXPECT_EQ(Name(d), ObjectName(job_, Ns(d), absl::StrCat(tenant, "-", replica)));
    EXPECT_EQ(d["spec"]["replicas"], 1);
    // The selector picks this replica's pods (and the API server requires
    // the template to carry what it selects).
    EXPECT_TRUE(MatchLabels(d["spec"]["selector"], PodLabels(d)));

    // One claim volume: this tenant's, read-only.
    const json& pod = PodSpec(d);
    std::string claim_volume;
    for (const json& v : pod["volumes"]) {
      if (!v.contains("persistentVolumeClaim")) continue;
      EXPECT_TRUE(claim_volume.empty()) << "a second claim is mounted";
      claim_volume = v["name"];
      EXPECT_EQ(v["persistentVolumeClaim"]["claimName"], t.data.claim_name);
      EXPECT_EQ(v["persistentVolumeClaim"]["readOnly"], true);
    }
    ASSERT_FALSE(claim_volume.empty());
    ASSERT_EQ(pod["containers"].size(), 1u);
    EXPECT_FALSE(pod.contains("initContainers"));
    const json& c = pod["containers"][0];
    int claim_mounts = 0;
    for (const json& m : c["volumeMounts"]) {
      if (m["name"] != claim_volume) continue;
      ++claim_mounts;
      // Only the file the job names, not the whole claim.
      EXPECT_EQ(m["subPath"], t.data.sub_path);
      EXPECT_EQ(m["readOnly"], true);
      EXPECT_EQ(Arg(c, "data"), m["mountPath"]);
    }
    EXPECT_EQ(claim_mounts, 1);
    EXPECT_EQ(Arg(c, "tenant"), tenant);
    EXPECT_EQ(Arg(c, "replica"), std::to_string(replica));
    EXPECT_EQ(Arg(c, "aggregator"), "train-aggregator.lab.svc:7070");
    EXPECT_EQ(c["image"], "registry.test/braid/worker:1");
  }
  EXPECT_EQ(workers_per_tenant, (std::map<std::string, int>{{"alpha", 2}, {"beta", 1}}));
}

TEST_F(JobObjectsTest, AggregatorServiceSelectsTheAggregatorPodsGrpcPort) {
  const json* service = Find(objects_, "Service", "lab", AggregatorServiceName(job_));
  const json* aggregator = Find(objects_, "Deployment", "lab", "train-aggregator");
  ASSERT_NE(service, nullptr);
  ASSERT_NE(aggregator, nullptr);
  json selector = {{"matchLabels", (*service)["spec"]["selector"]}};
  EXPECT_TRUE(MatchLabels(selector, PodLabels(*aggregator)));
  for (const json& d : OfKind(objects_, "Deployment")) {
    if (Name(d) != "train-aggregator") {
      EXPECT_FALSE(MatchLabels(selector, PodLabels(d))) << Name(d);
    }
  }
  bool grpc = false;
  for (const json& p : (*service)["spec"]["ports"]) {
    if (p["port"] == kAggregatorGrpcPort) {
      grpc = true;
      EXPECT_EQ(p["targetPort"], "grpc");
    }
  }
  EXPECT_TRUE(grpc);
  const json& c = PodSpec(*aggregator)["containers"][0];
  EXPECT_EQ(c["image"], "registry.test/braid/aggregator:1");
  EXPECT_EQ(Arg(c, "listen"), "0.0.0.0:7070");
  EXPECT_EQ((*aggregator)["spec"]["replicas"], 1);
}

TEST_F(JobObjectsTest, WorkerPolicyDeniesIngressAndAllowsOnlyAggregatorAndDns) {
  const json* aggregator = Find(objects_, "Deployment", "lab", "train-aggregator");
  ASSERT_NE(aggregator, nullptr);
  int policies = 0;
  for (const json& np : OfKind(objects_, "NetworkPolicy")) {
    if (Label(np, "braid.dev/role") != "worker") continue;
    ++policies;
    SCOPED_TRACE(Ns(np) + "/" + Name(np));
    const json& spec = np["spec"];
    // It covers every worker of the job in its namespace, and nothing else.
    for (const json& d : OfKind(objects_, "Deployment")) {
      if (Ns(d) != Ns(np)) continue;
      EXPECT_EQ(MatchLabels(spec["podSelector"], PodLabels(d)),
                Label(d, "braid.dev/role") == "worker")
          << Name(d);
    }
    EXPECT_THAT(spec["policyTypes"], UnorderedElementsAre("Ingress", "Egress"));
    ASSERT_TRUE(spec.contains("ingress"));
    EXPECT_TRUE(spec["ingress"].empty()) << "nothing may reach a worker";
    ASSERT_EQ(spec["egress"].size(), 2u);
    const json& to_aggregator = spec["egress"][0];
    EXPECT_EQ(to_aggregator["ports"],
              json::parse(R"([{"protocol": "TCP", "port": 7070}])"));
    ASSERT_EQ(to_aggregator["to"].size(), 1u);
    const json& peer = to_aggregator["to"][0];
    EXPECT_EQ(peer["namespaceSelector"],
              json::parse(R"({"matchLabels": {"kubernetes.io/metadata.name": "lab"}})"));
    ASSERT_TRUE(peer.contains("podSelector"));
    EXPECT_TRUE(MatchLabels(peer["podSelector"], PodLabels(*aggregator)));
    // Not the job's other pods (the workers of the job namespace's tenant).
    const json* beta = Find(objects_, "Deployment", "lab", "train-beta-0");
    ASSERT_NE(beta, nullptr);
    EXPECT_FALSE(MatchLabels(peer["podSelector"], PodLabels(*beta)));

    const json& dns = spec["egress"][1];
    EXPECT_THAT(dns["ports"],
                UnorderedElementsAre(json::parse(R"({"protocol": "UDP", "port": 53})"),
                                     json::parse(R"({"protocol": "TCP", "port": 53})")));
    ASSERT_EQ(dns["to"].size(), 1u);
    EXPECT_EQ(dns["to"][0]["podSelector"]["matchLabels"]["k8s-app"], "kube-dns");
  }
  EXPECT_EQ(policies, 2);  // tenant-a and lab
}

TEST_F(JobObjectsTest, AggregatorPolicyAdmitsOnlyThisJobsWorkersAndTheOperator) {
  const json* np = Find(objects_, "NetworkPolicy", "lab", "train-aggregator");
  const json* aggregator = Find(objects_, "Deployment", "lab", "train-aggregator");
  ASSERT_NE(np, nullptr);
  ASSERT_NE(aggregator, nullptr);
  const json& spec = (*np)["spec"];
  EXPECT_TRUE(MatchLabels(spec["podSelector"], PodLabels(*aggregator)));
  EXPECT_THAT(spec["policyTypes"], ElementsAre("Ingress"));
  int grpc_rules = 0;
  for (const json& rule : spec["ingress"]) {
    bool grpc = false;
    for (const json& p : rule.value("ports", json::array())) {
      grpc |= p["port"] == kAggregatorGrpcPort;
    }
    if (!rule.contains("ports")) grpc = true;  // all ports
    if (!grpc) continue;
    ++grpc_rules;
    ASSERT_TRUE(rule.contains("from")) << "the gRPC port is open to everyone";
    std::set<std::string> namespaces;
    for (const json& peer : rule["from"]) {
      ASSERT_TRUE(peer.contains("namespaceSelector")) << peer.dump();
      const std::string ns =
          peer["namespaceSelector"]["matchLabels"].value("kubernetes.io/metadata.name", "");
      namespaces.insert(ns);
      if (ns == "braid-system") {
        EXPECT_FALSE(peer.contains("podSelector"));
        continue;
      }
      // Only this job's workers in a tenant namespace.
      ASSERT_TRUE(peer.contains("podSelector")) << peer.dump();
      const json& pods = peer["podSelector"];
      EXPECT_EQ(pods["matchLabels"][kJobUidLabel], kUid);
      EXPECT_EQ(pods["matchLabels"]["braid.dev/role"], "worker");
      for (const json& d : OfKind(objects_, "Deployment")) {
        if (Ns(d) == ns && Label(d, "braid.dev/role") == "worker") {
          EXPECT_TRUE(MatchLabels(pods, PodLabels(d))) << Name(d);
        }
      }
      json other_job = PodLabels(*Find(objects_, "Deployment", "lab", "train-beta-0"));
      other_job[kJobUidLabel] = "another-uid";
      EXPECT_FALSE(MatchLabels(pods, other_job));
    }
    EXPECT_EQ(namespaces, (std::set<std::string>{"tenant-a", "lab", "braid-system"}));
  }
  EXPECT_EQ(grpc_rules, 1);
}

TEST(JobObjects, NotRunningWorkersOrAggregatorScalesThemToZero) {
  const spec::JobSpec job = ParseJob(kJobYaml);
  // (suspended, ended): what the reconciler passes for a suspended job and
  // for one the aggregator ended.
  auto replicas = [&](bool suspended, bool ended) {
    JobObjectsContext c = Context();
    c.run.suspended = suspended;
    c.run.ended = ended;
    std::map<std::string, int> out;  // role -> sum of replicas
    int deployments = 0;
    for (const json& d : OfKind(DesiredObjects(job, c), "Deployment")) {
      out[Label(d, "braid.dev/role")] += d["spec"]["replicas"].get<int>();
      ++deployments;
    }
    EXPECT_EQ(deployments, 4) << "Deployments are kept (scaled), not removed";
    return out;
  };
  EXPECT_EQ(replicas(false, false), (std::map<std::string, int>{{"aggregator", 1}, {"worker", 3}}));
  EXPECT_EQ(replicas(false, true), (std::map<std::string, int>{{"aggregator", 1}, {"worker", 0}}));
  EXPECT_EQ(replicas(true, false), (std::map<std::string, int>{{"aggregator", 0}, {"worker", 0}}));
}

TEST(JobObjects, StoppedTenantsWorkersAreScaledToZero) {
  const spec::JobSpec job = ParseJob(kJobYaml);
  JobObjectsContext c = Context();
  c.run.consent = {control::TenantConsent{job.tenants[0].name, control::Consent::kRefused, "", ""}};
  std::map<std::string, int> by_tenant;  // tenant -> sum of worker replicas
  for (const json& d : OfKind(DesiredObjects(job, c), "Deployment")) {
    if (Label(d, "braid.dev/role") == "worker") {
      by_tenant[Label(d, "braid.dev/tenant")] += d["spec"]["replicas"].get<int>();
    }
  }
  ASSERT_EQ(by_tenant.size(), job.tenants.size());
  EXPECT_EQ(by_tenant[job.tenants[0].name], 0);
  for (size_t i = 1; i < job.tenants.size(); ++i) {
    EXPECT_EQ(by_tenant[job.tenants[i].name], job.tenants[i].replicas);
  }
}

// The aggregator waits for the workers that will come: a refused tenant's
// replicas are not expected (as `braid run` tells its aggregator), so rounds
// do not sit out the start grace for workers that never join.
TEST(JobObjects, TheAggregatorExpectsOnlyTheWorkersOfTenantsThatMayRun) {
  const spec::JobSpec job = ParseJob(kJobYaml);  // alpha: 2 replicas, beta: 1
  auto aggregator_args = [&](const JobObjectsContext& c) {
    for (const json& d : OfKind(DesiredObjects(job, c), "Deployment")) {
      if (Label(d, "braid.dev/role") == "aggregator") return PodSpec(d)["containers"][0];
    }
    return json();
  };
  JobObjectsContext c = Context();
  c.run.consent = {control::TenantConsent{"alpha", control::Consent::kApproved, "", ""},
                   control::TenantConsent{"beta", control::Consent::kRefused, "", ""}};
  EXPECT_EQ(Arg(aggregator_args(c), "expected-clients"), "2");
  c.run.consent = {control::TenantConsent{"alpha", control::Consent::kRefused, "", ""},
                   control::TenantConsent{"beta", control::Consent::kNotRequired, "", ""}};
  EXPECT_EQ(Arg(aggregator_args(c), "expected-clients"), "1");
  // Every tenant runs: the aggregator's default (all 3 replicas), no flag.
  c.run.consent = {};
  EXPECT_EQ(Arg(aggregator_args(c), "expected-clients"), "");
  // A revocation once the aggregator runs keeps its arguments (a change
  // would restart it); the reconciler passes what it runs with.
  c.run.consent = {control::TenantConsent{"alpha", control::Consent::kRefused, "", ""}};
  c.run.running_expected_clients = 3;
  EXPECT_EQ(Arg(aggregator_args(c), "expected-clients"), "");
}

TEST_F(JobObjectsTest, PodsReadTheJobFileFromAConfigMapInTheirNamespace) {
  std::vector<json> config_maps = OfKind(objects_, "ConfigMap");
  ASSERT_EQ(config_maps.size(), 2u);  // lab and tenant-a
  for (const json& cm : config_maps) EXPECT_EQ(cm["data"]["job.yaml"], kJobYaml) << Ns(cm);
  for (const json& d : OfKind(objects_, "Deployment")) {
    SCOPED_TRACE(Ns(d) + "/" + Name(d));
    const json& pod = PodSpec(d);
    std::string volume, config_map;
    for (const json& v : pod["volumes"]) {
      if (v.contains("configMap")) {
        volume = v["name"];
        config_map = v["configMap"]["name"];
      }
    }
    ASSERT_NE(Find(objects_, "ConfigMap", Ns(d), config_map), nullptr)
        << "no ConfigMap " << config_map << " in " << Ns(d);
    for (const json& c : pod["containers"]) {
      std::string mount;
      for (const json& m : c["volumeMounts"]) {
        if (m["name"] == volume) mount = m["mountPath"];
      }
      ASSERT_FALSE(mount.empty());
      EXPECT_EQ(Arg(c, "job"), mount + "/job.yaml");
      // The aggregator also reads the operator's admission record there,
      // for its audit log; the workers' ConfigMaps do not carry it.
      if (c["name"] == "aggregator") {
        EXPECT_EQ(Arg(c, "admission-file"), mount + "/admission.json");
        EXPECT_TRUE(Find(objects_, "ConfigMap", Ns(d), config_map)->at("data").contains(
            "admission.json"));
      }
    }
  }
  EXPECT_FALSE(Find(objects_, "ConfigMap", "tenant-a", "lab-train-job")->at("data").contains(
      "admission.json"));
}

TEST_F(JobObjectsTest, PodsRunAsNonRootWithReadOnlyRootAndNoToken) {
  for (const json& d : OfKind(objects_, "Deployment")) {
    SCOPED_TRACE(Ns(d) + "/" + Name(d));
    const json& pod = PodSpec(d);
    EXPECT_EQ(pod["automountServiceAccountToken"], false);
    EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
    EXPECT_NE(pod["securityContext"].value("runAsUser", 0), 0);
    std::vector<json> containers = pod["containers"];
    for (const json& c : pod.value("initContainers", json::array())) containers.push_back(c);
    for (const json& c : containers) {
      SCOPED_TRACE(c["name"].get<std::string>());
      EXPECT_EQ(c["securityContext"]["readOnlyRootFilesystem"], true);
      EXPECT_EQ(c["securityContext"]["allowPrivilegeEscalation"], false);
      EXPECT_THAT(c["securityContext"]["capabilities"]["drop"], ElementsAre("ALL"));
      EXPECT_NE(c["securityContext"].value("runAsNonRoot", true), false);
    }
  }
}

TEST_F(JobObjectsTest, DeploymentsFollowTheDesiredSetInOrder) {
  const std::vector<control::Workload> workloads = control::ComputeDesiredSet(job_).workloads;
  const std::vector<json> deployments = OfKind(objects_, "Deployment");
  ASSERT_EQ(deployments.size(), workloads.size());
  for (size_t i = 0; i < workloads.size(); ++i) {
    SCOPED_TRACE(workloads[i].name);
    const json& d = deployments[i];
    if (workloads[i].role == control::Workload::Role::kAggregator) {
      EXPECT_EQ(Label(d, "braid.dev/role"), "aggregator");
      EXPECT_EQ(Name(d), ObjectName(job_, "lab", "aggregator"));
    } else {
      EXPECT_EQ(Label(d, "braid.dev/role"), "worker");
      EXPECT_EQ(Label(d, "braid.dev/tenant"), workloads[i].tenant);
      EXPECT_EQ(Label(d, "braid.dev/replica"), std::to_string(workloads[i].replica));
    }
  }
}

TEST(DnsLabel, KeepsLabelsAndMakesEverythingElseAValidDistinctLabel) {
  EXPECT_EQ(DnsLabel("train-aggregator"), "train-aggregator");
  const std::string long_a = std::string(70, 'a') + "-one";
  const std::string long_b = std::string(70, 'a') + "-two";
  for (const std::string& base :
       {long_a, long_b, std::string(63, 'x') + "y", std::string("Train_Job.V2"),
        std::string("7-up"), std::string("ends-with-"), std::string("-starts"), std::string(""),
        std::string(200, '-')}) {
    SCOPED_TRACE(base);
    const std::string label = DnsLabel(base);
    EXPECT_TRUE(IsDnsLabel(label)) << label;
    EXPECT_LE(label.size(), 63u);
    EXPECT_EQ(DnsLabel(base), label) << "not deterministic";
  }
  // Same 54-character prefix, different endings: still different names.
  EXPECT_NE(DnsLabel(long_a), DnsLabel(long_b));
  // Two inputs that map to the same characters stay apart.
  EXPECT_NE(DnsLabel("job.a"), DnsLabel("job_a"));
  EXPECT_NE(DnsLabel("Job-a"), DnsLabel("job-a"));
  // A long name keeps a readable prefix.
  EXPECT_TRUE(absl::StartsWith(DnsLabel(long_a), std::string(40, 'a')));
}

TEST(JobObjects, LongNamesStayValidAndDistinct) {
  const std::string name(63, 'n');
  const std::string ns(63, 's');
  std::string yaml = kJobYaml;
  yaml.replace(yaml.find("name: train"), 11, "name: " + name);
  yaml.replace(yaml.find("namespace: lab"), 14, "namespace: " + ns);
  const spec::JobSpec job = ParseJob(yaml);
  JobObjectsContext c = Context();
  c.tenant_namespaces["beta"] = ns;
  std::set<std::string> names;
  for (const json& o : DesiredObjects(job, c)) {
    EXPECT_TRUE(IsDnsLabel(Name(o))) << Name(o);
    names.insert(absl::StrCat(Kind(o), " ", Ns(o), "/", Name(o)));
  }
  EXPECT_EQ(names.size(), 10u);
  EXPECT_TRUE(IsDnsLabel(AggregatorServiceName(job)));
}

TEST(JobObjects, SameJobNameInTwoNamespacesDoesNotCollideInASharedTenantNamespace) {
  std::string other_yaml = kJobYaml;
  other_yaml.replace(other_yaml.find("namespace: lab"), 14, "namespace: clinic");
  const spec::JobSpec lab = ParseJob(kJobYaml);
  const spec::JobSpec clinic = ParseJob(other_yaml);
  JobObjectsContext lab_context = Context();
  JobObjectsContext clinic_context = Context();
  clinic_context.job_uid = "other-uid";
  clinic_context.tenant_namespaces["beta"] = "clinic";
  std::set<std::string> lab_names;
  for (const json& o : DesiredObjects(lab, lab_context)) {
    if (Ns(o) == "tenant-a") lab_names.insert(Kind(o) + "/" + Name(o));
  }
  ASSERT_EQ(lab_names.size(), 4u);
  int shared = 0;
  for (const json& o : DesiredObjects(clinic, clinic_context)) {
    if (Ns(o) != "tenant-a") continue;
    ++shared;
    EXPECT_EQ(lab_names.count(Kind(o) + "/" + Name(o)), 0u) << Kind(o) << " " << Name(o);
  }
  EXPECT_EQ(shared, 4);
}

}  // namespace
}  // namespace braid::op

namespace braid::op {
namespace {

// kJobYaml with tenant alpha at site st-alpha (dataset notes).
std::string SiteJobYaml() {
  std::string yaml = kJobYaml;
  const std::string ns = "    namespace: tenant-a\n";
  yaml.replace(yaml.find(ns), ns.size(), "    site: st-alpha\n");
  const std::string data =
      "    data: {persistentVolumeClaim: {claimName: alpha-data, subPath: train/alpha.csv}}";
  yaml.replace(yaml.find(data), data.size(), "    dataset: notes");
  return yaml;
}

TEST(JobObjectsMultiSite, TheCoordinatorRendersNoObjectsForSiteTenantsAndOpensTheGrpcPort) {
  JobObjectsContext c = Context();
  c.tenant_namespaces.erase("alpha");
  c.federation_ca_secret = "train-federation-ca";
  const std::string yaml = SiteJobYaml();
  const std::vector<json> objects = DesiredObjects(ParseJob(yaml), c);
  for (const json& o : objects) {
    EXPECT_NE(Label(o, "braid.dev/tenant"), "alpha") << Name(o);
    EXPECT_NE(Ns(o), "tenant-a") << Name(o);
  }
  EXPECT_EQ(OfKind(objects, "Deployment").size(), 2u);  // the aggregator and beta's worker
  const json* aggregator = Find(objects, "Deployment", "lab", "train-aggregator");
  ASSERT_NE(aggregator, nullptr);
  const json pod = (*aggregator)["spec"]["template"]["spec"];
  EXPECT_THAT(pod["containers"][0]["args"].get<std::vector<std::string>>(),
              ::testing::Contains("--tls-client-ca-extra=/var/run/braid/federation/ca.crt"));
  bool mounted = false;
  for (const json& v : pod["volumes"]) {
    mounted |= v.value("/secret/secretName"_json_pointer, "") == "train-federation-ca";
  }
  EXPECT_TRUE(mounted);
  // Site workers come from outside the cluster: the gRPC rule names no peers.
  const json* policy = Find(objects, "NetworkPolicy", "lab", "train-aggregator");
  ASSERT_NE(policy, nullptr);
  EXPECT_FALSE((*policy)["spec"]["ingress"][0].contains("from"));
}

TEST(JobObjectsMultiSite, WithAGatewayEachJobsAggregatorGetsATlsRouteOnItsCertificateName) {
  JobObjectsContext c = Context();
  c.tenant_namespaces.erase("alpha");
  c.federation_ca_secret = "train-federation-ca";
  const std::string yaml = SiteJobYaml();
  EXPECT_TRUE(OfKind(DesiredObjects(ParseJob(yaml), c), "TLSRoute").empty()) << "none unasked";

  c.aggregator_gateway = JobObjectsContext::GatewayRef{"braid-system", "federation", "aggregators"};
  const std::vector<json> objects = DesiredObjects(ParseJob(yaml), c);
  const json* route = Find(objects, "TLSRoute", "lab", "train-aggregator");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ((*route)["apiVersion"], "gateway.networking.k8s.io/v1");
  EXPECT_EQ((*route)["spec"]["parentRefs"],
            json::parse(R"([{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                             "namespace": "braid-system", "name": "federation",
                             "sectionName": "aggregators"}])"));
  EXPECT_EQ((*route)["spec"]["hostnames"], json::array({"train-aggregator.lab.svc"}));
  EXPECT_EQ((*route)["spec"]["rules"][0]["backendRefs"],
            json::parse(R"([{"name": "train-aggregator", "port": 7070}])"));
  EXPECT_EQ(Label(*route, "braid.dev/job-uid"), Label(*Find(objects, "Service", "lab", "train-aggregator"), "braid.dev/job-uid"));

  // A job without site tenants needs no route.
  JobObjectsContext local = Context();
  local.aggregator_gateway = c.aggregator_gateway;
  EXPECT_TRUE(OfKind(DesiredObjects(ParseJob(kJobYaml), local), "TLSRoute").empty());
}

TEST(JobObjectsMultiSite, AGatewayIsNamedAsNamespaceNameAndListener) {
  absl::StatusOr<JobObjectsContext::GatewayRef> ref = ParseGatewayRef("braid-system/federation");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->namespace_, "braid-system");
  EXPECT_EQ(ref->name, "federation");
  EXPECT_EQ(ref->section, "");
  ref = ParseGatewayRef("gw/public.gateway/tls-passthrough");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->section, "tls-passthrough");
  for (const char* bad : {"federation", "a/b/c/d", "Braid/x", "ns/Bad_Name", "ns/gw/", "/gw"}) {
    EXPECT_EQ(ParseGatewayRef(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(JobObjectsMultiSite, ASiteRendersOnlyItsWorkersDialingTheRemoteAggregator) {
  JobObjectsContext c = Context();
  c.tenant_namespaces = {{"alpha", "tenant-a"}};
  c.remote_aggregator = JobObjectsContext::RemoteAggregator{
      "fl.coordinator.example:8443", "train-aggregator.lab.svc", "site-tls"};
  c.owner_reference = {{"apiVersion", "braid.dev/v1alpha1"}, {"kind", "FederatedInvitation"},
                       {"name", "inv"}, {"uid", "inv-uid"}};
  spec::JobSpec job = ParseJob(kJobYaml);
  job.tenants.resize(1);  // the site's own tenant only
  const std::vector<json> objects = DesiredObjects(job, c);
  std::set<std::string> kinds;
  for (const json& o : objects) {
    kinds.insert(Kind(o));
    EXPECT_EQ(Ns(o), "tenant-a") << Kind(o) << " " << Name(o);
    EXPECT_EQ(o["metadata"]["ownerReferences"][0]["uid"], "inv-uid") << Name(o);
  }
  EXPECT_THAT(kinds, UnorderedElementsAre("ConfigMap", "NetworkPolicy", "Deployment"));
  const std::vector<json> workers = OfKind(objects, "Deployment");
  ASSERT_EQ(workers.size(), 2u);
  const json container = workers[0]["spec"]["template"]["spec"]["containers"][0];
  const auto args = container["args"].get<std::vector<std::string>>();
  EXPECT_THAT(args, ::testing::Contains("--aggregator=fl.coordinator.example:8443"));
  EXPECT_THAT(args, ::testing::Contains("--tls-server-name=train-aggregator.lab.svc"));
  bool site_tls = false;
  for (const json& v : workers[0]["spec"]["template"]["spec"]["volumes"]) {
    site_tls |= v.value("/secret/secretName"_json_pointer, "") == "site-tls";
  }
  EXPECT_TRUE(site_tls);
  // Egress: the remote aggregator's port on any address, and DNS.
  const json policy = OfKind(objects, "NetworkPolicy")[0];
  EXPECT_EQ(policy["spec"]["egress"][0]["ports"][0]["port"], 8443);
  EXPECT_EQ(policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"], "0.0.0.0/0");
}

}  // namespace
}  // namespace braid::op
