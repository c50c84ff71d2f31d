// The round engine against one tenant that lies about who it is or stalls:
// replicas the job did not declare, tenants not in the job, a round that
// one tenant would make alone (strategy.minTenants), and an upload that is
// abandoned while it held the slot (the staller, not the next in line, is
// out of the round).
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 8;

class RoundEngineSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("round_engine_sessions", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    checkpoint_ = std::move(cp->checkpoint);
    options_.job = "job";
    options_.rounds = 1;
    options_.min_clients = 1;
    options_.min_tenants = 2;
    options_.tenants = {{"a", 1}, {"b", 1}, {"evil", 3}};
    options_.expected_clients = 5;
    options_.round_timeout = absl::Seconds(60);
    options_.heartbeat_timeout = absl::Seconds(10);
    options_.start_grace = absl::Seconds(5);
    engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
  }

  std::string JoinOk(const std::string& tenant, int replica) {
    absl::StatusOr<std::string> id = engine_->Join(tenant, replica, 10);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : "";
  }

  absl::Status Fit(const std::string& id, int round) {
    absl::StatusOr<std::unique_ptr<Upload>> up =
        engine_->BeginFit(id, round, kFloats * sizeof(float), 10, absl::ZeroDuration());
    if (!up.ok()) return up.status();
    const std::vector<float> delta(kFloats, 1.0f);
    if (absl::Status s = (*up)->Write(0, delta.data(), kFloats * sizeof(float)); !s.ok()) return s;
    return engine_->CommitFit(*std::move(up), {0.5, 0, 10});
  }

  // Time passes by `d` while `alive` keep their heartbeats.
  void Pass(absl::Duration d, const std::vector<std::string>& alive) {
    for (absl::Duration step = absl::Seconds(1); d > absl::ZeroDuration(); d -= step) {
      clock_.Advance(std::min(step, d));
      for (const std::string& id : alive) ASSERT_TRUE(engine_->Touch(id).ok()) << id;
      engine_->Tick();
    }
  }

  TaskKind KindOf(const std::string& id) {
    absl::StatusOr<Task> t = engine_->NextTask(id, absl::ZeroDuration());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->kind : TaskKind::kWait;
  }

  FakeClock clock_;
  EngineOptions options_;
  std::unique_ptr<Checkpoint> checkpoint_;
  AggregatorMetrics metrics_{"job"};
  std::unique_ptr<RoundEngine> engine_;
};

TEST_F(RoundEngineSessionsTest, OnlyTheJobsTenantsAndTheirDeclaredReplicasJoin) {
  const absl::StatusOr<std::string> stranger = engine_->Join("mallory", 0, 10);
  EXPECT_EQ(stranger.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(stranger.status().message()), HasSubstr("not in job job"));
  const absl::StatusOr<std::string> sybil = engine_->Join("a", 1, 10);
  EXPECT_EQ(sybil.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(sybil.status().message()),
              HasSubstr("declares 1 replica(s) for it (spec.tenants[].replicas)"));
  EXPECT_EQ(engine_->Join("evil", 3, 10).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->Join("evil", -1, 10).status().code(), absl::StatusCode::kInvalidArgument);
  JoinOk("evil", 2);
  EXPECT_EQ(engine_->Status().live_clients, 1);
}

TEST_F(RoundEngineSessionsTest, OneTenantsReplicasAloneStartNoRound) {
  const std::vector<std::string> evil = {JoinOk("evil", 0), JoinOk("evil", 1), JoinOk("evil", 2)};
  // Past the start grace with minClients met: still one tenant.
  Pass(absl::Seconds(20), evil);
  for (const std::string& id : evil) EXPECT_EQ(KindOf(id), TaskKind::kWait);
  EXPECT_EQ(engine_->Status().phase, "Pending");
  Pass(absl::Seconds(45), evil);
  const EngineStatus s = engine_->Status();
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_EQ(s.reason, "NotEnoughClients");
  EXPECT_THAT(s.message, HasSubstr("from 2 tenants (strategy.minTenants)"));
  EXPECT_EQ(s.rounds_completed, 0);
}

TEST_F(RoundEngineSessionsTest, TheSampleSpansMinTenantsTenants) {
  // Four of evil's... three replicas and one of a's; fractionFit small.
  options_.fraction_fit = 0.01;
  options_.expected_clients = 4;
  engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
  for (uint64_t seed = 0; seed < 8; ++seed) {
    options_.seed = seed;
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("round_engine_sessions_s", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    checkpoint_ = std::move(cp->checkpoint);
    engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
    const std::string a = JoinOk("a", 0);
    std::vector<std::string> ids = {a, JoinOk("evil", 0), JoinOk("evil", 1), JoinOk("evil", 2)};
    engine_->Tick();
    int sampled = 0;
    for (const std::string& id : ids) sampled += KindOf(id) == TaskKind::kFit ? 1 : 0;
    EXPECT_EQ(sampled, 2) << "seed " << seed;
    EXPECT_EQ(KindOf(a), TaskKind::kFit) << "seed " << seed;
  }
}

TEST_F(RoundEngineSessionsTest, ARoundWithOneTenantsUpdatesFails) {
  options_.expected_clients = 4;
  engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
  const std::string a = JoinOk("a", 0);
  const std::vector<std::string> evil = {JoinOk("evil", 0), JoinOk("evil", 1), JoinOk("evil", 2)};
  engine_->Tick();
  for (const std::string& id : evil) ASSERT_TRUE(Fit(id, 1).ok()) << id;
  // a never sends; the round closes at its deadline with evil's alone.
  Pass(absl::Seconds(61), evil);
  const EngineStatus s = engine_->Status();
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_EQ(s.reason, "RoundFailed");
  EXPECT_THAT(s.message, HasSubstr("updates from 1 tenant(s) (evil); 2 needed"));
  EXPECT_THAT(s.message, HasSubstr(a + " (lost: no heartbeat)"));
}

TEST_F(RoundEngineSessionsTest, TheStallerIsOutOfTheRoundNotTheNextInLine) {
  options_.expected_clients = 3;
  options_.min_clients = 2;
  engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
  const std::string a = JoinOk("a", 0), b = JoinOk("b", 0), evil = JoinOk("evil", 0);
  engine_->Tick();
  ASSERT_EQ(KindOf(evil), TaskKind::kFit);
  engine_->AbandonFit(evil, 1, "upload stalled: no chunk for 30s");
  EXPECT_EQ(KindOf(evil), TaskKind::kWait);  // no second try this round
  EXPECT_EQ(Fit(evil, 1).code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(Fit(a, 1).ok());
  ASSERT_TRUE(Fit(b, 1).ok());
  engine_->Tick();  // the round closes without waiting for its deadline
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u);
  EXPECT_EQ(s.history[0].participants, 2);
  EXPECT_EQ(s.history[0].tenants, (std::vector<std::string>{"a", "b"}));
}

TEST_F(RoundEngineSessionsTest, AStallThatLeavesTooFewNamesTheStaller) {
  options_.expected_clients = 2;
  options_.min_clients = 2;
  engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
  const std::string a = JoinOk("a", 0), evil = JoinOk("evil", 0);
  engine_->Tick();
  engine_->AbandonFit(evil, 1, "upload stalled: no chunk for 30s");
  ASSERT_TRUE(Fit(a, 1).ok());
  engine_->Tick();
  const EngineStatus s = engine_->Status();
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_THAT(s.message, HasSubstr(evil + " (upload stalled: no chunk for 30s)"));
  EXPECT_THAT(s.message, ::testing::Not(HasSubstr(a + " (")));
}

}  // namespace
}  // namespace braid::aggregator
