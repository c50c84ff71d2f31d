// Multi-site federation when things go wrong, on three real control planes
// (multisite_harness.h): a site refusing a running job, its operator killed,
// its link to the coordinator cut for 30 s, and links shaped like a WAN.
// The aggregator and the workers run as local processes standing in for
// the pods; the aggregator's audit log says which tenants took part in
// which round, and when.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"
#include "tests/k8s/tcp_proxy.h"
#include "tests/multisite/multisite_harness.h"

namespace braid::multisite {
namespace {

namespace fs = std::filesystem;
using k8s::CommandResult;
using k8s::TcpProxy;
using k8s::WaitUntil;
using nlohmann::json;

constexpr char kJobNs[] = "fl-resilience";

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

// A job still running when the test breaks something, whatever the
// machine's load: an MLP of about 67k parameters (each worker downloads
// 540 kB and uploads 270 kB per round) whose workers reach the aggregator
// through a proxy passing 250 kB/s per direction, so each round takes
// about 3.5 s on the wire. Only the pace: the links the tests break are
// others.
constexpr k8s::LinkShape kPacedLink{absl::ZeroDuration(), 250 * 1000};
JobShape PacedJob(int rounds) { return JobShape{rounds, "[256, 256]"}; }

class MultiSiteResilienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = e2e::FreshDir("multisite-resilience");
    coordinator_ = CoordinatorCluster();
    sites_.push_back({"st-mary", "st-mary.csv", SiteCluster(0), "tenant-st-mary"});
    sites_.push_back({"charite", "charite.csv", SiteCluster(1), "tenant-charite"});
    ASSERT_FALSE(coordinator_.kubeconfig.empty());
    for (const Site& s : sites_) ASSERT_FALSE(s.cluster.kubeconfig.empty());
    ASSERT_NO_FATAL_FAILURE(coordinator_.Prepare());
    for (const Site& s : sites_) ASSERT_NO_FATAL_FAILURE(s.cluster.Prepare());
    // A fresh start, as in multisite_test.cc: no Sites, enrollments or
    // site identities of an earlier test.
    coordinator_.Kubectl({"delete", "sites", "--all"});
    coordinator_.Kubectl({"delete", "secret", "-n", "braid-system", "-l", "braid.dev/site"});
    coordinator_.Apply(
        absl::StrCat("apiVersion: v1\nkind: Namespace\nmetadata: {name: ", kJobNs, "}\n"));
    for (Site& s : sites_) {
      s.cluster.Kubectl({"delete", "secret", "-n", "braid-system", "braid-site-identity",
                         "--ignore-not-found"});
      s.cluster.Kubectl({"delete", "fedinv", "--all", "-A"});
      s.cluster.Kubectl({"delete", "tenantapprovals", "--all", "-A"});
      s.dir = dir_ + "/" + s.name;
      fs::create_directories(s.dir);
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

  // The coordinator's operator; sites' workers are told to dial
  // `site_aggregator_address` (default: the aggregator itself).
  void StartCoordinator(const std::string& site_aggregator_address = "") {
    fs::create_directories(dir_ + "/coordinator");
    absl::StatusOr<k8s::Operator> op = k8s::StartOperator(
        coordinator_.kubeconfig, dir_ + "/coordinator",
        {"--role=coordinator", "--federation-listen=127.0.0.1:0", "--federation-keepalive=2s",
         "--federation-port-file=" + dir_ + "/federation.port",
         "--site-aggregator-address-template=" +
             (site_aggregator_address.empty() ? AggregatorAddress() : site_aggregator_address),
         "--aggregator-address-template=" + AggregatorAddress()});
    ASSERT_TRUE(op.ok()) << op.status();
    coordinator_op_ = std::make_unique<k8s::Operator>(*std::move(op));
    ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
      return !e2e::ReadFile(dir_ + "/federation.port").empty();
    })) << e2e::ReadFile(coordinator_op_->log);
    federation_port_ = std::atoi(e2e::ReadFile(dir_ + "/federation.port").c_str());
    CommandResult deleted =
        coordinator_.Kubectl({"delete", "fedjob", "-n", kJobNs, "--all", "--wait=true"});
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
    ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
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
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase(s.name) == "Connected"; }))
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
        ", namespace: ", kJobNs, "}\n",
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
    return coordinator_.Get({"fedjob", "-n", kJobNs, name}).value_or(json::object());
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
  // The phase of the site's invitation to job `job` (named after it).
  std::string InvitationPhase(const Site& s, const std::string& job) {
    return s.cluster.Get({"fedinv", "-n", s.ns, absl::StrCat(kJobNs, "-", job)})
        .value_or(json::object())
        .value("/status/phase"_json_pointer, std::string());
  }

  void Decide(const Site& s, const std::string& job, const std::string& decision) {
    CommandResult r = s.cluster.Apply(absl::StrCat(
        "apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\nmetadata: {name: ", job,
        ", namespace: ", s.ns, "}\nspec:\n  tenant: ", s.name, "\n  job: {namespace: ", kJobNs,
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
          WaitUntil(absl::Seconds(60), [&] { return InvitationPhase(s, name) == "Running"; }))
          << s.name << ": " << InvitationPhase(s, name) << "\n" << e2e::ReadFile(s.op->log);
    }
    ASSERT_NO_FATAL_FAILURE(StartAggregator(name, dir));
    for (Site& s : sites_) {
      absl::StatusOr<std::vector<cli::Subprocess>> started = StartSiteWorkers(
          s.cluster, s.ns, *uid, e2e::SourcePath("examples/data/" + s.csv), dir + "/" + s.name);
      ASSERT_TRUE(started.ok()) << started.status();
      for (cli::Subprocess& w : *started) s.workers.push_back(std::move(w));
    }
  }

  // The job's aggregator as a local process with the certificate the
  // coordinator made for it, trusting the federation CA for the sites.
  void StartAggregator(const std::string& job_name, const std::string& dir) {
    fs::create_directories(dir);
    std::optional<json> cm;
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      cm = coordinator_.Get({"configmap", "-n", kJobNs, job_name + "-job"});
      return cm.has_value();
    })) << "the coordinator made no job ConfigMap";
    const std::string job_file = WriteText(dir + "/job.yaml", (*cm)["data"]["job.yaml"]);
    const std::string tls_secret = job_name + "-aggregator-tls";
    std::vector<std::string> flags = {"--linger=10m"};
    for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{
             {"--tls-ca=", "ca.crt"}, {"--tls-cert=", "tls.crt"}, {"--tls-key=", "tls.key"}}) {
      const std::string value = coordinator_.SecretValue(kJobNs, tls_secret, key);
      ASSERT_FALSE(value.empty()) << tls_secret << " has no " << key;
      flags.push_back(flag + WriteText(dir + "/aggregator-" + key, value));
    }
    flags.push_back("--tls-client-ca-extra=" +
                    WriteText(dir + "/federation-ca.crt",
                              coordinator_.SecretValue(kJobNs, job_name + "-federation-ca",
                                                       "ca.crt")));
    CommandResult init = k8s::RunCommand({e2e::Binary("braid-worker"), "init", "--job=" + job_file,
                                          "--out=" + dir + "/init.safetensors"});
    ASSERT_EQ(init.code, 0) << init.err;
    absl::StatusOr<e2e::Aggregator> aggregator = e2e::StartAggregator(
        job_file, dir, dir + "/init.safetensors", aggregator_port_, flags);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status();
    aggregator_ = std::make_unique<e2e::Aggregator>(*std::move(aggregator));
    audit_ = dir + "/checkpoint/audit.jsonl";
  }

  std::vector<CompletedRound> Rounds() const { return CompletedRounds(audit_); }
  int RoundsDone() const { return static_cast<int>(Rounds().size()); }

  // Waits until `name` Succeeded, showing why not when it did not.
  void ExpectSucceeded(const std::string& name, absl::Duration timeout) {
    EXPECT_TRUE(WaitUntil(timeout, [&] { return JobPhase(name) == "Succeeded"; }))
        << Job(name)["status"].dump() << "\naggregator:\n"
        << e2e::ReadFile(fs::path(audit_).parent_path().parent_path().string() +
                         "/aggregator.log");
  }

  std::string dir_;
  Cluster coordinator_;
  std::vector<Site> sites_;
  int aggregator_port_ = 0;
  int federation_port_ = 0;
  std::unique_ptr<k8s::Operator> coordinator_op_;
  std::unique_ptr<e2e::Aggregator> aggregator_;
  std::string audit_;
};

// A site's admin refuses a job already running there: that site's workers
// go at once and it takes part in no later round; the other site trains on
// to the end (minTenants 1).
TEST_F(MultiSiteResilienceTest, ASiteRefusingARunningJobStopsOnlyItsOwnWorkers) {
  TcpProxy paced("127.0.0.1", aggregator_port_, kPacedLink);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(absl::StrCat("127.0.0.1:", paced.port())));
  Site& refusing = sites_[0];
  Site& other = sites_[1];
  ASSERT_NO_FATAL_FAILURE(EnrollSite(refusing, {{"requireApproval", true}}));
  ASSERT_NO_FATAL_FAILURE(EnrollSite(other, json::object()));
  const JobShape shape = PacedJob(6);
  ASSERT_EQ(coordinator_.Apply(JobYaml("refused", shape)).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    return InvitationPhase(refusing, "refused") == "AwaitingApproval";
  })) << e2e::ReadFile(refusing.op->log);
  ASSERT_NO_FATAL_FAILURE(Decide(refusing, "refused", "Approved"));
  std::string uid;
  ASSERT_NO_FATAL_FAILURE(RunJob("refused", shape, dir_ + "/run", &uid));
  // Both sites train.
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    std::vector<CompletedRound> r = Rounds();
    return !r.empty() && r.back().tenants.size() == 2;
  })) << e2e::ReadFile(dir_ + "/run/aggregator.log");
  const std::vector<std::string> other_deployments =
      WorkerDeploymentUids(other.cluster, other.ns, uid);
  ASSERT_EQ(other_deployments.size(), 1u);

  ASSERT_NO_FATAL_FAILURE(Decide(refusing, "refused", "Refused"));
  const absl::Time refused_at = absl::Now();
  // At once: the site's operator acts on its own TenantApproval without
  // waiting for the coordinator.
  EXPECT_TRUE(WaitUntil(absl::Seconds(10), [&] {
    return WorkerDeploymentUids(refusing.cluster, refusing.ns, uid).empty();
  })) << "the refusing site's workers are still there\n" << e2e::ReadFile(refusing.op->log);
  const absl::Duration gone_after = absl::Now() - refused_at;
  // Its pods go with the Deployment: the processes standing in for them end.
  for (cli::Subprocess& w : refusing.workers) w.Signal(SIGKILL);
  const int round_at_refusal = RoundsDone();
  ASSERT_LT(round_at_refusal, shape.rounds) << "the job ended before the site refused";
  EXPECT_TRUE(WaitUntil(absl::Seconds(30),
                        [&] { return InvitationPhase(refusing, "refused") == "Refused"; }))
      << InvitationPhase(refusing, "refused");
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return TenantStatus(Job("refused"), refusing.name).value("phase", "") == "Refused";
  })) << Job("refused")["status"].dump();
  // The other site is untouched: the same Deployment, still running.
  EXPECT_EQ(WorkerDeploymentUids(other.cluster, other.ns, uid), other_deployments);
  EXPECT_EQ(InvitationPhase(other, "refused"), "Running");
  EXPECT_EQ(TenantStatus(Job("refused"), other.name).value("phase", ""), "Running")
      << Job("refused")["status"].dump();

  ExpectSucceeded("refused", absl::Seconds(90));
  const std::vector<CompletedRound> rounds = Rounds();
  ASSERT_EQ(static_cast<int>(rounds.size()), shape.rounds);
  // The refusing site is in no round that started after its workers went
  // (the round running then may still count its upload).
  for (const CompletedRound& r : rounds) {
    const bool took_part =
        std::find(r.tenants.begin(), r.tenants.end(), refusing.name) != r.tenants.end();
    if (r.round > round_at_refusal + 1) EXPECT_FALSE(took_part) << "round " << r.round;
    EXPECT_NE(std::find(r.tenants.begin(), r.tenants.end(), other.name), r.tenants.end())
        << "round " << r.round;
  }
  EXPECT_EQ(TenantStatus(Job("refused"), other.name).value("lastRound", -1), shape.rounds);
  std::cout << absl::StrFormat(
      "refusal: workers gone %s after the TenantApproval; refused after round %d of %d\n",
      absl::FormatDuration(gone_after), round_at_refusal, shape.rounds);
}

// The site's operator is killed mid-job: its workers (local processes
// here, pods in a cluster) train on; a new operator process with the same
// flags and identity Secret, and no token, reconnects without enrolling
// again and leaves the running workers as they are.
TEST_F(MultiSiteResilienceTest, ASiteOperatorKilledMidJobCarriesOn) {
  TcpProxy paced("127.0.0.1", aggregator_port_, kPacedLink);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(absl::StrCat("127.0.0.1:", paced.port())));
  for (Site& s : sites_) ASSERT_NO_FATAL_FAILURE(EnrollSite(s, json::object()));
  Site& killed = sites_[0];
  const std::string enrolled_at =
      SiteObject(killed.name).value("/status/enrolledAt"_json_pointer, std::string());
  ASSERT_FALSE(enrolled_at.empty());
  const std::string identity =
      killed.cluster.SecretValue("braid-system", "braid-site-identity", "site.crt");
  ASSERT_FALSE(identity.empty());

  const JobShape shape = PacedJob(6);
  std::string uid;
  ASSERT_NO_FATAL_FAILURE(RunJob("killed", shape, dir_ + "/run", &uid));
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] { return RoundsDone() >= 1; }))
      << e2e::ReadFile(dir_ + "/run/aggregator.log");
  const std::vector<std::string> deployments = WorkerDeploymentUids(killed.cluster, killed.ns, uid);
  ASSERT_EQ(deployments.size(), 1u);

  killed.op->proc.Signal(SIGKILL);
  killed.op->proc.Wait(absl::Seconds(10));
  const int round_at_kill = RoundsDone();
  ASSERT_LT(round_at_kill, shape.rounds) << "the job ended before the kill";
  EXPECT_TRUE(
      WaitUntil(absl::Seconds(30), [&] { return SitePhase(killed.name) == "Disconnected"; }))
      << SiteObject(killed.name).dump();
  // Its workers train on without it.
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    std::vector<CompletedRound> r = Rounds();
    return static_cast<int>(r.size()) > round_at_kill &&
           std::find(r.back().tenants.begin(), r.back().tenants.end(), killed.name) !=
               r.back().tenants.end();
  })) << e2e::ReadFile(dir_ + "/run/aggregator.log");

  // The same flags, no token: the stored identity is enough.
  fs::create_directories(killed.dir + "/restarted");
  absl::StatusOr<k8s::Operator> op =
      k8s::StartOperator(killed.cluster.kubeconfig, killed.dir + "/restarted", killed.flags);
  ASSERT_TRUE(op.ok()) << op.status();
  killed.op = std::make_unique<k8s::Operator>(*std::move(op));
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase(killed.name) == "Connected"; }))
      << e2e::ReadFile(killed.op->log);
  const int round_at_reconnect = RoundsDone();
  EXPECT_LT(round_at_reconnect, shape.rounds) << "the job ended before the operator came back";
  // It did not enroll again.
  EXPECT_EQ(SiteObject(killed.name).value("/status/enrolledAt"_json_pointer, std::string()),
            enrolled_at);
  EXPECT_EQ(killed.cluster.SecretValue("braid-system", "braid-site-identity", "site.crt"),
            identity);
  EXPECT_FALSE(absl::StrContains(e2e::ReadFile(killed.op->log), "enrolled"))
      << e2e::ReadFile(killed.op->log);

  // The restarted operator leaves the running workers alone: the same
  // Deployment (not deleted and made anew) until the job ends and the
  // site withdraws it.
  std::vector<std::string> replaced;
  EXPECT_TRUE(WaitUntil(absl::Seconds(90), [&] {
    const std::vector<std::string> now = WorkerDeploymentUids(killed.cluster, killed.ns, uid);
    if (!now.empty() && now != deployments) replaced = now;
    return JobPhase("killed") == "Succeeded";
  })) << Job("killed")["status"].dump();
  EXPECT_TRUE(replaced.empty()) << "the workers' Deployment was made anew after the restart";
  // They took part to the last round.
  const json job = Job("killed");
  EXPECT_EQ(TenantStatus(job, killed.name).value("lastRound", -1), shape.rounds) << job["status"];
  const std::vector<CompletedRound> rounds = Rounds();
  ASSERT_FALSE(rounds.empty());
  EXPECT_NE(std::find(rounds.back().tenants.begin(), rounds.back().tenants.end(), killed.name),
            rounds.back().tenants.end());
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return WorkerDeploymentUids(killed.cluster, killed.ns, uid).empty();
  })) << "the job ended but its workers stay at the restarted site";
  std::cout << absl::StrFormat(
      "operator killed after round %d, back (Connected) at round %d of %d\n", round_at_kill,
      round_at_reconnect, shape.rounds);
}

// The control link of one site is cut for 30 s (connections closed, new
// ones refused): the coordinator shows the site Disconnected meanwhile and
// Connected after; the job, whose workers talk to the aggregator directly,
// trains on and succeeds.
TEST_F(MultiSiteResilienceTest, ACutControlLinkIsReportedAndSurvived) {
  TcpProxy paced("127.0.0.1", aggregator_port_, kPacedLink);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(absl::StrCat("127.0.0.1:", paced.port())));
  TcpProxy link("127.0.0.1", federation_port_);
  Site& cut = sites_[0];
  ASSERT_NO_FATAL_FAILURE(EnrollSite(cut, json::object(), link.port()));
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[1], json::object()));
  const JobShape shape = PacedJob(10);
  std::string uid;
  ASSERT_NO_FATAL_FAILURE(RunJob("cut", shape, dir_ + "/run", &uid));
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] { return RoundsDone() >= 1; }))
      << e2e::ReadFile(dir_ + "/run/aggregator.log");

  link.SetRefusing(true);
  const absl::Time cut_at = absl::Now();
  EXPECT_GT(link.CutAll(), 0);
  const int round_at_cut = RoundsDone();
  ASSERT_LT(round_at_cut, shape.rounds) << "the job ended before the cut";
  EXPECT_TRUE(WaitUntil(absl::Seconds(20), [&] { return SitePhase(cut.name) == "Disconnected"; }))
      << SiteObject(cut.name).dump();
  // Meanwhile the cut site's workers keep training, and the job's status
  // at the coordinator (from the aggregator) shows it.
  EXPECT_TRUE(WaitUntil(absl::Seconds(25), [&] {
    std::vector<CompletedRound> r = Rounds();
    return static_cast<int>(r.size()) > round_at_cut &&
           std::find(r.back().tenants.begin(), r.back().tenants.end(), cut.name) !=
               r.back().tenants.end();
  })) << e2e::ReadFile(dir_ + "/run/aggregator.log");
  EXPECT_TRUE(WaitUntil(absl::Seconds(20), [&] {
    return TenantStatus(Job("cut"), cut.name).value("lastRound", 0) > round_at_cut;
  })) << Job("cut")["status"].dump();
  EXPECT_EQ(SitePhase(cut.name), "Disconnected");
  // kubectl get fedjob shows the tenant's site as Disconnected meanwhile.
  EXPECT_TRUE(WaitUntil(absl::Seconds(10), [&] {
    return TenantStatus(Job("cut"), cut.name).value("phase", "") == "Disconnected";
  })) << Job("cut")["status"].dump();
  // The outage lasts 30 s: its length is the point, not a wait for a state.
  absl::SleepFor(cut_at + absl::Seconds(30) - absl::Now());
  EXPECT_EQ(SitePhase(cut.name), "Disconnected");
  const int round_at_restore = RoundsDone();
  EXPECT_LT(round_at_restore, shape.rounds) << "the job ended during the cut";
  link.SetRefusing(false);
  const absl::Time restored_at = absl::Now();

  // The site dials again with back-off (at most about 32 s after a 30 s
  // outage) and is Connected.
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase(cut.name) == "Connected"; }))
      << SiteObject(cut.name).dump() << "\n" << e2e::ReadFile(cut.op->log);
  const absl::Duration reconnect = absl::Now() - restored_at;
  ExpectSucceeded("cut", absl::Seconds(60));
  EXPECT_NE(TenantStatus(Job("cut"), cut.name).value("phase", ""), "Disconnected");
  std::cout << absl::StrFormat(
      "link cut after round %d, restored 30 s later at round %d of %d; Connected %s after\n",
      round_at_cut, round_at_restore, shape.rounds, absl::FormatDuration(reconnect));
}

// Every link a site has goes through a proxy that shapes it like a WAN (50
// ms each way, 2 MB/s per direction): the workers' to the aggregator and
// the site operators' to the coordinator. The same job runs first with
// the workers' proxy passing bytes untouched, then shaped; both succeed.
TEST_F(MultiSiteResilienceTest, AJobCompletesOverWanLikeLinks) {
  const k8s::LinkShape wan{absl::Milliseconds(50), 2 * 1000 * 1000};
  TcpProxy aggregator_link("127.0.0.1", aggregator_port_);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(absl::StrCat("127.0.0.1:", aggregator_link.port())));
  std::vector<std::unique_ptr<TcpProxy>> control_links;
  for (Site& s : sites_) {
    control_links.push_back(std::make_unique<TcpProxy>("127.0.0.1", federation_port_, wan));
    ASSERT_NO_FATAL_FAILURE(EnrollSite(s, json::object(), control_links.back()->port()));
  }
  const JobShape shape = PacedJob(8);  // paced only when shaped

  std::vector<std::string> report;
  for (const bool shaped : {false, true}) {
    SCOPED_TRACE(shaped ? "shaped" : "unshaped");
    const std::string name = shaped ? "wan" : "lan";
    aggregator_link.SetShape(shaped ? wan : k8s::LinkShape{});
    std::string uid;
    ASSERT_NO_FATAL_FAILURE(RunJob(name, shape, dir_ + "/" + name, &uid));
    ExpectSucceeded(name, absl::Seconds(60));
    const std::vector<CompletedRound> rounds = Rounds();
    ASSERT_EQ(static_cast<int>(rounds.size()), shape.rounds);
    for (const CompletedRound& r : rounds) EXPECT_EQ(r.tenants.size(), 2u) << "round " << r.round;
    std::optional<absl::Duration> round_time = MeanRoundTime(rounds);
    ASSERT_TRUE(round_time.has_value());
    // Not a timing target (those are benchmarks), a check that the proxy
    // shapes at all: a round needs at least one round trip through it.
    if (shaped) EXPECT_GE(*round_time, 2 * wan.latency);
    report.push_back(absl::StrFormat("%s: %.3f s per round", shaped ? "WAN-shaped" : "unshaped",
                                     absl::ToDoubleSeconds(*round_time)));
    // The next job gets its own aggregator and workers on the same port.
    aggregator_->proc.Signal(SIGTERM);
    aggregator_->proc.Wait(absl::Seconds(10));
    for (Site& s : sites_) {
      for (cli::Subprocess& w : s.workers) {
        w.Signal(SIGTERM);
        w.Wait(absl::Seconds(10));
      }
      s.workers.clear();
    }
  }
  std::cout << "round time, MLP [256, 256], 2 sites, 8 rounds (50 ms each way, 2 MB/s): "
            << report[0] << "; " << report[1] << "\n";
}

}  // namespace
}  // namespace braid::multisite
