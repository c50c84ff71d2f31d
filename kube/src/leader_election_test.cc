#include "braid/kube/leader_election.h"

#include <thread>

#include "absl/time/clock.h"
#include "braid/kube/testing/fake_api_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::kube {
namespace {

using Attempt = LeaderElector::Attempt;

LeaderElectionConfig Config(const std::string& identity) {
  LeaderElectionConfig c;
  c.lease_namespace = "braid-system";
  c.lease_name = "braid-operator";
  c.identity = identity;
  return c;
}

class LeaderElectionTest : public ::testing::Test {
 protected:
  LeaderElectionTest() : client_(NewClient(server_.NewTransport())) {}
  Json Lease() const { return server_.Object(kLease, "braid-system", "braid-operator"); }

  FakeApiServer server_;
  FakeClock clock_;
  std::unique_ptr<Client> client_;
};

TEST_F(LeaderElectionTest, AcquiresAnAbsentLeaseAndRenewsIt) {
  std::vector<std::string> leaders;
  LeaderElectionConfig config = Config("a");
  config.on_new_leader = [&](const std::string& h) { leaders.push_back(h); };
  LeaderElector a(client_.get(), config, &clock_);
  EXPECT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
  Json lease = Lease();
  EXPECT_EQ(lease["spec"]["holderIdentity"], "a");
  EXPECT_EQ(lease["spec"]["leaseDurationSeconds"], 15);
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 0);
  EXPECT_EQ(lease["spec"]["renewTime"], "2024-01-01T00:00:00.000000Z");
  const Json acquired = lease["spec"]["acquireTime"];

  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
  lease = Lease();
  EXPECT_EQ(lease["spec"]["renewTime"], "2024-01-01T00:00:02.000000Z");
  EXPECT_EQ(lease["spec"]["acquireTime"], acquired);
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 0);
  EXPECT_EQ(leaders, std::vector<std::string>{"a"});
}

TEST_F(LeaderElectionTest, NoTakeoverWhileTheHolderRenews) {
  LeaderElector a(client_.get(), Config("a"), &clock_);
  LeaderElector b(client_.get(), Config("b"), &clock_);
  ASSERT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Seconds(10));  // less than the 15 s lease each time
    ASSERT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
    clock_.Advance(absl::Seconds(4));
    EXPECT_EQ(b.TryAcquireOrRenew(), Attempt::kHeldByOther) << i;
  }
  EXPECT_EQ(b.Holder(), "a");
  EXPECT_EQ(Lease()["spec"]["holderIdentity"], "a");
}

TEST_F(LeaderElectionTest, TakeoverOnceTheLeaseExpires) {
  LeaderElector a(client_.get(), Config("a"), &clock_);
  LeaderElector b(client_.get(), Config("b"), &clock_);
  ASSERT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
  EXPECT_EQ(b.TryAcquireOrRenew(), Attempt::kHeldByOther);  // b first sees the lease now
  clock_.Advance(absl::Seconds(14));
  EXPECT_EQ(b.TryAcquireOrRenew(), Attempt::kHeldByOther);
  clock_.Advance(absl::Seconds(2));  // 16 s without a renewal
  EXPECT_EQ(b.TryAcquireOrRenew(), Attempt::kLeading);
  Json lease = Lease();
  EXPECT_EQ(lease["spec"]["holderIdentity"], "b");
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 1);
  EXPECT_EQ(lease["spec"]["acquireTime"], "2024-01-01T00:00:16.000000Z");
  // The old holder, back from a pause, sees it lost.
  EXPECT_EQ(a.TryAcquireOrRenew(), Attempt::kHeldByOther);
  EXPECT_EQ(a.Holder(), "b");
}

TEST_F(LeaderElectionTest, WriteConflictMeansSomeoneElseWon) {
  LeaderElector a(client_.get(), Config("a"), &clock_);
  ASSERT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
  const Json before = Lease();
  std::vector<absl::StatusCode> errors;
  LeaderElectionConfig config = Config("a");
  config.on_error = [&](const absl::Status& s) { errors.push_back(s.code()); };
  LeaderElector a2(client_.get(), config, &clock_);
  server_.FailNext("PUT", "/leases/braid-operator", 409, 1,
                   R"({"kind":"Status","reason":"Conflict","message":"the object has been modified","code":409})");
  EXPECT_EQ(a2.TryAcquireOrRenew(), Attempt::kFailed);
  EXPECT_EQ(errors, std::vector<absl::StatusCode>{absl::StatusCode::kAborted});
  EXPECT_EQ(Lease(), before);

  // Two candidates racing to create: the loser gets AlreadyExists.
  LeaderElector c(client_.get(), [] { LeaderElectionConfig x = Config("c"); x.lease_name = "other"; return x; }(), &clock_);
  server_.FailNext("POST", "/leases", 409, 1,
                   R"({"kind":"Status","reason":"AlreadyExists","message":"exists","code":409})");
  EXPECT_EQ(c.TryAcquireOrRenew(), Attempt::kFailed);
}

TEST_F(LeaderElectionTest, ReleaseLetsTheNextCandidateInAtOnce) {
  LeaderElector a(client_.get(), Config("a"), &clock_);
  LeaderElector b(client_.get(), Config("b"), &clock_);
  ASSERT_EQ(a.TryAcquireOrRenew(), Attempt::kLeading);
  EXPECT_EQ(b.TryAcquireOrRenew(), Attempt::kHeldByOther);
  ASSERT_TRUE(a.Release().ok());
  EXPECT_EQ(Lease()["spec"]["holderIdentity"], "");
  EXPECT_EQ(Lease()["spec"]["leaseDurationSeconds"], 1);
  EXPECT_EQ(b.TryAcquireOrRenew(), Attempt::kLeading);
  // Releasing a lease someone else holds changes nothing.
  ASSERT_TRUE(a.Release().ok());
  EXPECT_EQ(Lease()["spec"]["holderIdentity"], "b");
}

TEST_F(LeaderElectionTest, RunStopsLeadingWhenRenewalsFailPastTheDeadline) {
  std::vector<std::string> calls;
  LeaderElectionConfig config = Config("a");
  config.on_started_leading = [&] { calls.push_back("started"); };
  config.on_stopped_leading = [&] { calls.push_back("stopped"); };
  LeaderElector a(client_.get(), config, &clock_);
  server_.FailNext("PUT", "/leases/", 503, 1 << 30);  // renewals fail; the create works
  CancelToken cancel;
  const absl::Status s = a.Run(&cancel);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("could not renew"));
  EXPECT_EQ(calls, (std::vector<std::string>{"started", "stopped"}));
  EXPECT_FALSE(a.IsLeader());
  // It kept trying every retry period until the 10 s deadline.
  const std::vector<absl::Duration> sleeps = clock_.sleeps();
  EXPECT_EQ(sleeps.size(), 5u);
}

TEST_F(LeaderElectionTest, CancelledRunReleasesTheLease) {
  std::atomic<bool> started{false};
  LeaderElectionConfig config = Config("a");
  config.on_started_leading = [&] { started = true; };
  LeaderElector a(client_.get(), config, &clock_);
  CancelToken cancel;
  std::thread run([&] { (void)a.Run(&cancel); });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!started && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  cancel.Cancel();
  run.join();
  ASSERT_TRUE(started.load()) << "never started leading";
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(Lease()["spec"]["holderIdentity"], "");  // released on cancel
}

// Two candidates on the real clock, a short retry period and a long lease:
// one leads; when it stops (releasing the lease), the other takes over.
TEST_F(LeaderElectionTest, TwoElectorsHandOver) {
  struct Candidate {
    std::atomic<bool> leading{false};
    std::atomic<int> starts{0};
    std::unique_ptr<LeaderElector> elector;
    CancelToken cancel;
    std::thread thread;
    absl::Status result;
  };
  Candidate cands[2];
  const char* names[2] = {"a", "b"};
  for (int i = 0; i < 2; ++i) {
    LeaderElectionConfig config = Config(names[i]);
    // A lease far longer than the test waits: b can only lead by a's release.
    config.lease_duration = absl::Seconds(120);
    config.renew_deadline = absl::Seconds(3);
    config.retry_period = absl::Milliseconds(100);
    Candidate* c = &cands[i];
    config.on_started_leading = [c] { c->leading = true; ++c->starts; };
    config.on_stopped_leading = [c] { c->leading = false; };
    c->elector = std::make_unique<LeaderElector>(client_.get(), config);
  }
  cands[0].thread = std::thread([&] { cands[0].result = cands[0].elector->Run(&cands[0].cancel); });
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!cands[0].leading && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(cands[0].leading);
  cands[1].thread = std::thread([&] { cands[1].result = cands[1].elector->Run(&cands[1].cancel); });
  // Wait until b has seen a's lease and both have gone through several more
  // retry periods (each one reads the Lease): b must still be waiting.
  const absl::Time seen_deadline = absl::Now() + absl::Seconds(30);
  while (cands[1].elector->Holder() != "a" && absl::Now() < seen_deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(cands[1].elector->Holder(), "a");
  const size_t requests_seen = server_.requests().size();
  while (server_.requests().size() < requests_seen + 6 && absl::Now() < seen_deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(server_.requests().size(), requests_seen + 6);
  EXPECT_TRUE(cands[0].elector->IsLeader());
  EXPECT_FALSE(cands[1].leading);
  EXPECT_EQ(cands[1].elector->Holder(), "a");

  const absl::Time handover = absl::Now();
  cands[0].cancel.Cancel();
  cands[0].thread.join();
  EXPECT_TRUE(cands[0].result.ok()) << cands[0].result;
  EXPECT_FALSE(cands[0].leading);
  // Released, so b need not wait out the 120 s lease.
  while (!cands[1].leading && absl::Now() < handover + absl::Seconds(30)) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(cands[1].leading);
  EXPECT_EQ(Lease()["spec"]["holderIdentity"], "b");
  EXPECT_EQ(Lease()["spec"]["leaseTransitions"], 1);
  cands[1].cancel.Cancel();
  cands[1].thread.join();
  EXPECT_EQ(cands[0].starts + cands[1].starts, 2);
}

TEST_F(LeaderElectionTest, RunRejectsIncompleteConfig) {
  LeaderElectionConfig config = Config("");
  LeaderElector e(client_.get(), config, &clock_);
  EXPECT_EQ(e.Run(nullptr).code(), absl::StatusCode::kInvalidArgument);
  config = Config("a");
  config.renew_deadline = absl::Seconds(20);
  LeaderElector f(client_.get(), config, &clock_);
  EXPECT_EQ(f.Run(nullptr).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid::kube
