// Multi-site federation on three real control planes (multisite_harness.h):
// a coordinator and two sites, each with its own braid-operator in its role.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"
#include "tests/multisite/multisite_harness.h"

namespace braid::multisite {
namespace {

namespace fs = std::filesystem;
using k8s::CommandResult;
using k8s::WaitUntil;
using nlohmann::json;

constexpr char kJobNs[] = "fl-consortium";

std::string ProcFile(int pid, const char* name) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", name), std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct SiteUnderTest {
  std::string name;      // Site object at the coordinator, Tenant at the site
  std::string csv;       // examples/data/<csv>
  Cluster cluster;
  std::string ns;        // the Tenant's namespace at the site
  std::unique_ptr<k8s::Operator> op;
};

class MultiSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = e2e::FreshDir("multisite");
    coordinator_ = CoordinatorCluster();
    sites_.push_back({"st-mary", "st-mary.csv", SiteCluster(0), "tenant-st-mary", nullptr});
    sites_.push_back({"charite", "charite.csv", SiteCluster(1), "tenant-charite", nullptr});
    ASSERT_FALSE(coordinator_.kubeconfig.empty());
    for (const SiteUnderTest& s : sites_) ASSERT_FALSE(s.cluster.kubeconfig.empty());
    ASSERT_NO_FATAL_FAILURE(coordinator_.Prepare());
    for (const SiteUnderTest& s : sites_) ASSERT_NO_FATAL_FAILURE(s.cluster.Prepare());

    // A fresh start: no job, Sites or enrollment left by an earlier test,
    // no site identity (each test enrolls anew).
    coordinator_.Kubectl({"delete", "sites", "--all"});
    coordinator_.Kubectl({"delete", "secret", "-n", "braid-system", "-l", "braid.dev/site"});
    coordinator_.Apply(absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata: {name: ", kJobNs,
                                    "}\n"));
    for (const SiteUnderTest& s : sites_) {
      s.cluster.Kubectl({"delete", "secret", "-n", "braid-system", "braid-site-identity",
                         "--ignore-not-found"});
      s.cluster.Kubectl({"delete", "fedinv", "--all", "-A"});
      s.cluster.Kubectl({"delete", "tenantapprovals", "--all", "-A"});
    }

    aggregator_port_ = e2e::FreePort();
    fs::create_directories(dir_ + "/coordinator");
    absl::StatusOr<k8s::Operator> op = k8s::StartOperator(
        coordinator_.kubeconfig, dir_ + "/coordinator",
        {"--role=coordinator", "--federation-listen=127.0.0.1:0", "--federation-keepalive=2s",
         "--federation-port-file=" + dir_ + "/federation.port",
         "--site-aggregator-address-template=" + AggregatorAddress(),
         "--aggregator-address-template=" + AggregatorAddress()});
    ASSERT_TRUE(op.ok()) << op.status();
    coordinator_op_ = std::make_unique<k8s::Operator>(*std::move(op));
    ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
      return !e2e::ReadFile(dir_ + "/federation.port").empty();
    })) << e2e::ReadFile(coordinator_op_->log);
    federation_port_ = std::atoi(e2e::ReadFile(dir_ + "/federation.port").c_str());
    // Jobs of an earlier test go now that an operator removes their finalizer.
    CommandResult deleted =
        coordinator_.Kubectl({"delete", "fedjob", "-n", kJobNs, "--all", "--wait=true"});
    ASSERT_EQ(deleted.code, 0) << deleted.err;
  }

  void TearDown() override {
    for (cli::Subprocess& w : workers_) w.Signal(SIGTERM);
    if (aggregator_) aggregator_->proc.Signal(SIGTERM);
    for (SiteUnderTest& s : sites_) {
      if (s.op) s.op->proc.Signal(SIGTERM);
    }
    if (coordinator_op_) coordinator_op_->proc.Signal(SIGTERM);
  }

  std::string AggregatorAddress() const { return absl::StrCat("127.0.0.1:", aggregator_port_); }

  // The Site object at the coordinator, its token taken from the Secret the
  // coordinator made, and the site's operator started with it.
  void EnrollSite(SiteUnderTest& s, const json& policy) {
    ASSERT_NO_FATAL_FAILURE(CreateSiteTenant(s.cluster, s.name, s.ns, "records", s.csv, policy));
    CommandResult r = coordinator_.Apply(absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: Site\nmetadata: {name: ", s.name,
        "}\nspec: {description: test site}\n"));
    ASSERT_EQ(r.code, 0) << r.err;
    std::string token;
    ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
      token = coordinator_.SecretValue("braid-system", "braid-enrollment-" + s.name, "token");
      return !token.empty();
    })) << "no enrollment Secret for " << s.name << "\n" << e2e::ReadFile(coordinator_op_->log);
    std::optional<json> ca = coordinator_.Get({"configmap", "-n", "braid-system", "braid-federation-ca"});
    ASSERT_TRUE(ca.has_value());
    const std::string site_dir = dir_ + "/" + s.name;
    fs::create_directories(site_dir);
    absl::StatusOr<k8s::Operator> op = k8s::StartOperator(
        s.cluster.kubeconfig, site_dir,
        {"--role=site", "--site-name=" + s.name,
         absl::StrCat("--coordinator-address=127.0.0.1:", federation_port_),
         "--coordinator-ca-file=" + WriteText(site_dir + "/federation-ca.crt", (*ca)["data"]["ca.crt"]),
         "--enrollment-token-file=" + WriteText(site_dir + "/token", token)});
    ASSERT_TRUE(op.ok()) << op.status();
    s.op = std::make_unique<k8s::Operator>(*std::move(op));
  }

  std::string SitePhase(const std::string& site) {
    return coordinator_.Get({"site", site})
        .value_or(json())
        .value("/status/phase"_json_pointer, std::string());
  }

  std::string JobYaml(const std::string& name) const {
    return absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: ", name,
        ", namespace: ", kJobNs, "}\n",
        "spec:\n"
        "  model: {kind: mlp, mlp: {hidden: [8], numClasses: 4}}\n"
        "  data: {features: [x0, x1], label: label}\n"
        "  strategy: {rounds: 3, minClients: 1, minTenants: 1, roundTimeout: 1m}\n"
        "  tenants:\n"
        "  - {name: st-mary, site: st-mary, dataset: records}\n"
        "  - {name: charite, site: charite, dataset: records}\n");
  }

  json Job(const std::string& name) {
    return coordinator_.Get({"fedjob", "-n", kJobNs, name}).value_or(json::object());
  }

  json TenantStatus(const json& job, const std::string& tenant) {
    for (const json& t : job.value("/status/tenants"_json_pointer, json::array())) {
      if (t.value("name", "") == tenant) return t;
    }
    return json::object();
  }

  json Invitation(const SiteUnderTest& s) {
    std::optional<json> list = s.cluster.Get({"fedinv", "-n", s.ns});
    if (!list.has_value() || (*list)["items"].empty()) return json::object();
    return (*list)["items"][0];
  }

  void Approve(const SiteUnderTest& s, const std::string& job, const std::string& decision) {
    CommandResult r = s.cluster.Apply(absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\nmetadata: {name: ", job,
        ", namespace: ", s.ns, "}\nspec:\n  tenant: ", s.name, "\n  job: {namespace: ", kJobNs,
        ", name: ", job, "}\n  decision: ", decision, "\n"));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  // The job's aggregator as a local process with the certificate the
  // coordinator made for it, trusting the federation CA for the sites.
  void StartAggregator(const std::string& job_name) {
    std::string job_file = WriteText(dir_ + "/job.yaml", "");
    std::optional<json> cm;
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      cm = coordinator_.Get({"configmap", "-n", kJobNs, job_name + "-job"});
      return cm.has_value();
    })) << "the coordinator made no job ConfigMap";
    WriteText(job_file, (*cm)["data"]["job.yaml"]);
    const std::string tls_secret = job_name + "-aggregator-tls";
    std::vector<std::string> flags = {"--linger=10m"};
    for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
             {"--tls-ca=", "ca.crt"}, {"--tls-cert=", "tls.crt"}, {"--tls-key=", "tls.key"}}) {
      const std::string value = coordinator_.SecretValue(kJobNs, tls_secret, key);
      ASSERT_FALSE(value.empty()) << tls_secret << " has no " << key;
      flags.push_back(flag + WriteText(dir_ + "/aggregator-" + key, value));
    }
    flags.push_back("--tls-client-ca-extra=" +
                    WriteText(dir_ + "/federation-ca.crt",
                              coordinator_.SecretValue(kJobNs, job_name + "-federation-ca", "ca.crt")));
    CommandResult init = k8s::RunCommand(
        {e2e::Binary("braid-worker"), "init", "--job=" + job_file, "--out=" + dir_ + "/init.safetensors"});
    ASSERT_EQ(init.code, 0) << init.err;
    absl::StatusOr<e2e::Aggregator> aggregator = e2e::StartAggregator(
        job_file, dir_, dir_ + "/init.safetensors", aggregator_port_, flags);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status();
    aggregator_ = std::make_unique<e2e::Aggregator>(*std::move(aggregator));
  }

  void StartWorkersAt(const SiteUnderTest& s, const std::string& uid) {
    absl::StatusOr<std::vector<cli::Subprocess>> started = StartSiteWorkers(
        s.cluster, s.ns, uid, e2e::SourcePath("examples/data/" + s.csv), dir_ + "/" + s.name);
    ASSERT_TRUE(started.ok()) << started.status();
    for (cli::Subprocess& w : *started) workers_.push_back(std::move(w));
  }

  std::string dir_;
  Cluster coordinator_;
  std::vector<SiteUnderTest> sites_;
  int aggregator_port_ = 0;
  int federation_port_ = 0;
  std::unique_ptr<k8s::Operator> coordinator_op_;
  std::unique_ptr<e2e::Aggregator> aggregator_;
  std::vector<cli::Subprocess> workers_;
};

TEST_F(MultiSiteTest, TwoSitesApproveAndRunAJobToSucceeded) {
  const json require_approval = {{"requireApproval", true}};
  for (SiteUnderTest& s : sites_) ASSERT_NO_FATAL_FAILURE(EnrollSite(s, require_approval));
  for (const SiteUnderTest& s : sites_) {
    EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase(s.name) == "Connected"; }))
        << s.name << " never connected; its log:\n" << e2e::ReadFile(s.op->log);
    // The token was spent: its Secret is gone, the Site says when.
    EXPECT_TRUE(coordinator_.SecretValue("braid-system", "braid-enrollment-" + s.name, "token").empty());
    EXPECT_FALSE(coordinator_.Get({"site", s.name})
                     .value_or(json())
                     .value("/status/enrolledAt"_json_pointer, std::string())
                     .empty());
  }
  // The coordinator process holds no credential for any site's cluster.
  for (const std::string& file : {std::string("cmdline"), std::string("environ")}) {
    const std::string text = ProcFile(coordinator_op_->proc.pid(), file.c_str());
    for (const SiteUnderTest& s : sites_) {
      EXPECT_FALSE(absl::StrContains(text, s.cluster.kubeconfig)) << file;
      EXPECT_FALSE(absl::StrContains(text, fs::path(s.cluster.kubeconfig).parent_path().string()))
          << file;
    }
  }

  ASSERT_EQ(coordinator_.Apply(JobYaml("two-sites")).code, 0);
  const std::string uid = Job("two-sites").value("/metadata/uid"_json_pointer, std::string());
  ASSERT_FALSE(uid.empty());
  // Each site shows what the job asks for and waits for its own approval.
  for (const SiteUnderTest& s : sites_) {
    json inv;
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      inv = Invitation(s);
      return inv.value("/status/phase"_json_pointer, std::string()) == "AwaitingApproval";
    })) << s.name << ": " << inv.dump() << "\n" << e2e::ReadFile(s.op->log);
    EXPECT_EQ(inv["spec"]["jobUid"], uid);
    EXPECT_EQ(inv["spec"]["model"]["kind"], "mlp");
    EXPECT_EQ(inv["spec"]["rounds"], 3);
    EXPECT_EQ(inv["spec"]["dataset"], "records");
    EXPECT_TRUE(s.cluster.Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid})
                    .value_or(json())
                    .value("items", json::array())
                    .empty())
        << "workers before approval at " << s.name;
  }
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return TenantStatus(Job("two-sites"), "charite").value("phase", "") == "AwaitingApproval";
  })) << Job("two-sites")["status"].dump();

  for (const SiteUnderTest& s : sites_) ASSERT_NO_FATAL_FAILURE(Approve(s, "two-sites", "Approved"));
  for (const SiteUnderTest& s : sites_) {
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      return Invitation(s).value("/status/phase"_json_pointer, std::string()) == "Running";
    })) << s.name << ": " << Invitation(s).dump() << "\n" << e2e::ReadFile(s.op->log);
    // The workers mount the claim the site's Tenant maps the dataset to;
    // the coordinator never named it.
    std::optional<json> d = s.cluster.Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid});
    ASSERT_TRUE(d.has_value() && (*d)["items"].size() == 1u);
    bool claim = false;
    for (const json& v : (*d)["items"][0]["spec"]["template"]["spec"]["volumes"]) {
      claim |= v.value("/persistentVolumeClaim/claimName"_json_pointer, std::string()) == "data";
    }
    EXPECT_TRUE(claim);
  }
  EXPECT_FALSE(absl::StrContains(Job("two-sites").dump(), "claimName"));

  ASSERT_NO_FATAL_FAILURE(StartAggregator("two-sites"));
  for (const SiteUnderTest& s : sites_) ASSERT_NO_FATAL_FAILURE(StartWorkersAt(s, uid));
  ASSERT_TRUE(WaitUntil(absl::Seconds(120), [&] {
    return Job("two-sites").value("/status/phase"_json_pointer, std::string()) == "Succeeded";
  })) << Job("two-sites")["status"].dump() << "\naggregator:\n" << e2e::ReadFile(dir_ + "/aggregator.log");
  const json job = Job("two-sites");
  EXPECT_EQ(job["status"]["round"], 3);
  for (const SiteUnderTest& s : sites_) {
    const json t = TenantStatus(job, s.name);
    EXPECT_EQ(t.value("site", ""), s.name) << t;
    EXPECT_EQ(t.value("lastRound", -1), 3) << t;  // both sites took part in every round
  }
  // The job ended: the sites withdraw their workers.
  for (const SiteUnderTest& s : sites_) {
    EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      return Invitation(s).value("/status/phase"_json_pointer, std::string()) == "Withdrawn" &&
             s.cluster.Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid})
                 .value_or(json())
                 .value("items", json::array())
                 .empty();
    })) << s.name << ": " << Invitation(s).dump();
  }
}

TEST_F(MultiSiteTest, ASitesOwnPolicyRefusesWhatTheCoordinatorAccepted) {
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[0], json::object()));
  // charite allows only llama: the MLP job is refused there, by charite.
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[1], {{"allowedModels", {"llama"}}}));
  ASSERT_EQ(coordinator_.Apply(JobYaml("policy")).code, 0);
  json inv;
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    inv = Invitation(sites_[1]);
    return inv.value("/status/phase"_json_pointer, std::string()) == "Refused";
  })) << inv.dump() << "\n" << e2e::ReadFile(sites_[1].op->log);
  EXPECT_EQ(inv["status"]["reason"], "ModelNotAllowed");
  EXPECT_TRUE(absl::StrContains(inv["status"].value("message", ""), "spec.model.kind"))
      << inv["status"];
  // The coordinator sees charite's refusal; st-mary (no approval needed) runs.
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    const json job = Job("policy");
    return TenantStatus(job, "charite").value("phase", "") == "Refused" &&
           Invitation(sites_[0]).value("/status/phase"_json_pointer, std::string()) == "Running";
  })) << Job("policy")["status"].dump();
  EXPECT_TRUE(sites_[1].cluster.Get({"deployments", "-n", sites_[1].ns})
                  .value_or(json())
                  .value("items", json::array())
                  .empty());
}

TEST_F(MultiSiteTest, ARevokedSiteIsRefusedAtItsNextCall) {
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[0], json::object()));
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase("st-mary") == "Connected"; }))
      << e2e::ReadFile(sites_[0].op->log);
  CommandResult r = coordinator_.Kubectl(
      {"patch", "site", "st-mary", "--type=merge", "-p", R"({"spec":{"revoked":true}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase("st-mary") == "Revoked"; }));
  // Its stream ends and it cannot come back: the site's log says why.
  EXPECT_TRUE(WaitUntil(absl::Seconds(90), [&] {
    return absl::StrContains(e2e::ReadFile(sites_[0].op->log), "PERMISSION_DENIED") ||
           absl::StrContains(e2e::ReadFile(sites_[0].op->log), "not a member");
  })) << e2e::ReadFile(sites_[0].op->log);
  // A job naming it is refused at the coordinator.
  ASSERT_EQ(coordinator_.Apply(JobYaml("revoked")).code, 0);
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return k8s::JobCondition(Job("revoked"), "TenantsReady").value("reason", "") == "SiteRevoked";
  })) << Job("revoked")["status"].dump();
}

}  // namespace
}  // namespace braid::multisite
