// The fixture of the multi-site tests (multisite_test.cc,
// multisite_resilience_test.cc): a coordinator and two sites on three real
// control planes (multisite_harness.h), each site's operator enrolled with
// the token its Site's Secret holds, jobs applied at the coordinator, and
// the job's aggregator and the sites' workers run as local processes
// standing in for their pods.
#ifndef BRAID_TESTS_MULTISITE_MULTISITE_FIXTURE_H_
#define BRAID_TESTS_MULTISITE_MULTISITE_FIXTURE_H_

#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"
#include "tests/multisite/multisite_harness.h"

namespace braid::multisite {

struct Site {
  std::string name;  // Site object at the coordinator, Tenant at the site
  std::string csv;   // examples/data/<csv>
  Cluster cluster;
  std::string ns;    // the Tenant's namespace at the site
  std::string dir;
  std::vector<std::string> flags;  // the site operator's, without the token
  std::unique_ptr<k8s::Operator> op;
  std::vector<cli::Subprocess> workers;  // standing in for its worker pods
};

struct JobShape {
  int rounds = 3;
  std::string hidden = "[8]";
};

class MultiSiteFixture : public ::testing::Test {
 protected:
  using CommandResult = k8s::CommandResult;
  using json = nlohmann::json;

  // Jobs go to namespace `job_ns` of the coordinator; `name` names the
  // test's directory.
  MultiSiteFixture(std::string job_ns, std::string name)
      : job_ns_(std::move(job_ns)), name_(std::move(name)) {}

  void SetUp() override {
    dir_ = e2e::FreshDir(name_);
    coordinator_ = CoordinatorCluster();
    sites_.push_back({"st-mary", "st-mary.csv", SiteCluster(0), "tenant-st-mary"});
    sites_.push_back({"charite", "charite.csv", SiteCluster(1), "tenant-charite"});
    ASSERT_FALSE(coordinator_.kubeconfig.empty());
    for (const Site& s : sites_) ASSERT_FALSE(s.cluster.kubeconfig.empty());
    ASSERT_NO_FATAL_FAILURE(coordinator_.Prepare());
    for (const Site& s : sites_) ASSERT_NO_FATAL_FAILURE(s.cluster.Prepare());
    // A fresh start: no Sites, enrollments or site identities of an
    // earlier test.
    coordinator_.Kubectl({"delete", "sites", "--all"});
    coordinator_.Kubectl({"delete", "secret", "-n", "braid-system", "-l", "braid.dev/site"});
    coordinator_.Apply(
        absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata: {name: ", job_ns_, "}\n"));
    for (Site& s : sites_) {
      s.cluster.Kubectl({"delete", "secret", "-n", "braid-system", "braid-site-identity",
                         "--ignore-not-found"});
      s.cluster.Kubectl({"delete", "fedinv", "--all", "-A"});
      s.cluster.Kubectl({"delete", "tenantapprovals", "--all", "-A"});
      s.dir = dir_ + "/" + s.name;
      std::filesystem::create_directories(s.dir);
    }
    aggregator_port_ = e2e::FreePort();
  }

  void TearDown() override {
    for (Site& s : sites_) {
      for (cli::Subprocess& w : s.workers) w.Signal(SIGTERM);
    }
    if (aggregator_) aggregator_->proc.Signal(SIGTERM);
    for (Site& s : sites_) {
      if (s.op) s.op->proc.Signal(SIGTERM);
    }
    if (coordinator_op_) coordinator_op_->proc.Signal(SIGTERM);
  }

  std::string AggregatorAddress() const { return absl::StrCat("127.0.0.1:", aggregator_port_); }

  // The coordinator's operator, with `extra_flags`; sites' workers are told
  // to dial `site_aggregator_address` (default: the aggregator itself).
  void StartCoordinator(const std::string& site_aggregator_address = "",
                        const std::vector<std::string>& extra_flags = {}) {
    std::filesystem::create_directories(dir_ + "/coordinator");
    std::vector<std::string> flags = {
        "--role=coordinator", "--federation-listen=127.0.0.1:0", "--federation-keepalive=2s",
        "--federation-port-file=" + dir_ + "/federation.port",
        "--site-aggregator-address-template=" +
            (site_aggregator_address.empty() ? AggregatorAddress() : site_aggregator_address),
        "--aggregator-address-template=" + AggregatorAddress()};
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    absl::StatusOr<k8s::Operator> op =
        k8s::StartOperator(coordinator_.kubeconfig, dir_ + "/coordinator", flags);
    ASSERT_TRUE(op.ok()) << op.status();
    coordinator_op_ = std::make_unique<k8s::Operator>(*std::move(op));
    ASSERT_TRUE(k8s::WaitUntil(absl::Seconds(30), [&] {
      return !e2e::ReadFile(dir_ + "/federation.port").empty();
    })) << e2e::ReadFile(coordinator_op_->log);
    federation_port_ = std::atoi(e2e::ReadFile(dir_ + "/federation.port").c_str());
    CommandResult deleted =
        coordinator_.Kubectl({"delete", "fedjob", "-n", job_ns_, "--all", "--wait=true"});
    ASSERT_EQ(deleted.code, 0) << deleted.err;
  }

  // The Site at the coordinator and the site's operator, enrolled with the
  // token the coordinator made; it dials `coordinator_port` (default: the
  // federation endpoint itself).
  void EnrollSite(Site& s, const json& policy, int coordinator_port = 0) {
    ASSERT_NO_FATAL_FAILURE(CreateSiteTenant(s.cluster, s.name, s.ns, "records", s.csv, policy));
    CommandResult r = coordinator_.Apply(absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: Site\nmetadata: {name: ", s.name,
        "}\nspec: {description: test site}\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    std::string token;
    ASSERT_TRUE(k8s::WaitUntil(absl::Seconds(30), [&] {
      token = coordinator_.SecretValue("braid-system", "braid-enrollment-" + s.name, "token");
      return !token.empty();
    })) << "no enrollment Secret for " << s.name << "\n" << e2e::ReadFile(coordinator_op_->log);
    std::optional<json> ca =
        coordinator_.Get({"configmap", "-n", "braid-system", "braid-federation-ca"});
    ASSERT_TRUE(ca.has_value());
    // Reconnects at most 4 s apart, so the site is back soon after a cut.
    s.flags = {"--role=site", "--site-name=" + s.name, "--coordinator-reconnect-max=4s",
               absl::StrCat("--coordinator-address=127.0.0.1:",
                            coordinator_port > 0 ? coordinator_port : federation_port_),
               "--coordinator-ca-file=" +
                   WriteText(s.dir + "/federation-ca.crt", (*ca)["data"]["ca.crt"])};
    std::vector<std::string> flags = s.flags;
    flags.push_back("--enrollment-token-file=" + WriteText(s.dir + "/token", token));
    absl::StatusOr<k8s::Operator> op = k8s::StartOperator(s.cluster.kubeconfig, s.dir, flags);
    ASSERT_TRUE(op.ok()) << op.status();
    s.op = std::make_unique<k8s::Operator>(*std::move(op));
    ASSERT_TRUE(k8s::WaitUntil(absl::Seconds(60), [&] { return SitePhase(s.name) == "Connected"; }))
        << s.name << " never connected; its log:\n" << e2e::ReadFile(s.op->log);
  }

  json SiteObject(const std::string& site) {
    return coordinator_.Get({"site", site}).value_or(json::object());
  }
  std::string SitePhase(const std::string& site) {
    return SiteObject(site).value("/status/phase"_json_pointer, std::string());
  }

  std::string JobYaml(const std::string& name, const JobShape& shape) const {
    return absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: ", name,
        ", namespace: ", job_ns_, "}\n",
        "spec:\n"
        "  model: {kind: mlp, mlp: {hidden: ", shape.hidden, ", numClasses: 4}}\n"
        "  data: {features: [x0, x1], label: label}\n"
        "  strategy: {rounds: ", shape.rounds,
        ", minClients: 1, minTenants: 1, roundTimeout: 1m}\n",
        "  tenants:\n"
        "  - {name: st-mary, site: st-mary, dataset: records}\n"
        "  - {name: charite, site: charite, dataset: records}\n");
  }

  json Job(const std::string& name) {
    return coordinator_.Get({"fedjob", "-n", job_ns_, name}).value_or(json::object());
  }
  std::string JobPhase(const std::string& name) {
    return Job(name).value("/status/phase"_json_pointer, std::string());
  }
  json TenantStatus(const json& job, const std::string& tenant) {
    for (const json& t : job.value("/status/tenants"_json_pointer, json::array())) {
      if (t.value("name", "") == tenant) return t;
    }
    return json::object();
  }
  // The site's invitation to job `job` (named after it), {} when none.
  json Invitation(const Site& s, const std::string& job) {
    return s.cluster.Get({"fedinv", "-n", s.ns, absl::StrCat(job_ns_, "-", job)})
        .value_or(json::object());
  }
  std::string InvitationPhase(const Site& s, const std::string& job) {
    return Invitation(s, job).value("/status/phase"_json_pointer, std::string());
  }

  void Decide(const Site& s, const std::string& job, const std::string& decision) {
    CommandResult r = s.cluster.Apply(absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\nmetadata: {name: ", job,
        ", namespace: ", s.ns, "}\nspec:\n  tenant: ", s.name, "\n  job: {namespace: ", job_ns_,
        ", name: ", job, "}\n  decision: ", decision, "\n"));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  // Applies the job, waits until every site runs its workers, then starts
  // the job's aggregator (in `dir`) and the workers as local processes.
  // Returns the job's uid in `uid`.
  void RunJob(const std::string& name, const JobShape& shape, const std::string& dir,
              std::string* uid) {
    ASSERT_EQ(coordinator_.Apply(JobYaml(name, shape)).code, 0);
    *uid = Job(name).value("/metadata/uid"_json_pointer, std::string());
    ASSERT_FALSE(uid->empty());
    for (const Site& s : sites_) {
      ASSERT_TRUE(
          k8s::WaitUntil(absl::Seconds(60), [&] { return InvitationPhase(s, name) == "Running"; }))
          << s.name << ": " << InvitationPhase(s, name) << "\n" << e2e::ReadFile(s.op->log);
    }
    ASSERT_NO_FATAL_FAILURE(StartAggregator(name, dir));
    for (Site& s : sites_) ASSERT_NO_FATAL_FAILURE(StartWorkers(s, *uid, dir));
  }

  // The site's workers of job `uid` as local processes (their files in
  // `dir`/<site>), from its worker Deployments.
  void StartWorkers(Site& s, const std::string& uid, const std::string& dir) {
    absl::StatusOr<std::vector<cli::Subprocess>> started = StartSiteWorkers(
        s.cluster, s.ns, uid, e2e::SourcePath("examples/data/" + s.csv), dir + "/" + s.name);
    ASSERT_TRUE(started.ok()) << started.status();
    for (cli::Subprocess& w : *started) s.workers.push_back(std::move(w));
  }

  // The job's aggregator as a local process with the certificate the
  // coordinator made for it, trusting the federation CA for the sites.
  void StartAggregator(const std::string& job_name, const std::string& dir) {
    std::filesystem::create_directories(dir);
    std::optional<json> cm;
    ASSERT_TRUE(k8s::WaitUntil(absl::Seconds(60), [&] {
      cm = coordinator_.Get({"configmap", "-n", job_ns_, job_name + "-job"});
      return cm.has_value();
    })) << "the coordinator made no job ConfigMap";
    const std::string job_file = WriteText(dir + "/job.yaml", (*cm)["data"]["job.yaml"]);
    const std::string tls_secret = job_name + "-aggregator-tls";
    std::vector<std::string> flags = {"--linger=10m"};
    for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
             {"--tls-ca=", "ca.crt"}, {"--tls-cert=", "tls.crt"}, {"--tls-key=", "tls.key"}}) {
      const std::string value = coordinator_.SecretValue(job_ns_, tls_secret, key);
      ASSERT_FALSE(value.empty()) << tls_secret << " has no " << key;
      flags.push_back(flag + WriteText(dir + "/aggregator-" + key, value));
    }
    flags.push_back("--tls-client-ca-extra=" +
                    WriteText(dir + "/federation-ca.crt",
                              coordinator_.SecretValue(job_ns_, job_name + "-federation-ca",
                                                       "ca.crt")));
    site_admission_ = dir + "/sites.json";
    ASSERT_TRUE((*cm)["data"].contains("sites.json")) << (*cm)["data"].dump();
    ASSERT_NO_FATAL_FAILURE(SyncSiteAdmission(job_name));
    flags.push_back("--site-admission=" + site_admission_);
    CommandResult init = k8s::RunCommand({e2e::Binary("braid-worker"), "init", "--job=" + job_file,
                                          "--out=" + dir + "/init.safetensors"});
    ASSERT_EQ(init.code, 0) << init.err;
    absl::StatusOr<e2e::Aggregator> aggregator = e2e::StartAggregator(
        job_file, dir, dir + "/init.safetensors", aggregator_port_, flags);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status();
    aggregator_ = std::make_unique<e2e::Aggregator>(*std::move(aggregator));
    audit_ = dir + "/checkpoint/audit.jsonl";
  }

  // What the kubelet does for the aggregator's pod: the sites.json of the
  // job's ConfigMap as it is now, written over the aggregator's copy as a
  // new file (a ConfigMap volume's update is an atomic rename too). Returns
  // the list.
  json SyncSiteAdmission(const std::string& job_name) {
    std::optional<json> cm = coordinator_.Get({"configmap", "-n", job_ns_, job_name + "-job"});
    EXPECT_TRUE(cm.has_value());
    if (!cm.has_value()) return json();
    const std::string text = (*cm)["data"].value("sites.json", "");
    WriteText(site_admission_ + ".new", text);
    std::filesystem::rename(site_admission_ + ".new", site_admission_);
    return json::parse(text, nullptr, false);
  }

  std::vector<CompletedRound> Rounds() const { return CompletedRounds(audit_); }
  int RoundsDone() const { return static_cast<int>(Rounds().size()); }

  // Waits until `name` Succeeded, showing why not when it did not.
  void ExpectSucceeded(const std::string& name, absl::Duration timeout) {
    EXPECT_TRUE(k8s::WaitUntil(timeout, [&] { return JobPhase(name) == "Succeeded"; }))
        << Job(name)["status"].dump() << "\naggregator:\n"
        << e2e::ReadFile(std::filesystem::path(audit_).parent_path().parent_path().string() +
                         "/aggregator.log");
  }

  const std::string job_ns_;
  const std::string name_;
  std::string dir_;
  Cluster coordinator_;
  std::vector<Site> sites_;
  int aggregator_port_ = 0;
  int federation_port_ = 0;
  std::unique_ptr<k8s::Operator> coordinator_op_;
  std::unique_ptr<e2e::Aggregator> aggregator_;
  std::string audit_;
  std::string site_admission_;  // the aggregator's --site-admission file
};

}  // namespace braid::multisite

#endif  // BRAID_TESTS_MULTISITE_MULTISITE_FIXTURE_H_
