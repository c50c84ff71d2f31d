// braid-operator against a real control plane (kube-apiserver, etcd,
// controller-manager, scheduler, kwok): what a platform team and an ML
// engineer see with kubectl. Aggregators run as local processes the
// operator is pointed at (--aggregator-address-template), since kwok's pods
// run no containers.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "braid/core/audit_log.h"
#include "braid/core/spec.h"
#include "braid/operator/job_tls.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"
#include "tests/k8s/tcp_proxy.h"

namespace braid::k8s {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct TenantSpec {
  std::string name;
  std::string data = "{persistentVolumeClaim: {claimName: data, subPath: data.csv}}";
};

std::string JobYaml(const std::string& name, const std::string& ns,
                    const std::vector<TenantSpec>& tenants, int rounds = 3,
                    const std::string& extra = "") {
  std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n", "metadata: {name: ", name,
      ", namespace: ", ns, "}\n", "spec:\n", extra,
      "  model: {kind: mlp, mlp: {hidden: [64, 64], numClasses: 4}}\n",
      "  data: {features: [x0, x1, x2, x3, x4, x5, x6, x7], label: label}\n",
      "  strategy: {rounds: ", rounds, ", minClients: ", tenants.size(),
      ", roundTimeout: 1m}\n",
      // Slow enough (about half a second a round here) for the status to show
      // rounds advancing.
      "  training: {localEpochs: 20, batchSize: 32, learningRate: 0.05, seed: 7}\n",
      "  tenants:\n");
  for (const TenantSpec& t : tenants) {
    absl::StrAppend(&yaml, "  - name: ", t.name, "\n    data: ", t.data, "\n");
  }
  return yaml;
}

json Job(const std::string& ns, const std::string& name) {
  std::optional<json> job = GetJson({"federatedjob", "-n", ns, name});
  return job.value_or(json());
}

std::string Phase(const std::string& ns, const std::string& name) {
  return Job(ns, name).value("/status/phase"_json_pointer, std::string());
}

class OperatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InstallCrds(); }

  void SetUp() override {
    dir_ = e2e::FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    aggregator_port_ = e2e::FreePort();
    StartTheOperator();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- operator log ---\n" << e2e::ReadFile(operator_->log) << "\n";
    }
  }

  void StartTheOperator(const std::string& kubeconfig = "") {
    if (operator_ != nullptr) operator_->proc.Terminate();
    absl::StatusOr<Operator> op = StartOperator(
        kubeconfig.empty() ? Kubeconfig() : kubeconfig, dir_,
        {absl::StrCat("--aggregator-address-template=127.0.0.1:", aggregator_port_)});
    ASSERT_TRUE(op.ok()) << op.status();
    operator_ = std::make_unique<Operator>(*std::move(op));
  }

  // The job's file for local processes: the applied YAML with local data.
  std::string LocalJobFile(const std::string& yaml) {
    const std::string path = dir_ + "/job.yaml";
    e2e::WriteFile(path, yaml);
    return path;
  }

  // Runs the job's aggregator and one worker per tenant as local processes,
  // the workers reading the example's hospitals' data.
  // The --tls-* flags for the certificate in Secret ns/secret (made by the
  // operator), written to files under the test's directory.
  std::vector<std::string> TlsFlagsFromSecret(const std::string& ns, const std::string& secret) {
    std::optional<json> found;
    EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
      found = GetJson({"secret", "-n", ns, secret});
      return found.has_value();
    })) << "the operator made no Secret " << ns << "/" << secret;
    if (!found.has_value()) return {};
    const std::string dir = dir_ + "/tls-" + ns + "-" + secret;
    fs::create_directories(dir);
    std::vector<std::string> flags;
    for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
             {"--tls-ca=", "ca.crt"}, {"--tls-cert=", "tls.crt"}, {"--tls-key=", "tls.key"}}) {
      absl::StatusOr<std::string> content = op::SecretFile(*found, key);
      EXPECT_TRUE(content.ok()) << content.status();
      e2e::WriteFile(dir + "/" + key, content.value_or(""));
      flags.push_back(flag + dir + "/" + key);
    }
    return flags;
  }

  // Runs the job's aggregator and workers as local processes with the
  // certificates the operator put in the job's Secrets.
  void RunJobLocally(const std::string& job_file, const std::vector<std::string>& tenants) {
    spec::ParseOptions parse;
    parse.check_files = false;
    absl::StatusOr<spec::JobSpec> job = spec::ParseJobFile(job_file, parse);
    ASSERT_TRUE(job.ok()) << job.status();
    const std::string model = dir_ + "/initial.safetensors";
    CommandResult init = RunCommand(
        {e2e::Binary("braid-worker"), "init", "--job=" + job_file, "--out=" + model});
    ASSERT_EQ(init.code, 0) << init.err;
    std::vector<std::string> aggregator_flags =
        TlsFlagsFromSecret(job->namespace_, op::AggregatorTlsSecretName(*job));
    aggregator_flags.push_back("--linger=10m");
    absl::StatusOr<e2e::Aggregator> aggregator =
        e2e::StartAggregator(job_file, dir_, model, aggregator_port_, aggregator_flags);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status();
    aggregator_ = std::make_unique<e2e::Aggregator>(*std::move(aggregator));
    // The operator reaches the aggregator (over mTLS) before any worker
    // joins, so the status can follow the rounds from the first.
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      return absl::StrContains(
          Job(job->namespace_, job->name).value("/status/message"_json_pointer, std::string()),
          "workers joined");
    })) << "the operator never reached the aggregator; status: "
        << Job(job->namespace_, job->name)["status"];
    const char* files[] = {"st-mary.csv", "charite.csv", "karolinska.csv"};
    for (size_t i = 0; i < tenants.size(); ++i) {
      const std::string tenant_ns = GetJson({"tenant", tenants[i]})
                                        .value_or(json())
                                        .value("/spec/namespace"_json_pointer, std::string());
      std::vector<std::string> argv = {
          e2e::Binary("braid-worker"), "run", "--job=" + job_file, "--tenant=" + tenants[i],
          "--replica=0", "--aggregator=" + aggregator_->address(),
          "--data=" + e2e::SourcePath(std::string("examples/data/") + files[i % 3])};
      for (const std::string& flag : TlsFlagsFromSecret(
               tenant_ns, op::WorkerTlsSecretName(*job, tenant_ns, tenants[i]))) {
        argv.push_back(flag);
      }
      // The aggregator's certificate names its Service, not the loopback
      // address the local worker dials.
      argv.push_back("--tls-server-name=" + op::AggregatorServerName(*job));
      absl::StatusOr<cli::Subprocess> worker =
          cli::Subprocess::Start(argv, dir_ + "/worker-" + tenants[i] + ".log");
      ASSERT_TRUE(worker.ok()) << worker.status();
      workers_.push_back(*std::move(worker));
    }
  }

  std::string dir_;
  int aggregator_port_ = 0;
  std::unique_ptr<Operator> operator_;
  std::unique_ptr<e2e::Aggregator> aggregator_;
  std::vector<cli::Subprocess> workers_;
};

TEST_F(OperatorTest, TwoTenantJobCreatesItsObjectsAndFollowsTheRounds) {
  CreateNamespace("fl-research");
  CreateTenant("t1-st-mary", "t1-st-mary", "data");
  CreateTenant("t1-charite", "t1-charite", "data");
  const std::string yaml =
      JobYaml("two-tenants", "fl-research", {{"t1-st-mary"}, {"t1-charite"}}, /*rounds=*/15);
  CommandResult applied = Apply(yaml);
  ASSERT_EQ(applied.code, 0) << applied.err;
  const std::string uid = Job("fl-research", "two-tenants").value("/metadata/uid"_json_pointer, "");
  ASSERT_FALSE(uid.empty());

  // The aggregator's objects in the job's namespace, owned by the job.
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] { return OwnedByJob("deployments", uid).size() == 3; }))
      << "expected the aggregator and one worker Deployment per tenant";
  for (const std::string kind : {"deployment", "service", "configmap", "networkpolicy"}) {
    std::optional<json> obj = GetJson({kind, "-n", "fl-research", "two-tenants-aggregator"});
    if (kind == "configmap") obj = GetJson({kind, "-n", "fl-research", "two-tenants-job"});
    ASSERT_TRUE(obj.has_value()) << kind << " missing in fl-research";
    ASSERT_EQ((*obj)["metadata"]["ownerReferences"].size(), 1u) << kind;
    EXPECT_EQ((*obj)["metadata"]["ownerReferences"][0]["uid"], uid) << kind;
  }
  // Each tenant's workers in its own namespace, mounting only its claim.
  for (const std::string tenant : {"t1-st-mary", "t1-charite"}) {
    std::optional<json> deployment =
        GetJson({"deployment", "-n", tenant, "fl-research-two-tenants-" + tenant + "-0"});
    ASSERT_TRUE(deployment.has_value()) << "no worker Deployment in " << tenant;
    EXPECT_FALSE((*deployment)["metadata"].contains("ownerReferences"));
    const json volumes = (*deployment)["spec"]["template"]["spec"]["volumes"];
    int claims = 0;
    for (const json& v : volumes) {
      if (!v.contains("persistentVolumeClaim")) continue;
      ++claims;
      EXPECT_EQ(v["persistentVolumeClaim"]["claimName"], "data");
      EXPECT_EQ(v["persistentVolumeClaim"]["readOnly"], true);
    }
    EXPECT_EQ(claims, 1);
    std::optional<json> policy =
        GetJson({"networkpolicy", "-n", tenant, "fl-research-two-tenants-workers"});
    ASSERT_TRUE(policy.has_value()) << "no worker NetworkPolicy in " << tenant;
    EXPECT_EQ((*policy)["spec"]["policyTypes"], json({"Ingress", "Egress"}));
    // kwok schedules and "runs" the pods: the Deployment becomes available.
    EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      std::optional<json> d =
          GetJson({"deployment", "-n", tenant, "fl-research-two-tenants-" + tenant + "-0"});
      return d.has_value() && d->value("/status/availableReplicas"_json_pointer, 0) == 1;
    })) << "worker pod in " << tenant << " never became available";
  }
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    return JobCondition(Job("fl-research", "two-tenants"), "AggregatorReady").value("status", "") ==
           "True";
  }));
  EXPECT_EQ(Phase("fl-research", "two-tenants"), "Pending");

  // The aggregator and workers run (here as local processes); the status
  // follows their rounds.
  RunJobLocally(LocalJobFile(yaml), {"t1-st-mary", "t1-charite"});
  std::vector<int> rounds_seen;
  ASSERT_TRUE(WaitUntil(absl::Seconds(120), [&] {
    json job = Job("fl-research", "two-tenants");
    const int round = job.value("/status/round"_json_pointer, 0);
    if (rounds_seen.empty() || rounds_seen.back() != round) rounds_seen.push_back(round);
    return job.value("/status/phase"_json_pointer, std::string()) == "Succeeded";
  })) << "job never Succeeded; last status: " << Job("fl-research", "two-tenants")["status"];
  EXPECT_GE(rounds_seen.size(), 3u) << "the status should have shown rounds advancing; saw "
                                     << absl::StrJoin(rounds_seen, ", ");
  json job = Job("fl-research", "two-tenants");
  EXPECT_EQ(job["status"]["round"], 15);
  EXPECT_EQ(job["status"]["rounds"], 15);
  EXPECT_GT(job.value("/status/metrics/evalAccuracy"_json_pointer, 0.0), 0.3);
  EXPECT_EQ(JobCondition(job, "Complete").value("status", ""), "True");
  EXPECT_EQ(job["status"]["observedGeneration"], job["metadata"]["generation"]);
  for (const json& t : job["status"]["tenants"]) EXPECT_EQ(t.value("lastRound", -1), 15) << t;
  // status.audit is the aggregator's audit log head (kept by the API
  // server: the CRD's structural status schema names it).
  {
    absl::StatusOr<audit::AuditFile> log = audit::ReadAuditLog(dir_ + "/checkpoint/audit.jsonl");
    ASSERT_TRUE(log.ok() && !log->entries.empty()) << log.status();
    const audit::Entry& head = log->entries.back();
    EXPECT_EQ(job.value("/status/audit"_json_pointer, json()),
              (json{{"entries", head.seq}, {"head", head.hash}}));
  }

  // kubectl get fedjobs shows the printer columns.
  CommandResult table = Kubectl({"get", "fedjobs", "-n", "fl-research"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, "PHASE")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "ROUND")) << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, "Succeeded")) << table.out;

  // A finished job's workers are stopped; the aggregator keeps serving.
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    std::optional<json> d =
        GetJson({"deployment", "-n", "t1-charite", "fl-research-two-tenants-t1-charite-0"});
    return d.has_value() && (*d)["spec"]["replicas"] == 0;
  }));
  ASSERT_EQ(Kubectl({"delete", "fedjob", "-n", "fl-research", "two-tenants", "--wait=true"}).code, 0);
}

TEST_F(OperatorTest, DeletingTheJobCleansEveryNamespace) {
  CreateNamespace("fl-delete");
  CreateTenant("t2-a", "t2-a", "data");
  CreateTenant("t2-b", "t2-b", "data");
  ASSERT_EQ(Apply(JobYaml("doomed", "fl-delete", {{"t2-a"}, {"t2-b"}})).code, 0);
  const std::string uid = Job("fl-delete", "doomed").value("/metadata/uid"_json_pointer, "");
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] { return OwnedByJob("deployments", uid).size() == 3; }));
  ASSERT_FALSE(OwnedByJob("configmaps", uid).empty());
  EXPECT_EQ(Job("fl-delete", "doomed")["metadata"]["finalizers"], json({"braid.dev/cleanup"}));

  CommandResult deleted =
      Kubectl({"delete", "fedjob", "-n", "fl-delete", "doomed", "--wait=true", "--timeout=60s"});
  ASSERT_EQ(deleted.code, 0) << deleted.err;
  for (const std::string kind : {"deployments", "services", "configmaps", "networkpolicies"}) {
    EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return OwnedByJob(kind, uid).empty(); }))
        << kind << " of the deleted job remain";
  }
}

TEST_F(OperatorTest, InvalidJobsAreRefusedWithTheFieldNamed) {
  CreateNamespace("fl-invalid");
  // The CRD's schema refuses what it can at admission, naming the field.
  CommandResult refused = Apply(JobYaml("bad-rounds", "fl-invalid", {{"t3-a"}}, /*rounds=*/0));
  EXPECT_NE(refused.code, 0);
  EXPECT_TRUE(absl::StrContains(refused.err, "spec.strategy.rounds")) << refused.err;

  // What only the operator can judge gets a condition and an Event.
  CreateTenant("t3-a", "t3-a", "data");
  ASSERT_EQ(Apply(JobYaml("local-path", "fl-invalid", {{"t3-a", "{path: data/a.csv}"}})).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] { return Phase("fl-invalid", "local-path") == "Failed"; }))
      << Job("fl-invalid", "local-path")["status"];
  json job = Job("fl-invalid", "local-path");
  json tenants_ready = JobCondition(job, "TenantsReady");
  EXPECT_EQ(tenants_ready.value("status", ""), "False");
  EXPECT_EQ(tenants_ready.value("reason", ""), "NeedsClaim");
  EXPECT_TRUE(absl::StrContains(tenants_ready.value("message", ""), "spec.tenants[0].data"));
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    std::optional<json> events = GetJson(
        {"events", "-n", "fl-invalid", "--field-selector", "involvedObject.name=local-path"});
    if (!events.has_value()) return false;
    for (const json& e : (*events)["items"]) {
      if (e.value("type", "") == "Warning" && e.value("reason", "") == "NeedsClaim" &&
          absl::StrContains(e.value("message", ""), "spec.tenants[0].data")) {
        return true;
      }
    }
    return false;
  })) << "no Warning Event naming spec.tenants[0].data";
  EXPECT_FALSE(operator_->proc.Poll().has_value()) << "the operator exited";

  // A job naming a tenant that does not exist yet waits, and goes on once
  // the Tenant is created: level-triggered.
  ASSERT_EQ(Apply(JobYaml("early", "fl-invalid", {{"t3-late"}})).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return JobCondition(Job("fl-invalid", "early"), "TenantsReady").value("reason", "") ==
           "TenantNotFound";
  }));
  EXPECT_EQ(Phase("fl-invalid", "early"), "Pending");
  CreateTenant("t3-late", "t3-late", "data");
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return GetJson({"deployment", "-n", "t3-late", "fl-invalid-early-t3-late-0"}).has_value();
  }));
  Kubectl({"delete", "fedjob", "-n", "fl-invalid", "--all", "--wait=true"});
}

TEST_F(OperatorTest, RestartedOperatorCarriesOn) {
  CreateNamespace("fl-restart");
  CreateTenant("t4-a", "t4-a", "data");
  CreateTenant("t4-b", "t4-b", "data");
  const std::string yaml = JobYaml("survivor", "fl-restart", {{"t4-a"}, {"t4-b"}}, /*rounds=*/30);
  ASSERT_EQ(Apply(yaml).code, 0);
  RunJobLocally(LocalJobFile(yaml), {"t4-a", "t4-b"});
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    return Job("fl-restart", "survivor").value("/status/round"_json_pointer, 0) >= 1;
  }));
  operator_->proc.Signal(SIGKILL);
  operator_->proc.Wait(absl::Seconds(10));
  const int round_when_killed = Job("fl-restart", "survivor").value("/status/round"_json_pointer, 0);
  absl::SleepFor(absl::Seconds(2));
  StartTheOperator();
  ASSERT_TRUE(WaitUntil(absl::Seconds(120), [&] { return Phase("fl-restart", "survivor") == "Succeeded"; }))
      << Job("fl-restart", "survivor")["status"];
  EXPECT_EQ(Job("fl-restart", "survivor")["status"]["round"], 30);
  EXPECT_LT(round_when_killed, 30) << "the job ended before the operator was restarted";
  // Still exactly one set of objects.
  const std::string uid = Job("fl-restart", "survivor")["metadata"]["uid"];
  EXPECT_EQ(OwnedByJob("deployments", uid).size(), 3u);
  Kubectl({"delete", "fedjob", "-n", "fl-restart", "survivor", "--wait=true"});
}

TEST_F(OperatorTest, SurvivesBrokenWatches) {
  // The operator talks to the API server through a proxy that the test cuts.
  std::string kubeconfig = e2e::ReadFile(Kubeconfig());
  const std::string marker = "server: https://127.0.0.1:";
  const size_t at = kubeconfig.find(marker);
  ASSERT_NE(at, std::string::npos) << kubeconfig;
  const size_t port_start = at + marker.size();
  const size_t port_end = kubeconfig.find_first_not_of("0123456789", port_start);
  const int apiserver_port = std::stoi(kubeconfig.substr(port_start, port_end - port_start));
  TcpProxy proxy("127.0.0.1", apiserver_port);
  kubeconfig.replace(port_start, port_end - port_start, std::to_string(proxy.port()));
  const std::string proxied = dir_ + "/proxied.kubeconfig";
  e2e::WriteFile(proxied, kubeconfig);
  StartTheOperator(proxied);

  CreateNamespace("fl-watch");
  CreateTenant("t5-a", "t5-a", "data");
  ASSERT_EQ(Apply(JobYaml("before", "fl-watch", {{"t5-a"}})).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return GetJson({"deployment", "-n", "fl-watch", "before-aggregator"}).has_value();
  }));
  const std::string restarts = "braid_operator_watch_restarts_total{resource=\"federatedjobs\"}";
  const double restarts_before = std::max(0.0, MetricValue(operator_->Metrics(), restarts));

  // Every connection drops and the API server is unreachable for a while;
  // meanwhile a job arrives.
  proxy.SetRefusing(true);
  EXPECT_GT(proxy.CutAll(), 0);
  ASSERT_EQ(Apply(JobYaml("during", "fl-watch", {{"t5-a"}})).code, 0);
  absl::SleepFor(absl::Seconds(3));
  proxy.SetRefusing(false);

  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    return GetJson({"deployment", "-n", "fl-watch", "during-aggregator"}).has_value();
  })) << "the job created while the watch was broken was never reconciled";
  EXPECT_GT(MetricValue(operator_->Metrics(), restarts), restarts_before);
  EXPECT_FALSE(operator_->proc.Poll().has_value()) << "the operator exited";
  Kubectl({"delete", "fedjob", "-n", "fl-watch", "--all", "--wait=true"});
}

}  // namespace
}  // namespace braid::k8s
