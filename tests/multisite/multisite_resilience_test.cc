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
#include "tests/multisite/multisite_fixture.h"
#include "tests/multisite/multisite_harness.h"

namespace braid::multisite {
namespace {

namespace fs = std::filesystem;
using k8s::CommandResult;
using k8s::TcpProxy;
using k8s::WaitUntil;
using nlohmann::json;

// A job still running when the test breaks something, whatever the
// machine's load: an MLP of about 67k parameters (each worker downloads
// 540 kB and uploads 270 kB per round) whose workers reach the aggregator
// through a proxy passing 250 kB/s per direction, so each round takes
// about 3.5 s on the wire. Only the pace: the links the tests break are
// others.
constexpr k8s::LinkShape kPacedLink{absl::ZeroDuration(), 250 * 1000};
JobShape PacedJob(int rounds) { return JobShape{rounds, "[256, 256]"}; }

class MultiSiteResilienceTest : public MultiSiteFixture {
 protected:
  MultiSiteResilienceTest() : MultiSiteFixture("fl-resilience", "multisite-resilience") {}
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
  // Its tenant shows Running once its site reports its Deployment ready
  // (the site cluster's controllers may lag under load), or the job's end.
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    const std::string phase = TenantStatus(Job("refused"), other.name).value("phase", "");
    return phase == "Running" || phase == "Succeeded";
  })) << Job("refused")["status"].dump();

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

// The coordinator revokes a Site while a job it takes part in runs: the
// job goes on without it (minTenants 1) instead of failing, its tenant
// shows Revoked, and the job's aggregator refuses the site's workers at
// their next call, long before their certificate expires.
TEST_F(MultiSiteResilienceTest, ARevokedSiteLeavesARunningJobWhoseAggregatorRefusesIt) {
  TcpProxy paced("127.0.0.1", aggregator_port_, kPacedLink);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(absl::StrCat("127.0.0.1:", paced.port())));
  for (Site& s : sites_) ASSERT_NO_FATAL_FAILURE(EnrollSite(s, json::object()));
  Site& revoked = sites_[0];
  Site& other = sites_[1];
  const JobShape shape = PacedJob(6);
  std::string uid;
  ASSERT_NO_FATAL_FAILURE(RunJob("revoked", shape, dir_ + "/run", &uid));
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    std::vector<CompletedRound> r = Rounds();
    return !r.empty() && r.back().tenants.size() == 2;
  })) << e2e::ReadFile(dir_ + "/run/aggregator.log");

  // The aggregator is held while the coordinator learns of the revocation,
  // so that the job cannot end meanwhile however loaded the machine is.
  aggregator_->proc.Signal(SIGSTOP);
  const int round_at_revocation = RoundsDone();
  ASSERT_LT(round_at_revocation, shape.rounds);
  CommandResult r = coordinator_.Kubectl(
      {"patch", "site", revoked.name, "--type=merge", "-p", R"({"spec":{"revoked":true}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return TenantStatus(Job("revoked"), revoked.name).value("phase", "") == "Revoked";
  })) << Job("revoked")["status"].dump();
  EXPECT_NE(JobPhase("revoked"), "Failed") << Job("revoked")["status"].dump();
  // The other site's tenant runs on (once its site reports its Deployment
  // ready; the job cannot end while its aggregator is held).
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    return TenantStatus(Job("revoked"), other.name).value("phase", "") == "Running";
  })) << Job("revoked")["status"].dump();
  // The job's admission list drops the site; the kubelet's copy reaches the
  // running aggregator.
  json admitted;
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    admitted = SyncSiteAdmission("revoked");
    return admitted.is_object() && !admitted["sites"].contains(revoked.name);
  })) << admitted.dump();
  EXPECT_TRUE(admitted["sites"].contains(other.name)) << admitted.dump();
  // The coordinator's events say that the site left.
  std::optional<json> events = coordinator_.Get(
      {"events", "-n", job_ns_, "--field-selector", "reason=SiteRevoked"});
  EXPECT_TRUE(events.has_value() && !(*events)["items"].empty());
  aggregator_->proc.Signal(SIGCONT);

  ExpectSucceeded("revoked", absl::Seconds(120));
  const std::vector<CompletedRound> rounds = Rounds();
  ASSERT_EQ(static_cast<int>(rounds.size()), shape.rounds);
  // The revoked site is in no round after the one running at revocation.
  for (const CompletedRound& round : rounds) {
    const bool took_part = std::find(round.tenants.begin(), round.tenants.end(), revoked.name) !=
                           round.tenants.end();
    if (round.round > round_at_revocation + 1) EXPECT_FALSE(took_part) << "round " << round.round;
    EXPECT_NE(std::find(round.tenants.begin(), round.tenants.end(), other.name),
              round.tenants.end())
        << "round " << round.round;
  }
  // Its workers were told why.
  std::string worker_logs;
  for (const auto& f : fs::recursive_directory_iterator(dir_ + "/run/" + revoked.name)) {
    if (f.path().filename() == "worker.log") worker_logs += e2e::ReadFile(f.path().string());
  }
  EXPECT_TRUE(absl::StrContains(worker_logs, "is not admitted by the coordinator")) << worker_logs;
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
