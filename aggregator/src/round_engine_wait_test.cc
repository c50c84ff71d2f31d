// When a round starts: with every expected worker live at once; otherwise
// with minClients after start_grace; and a worker that was declared lost
// (a stopped or refused tenant) is not waited for again.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

constexpr int kFloats = 16;

class RoundEngineWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("round_engine_wait", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    dir_ = cp->dir;
    initial_ = cp->initial;
    checkpoint_ = std::move(cp->checkpoint);
    EngineOptions options;
    options.job = "job";
    options.rounds = 3;
    options.min_clients = 2;
    options.expected_clients = 3;
    options.start_grace = absl::Seconds(30);
    options.heartbeat_timeout = absl::Seconds(10);
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), &metrics_,
                                            &clock_);
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<std::string> id = engine_->Join("t" + std::to_string(i), 0, 10);
      ASSERT_TRUE(id.ok()) << id.status();
      ids_.push_back(*id);
    }
    engine_->Tick();
  }

  // The client's task now, without waiting: kFit / kEvaluate / kWait.
  Task TaskOf(int i) {
    absl::StatusOr<Task> t = engine_->NextTask(ids_[i], absl::ZeroDuration());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Task();
  }

  void Fit(int i, int round) {
    absl::StatusOr<std::unique_ptr<Upload>> up =
        engine_->BeginFit(ids_[i], round, kFloats * sizeof(float), 10, absl::ZeroDuration());
    ASSERT_TRUE(up.ok()) << up.status();
    const std::vector<float> delta(kFloats, 0.1f);
    ASSERT_TRUE((*up)->Write(0, delta.data(), kFloats * sizeof(float)).ok());
    ASSERT_TRUE(engine_->CommitFit(*std::move(up), {0.5, 0, 10}).ok());
  }

  // Workers 0 and 1 send their round-1 updates and keep their heartbeats;
  // worker 2 goes silent past the heartbeat timeout and is declared lost.
  void FitRound1WhileWorker2GoesSilent() {
    Fit(0, 1);
    Fit(1, 1);
    clock_.Advance(absl::Seconds(11));
    ASSERT_TRUE(engine_->Touch(ids_[0]).ok());
    ASSERT_TRUE(engine_->Touch(ids_[1]).ok());
    engine_->Tick();
  }

  FakeClock clock_;
  std::string dir_;
  std::string initial_;  // the initial model's file
  std::unique_ptr<Checkpoint> checkpoint_;
  AggregatorMetrics metrics_{"job"};
  std::unique_ptr<RoundEngine> engine_;
  std::vector<std::string> ids_;
};
TEST_F(RoundEngineWaitTest, ALostWorkerIsNotWaitedForInLaterRounds) {
  // All three live: round 1 starts at once.
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(TaskOf(i).round, 1);
  ASSERT_NO_FATAL_FAILURE(FitRound1WhileWorker2GoesSilent());
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kEvaluate);
  ASSERT_TRUE(engine_->ReportEval(ids_[0], 1, {0.4, 0.9, 10}).ok());
  ASSERT_TRUE(engine_->ReportEval(ids_[1], 1, {0.4, 0.9, 10}).ok());
  engine_->Tick();
  // Round 2 starts with the two live workers right away, not after the
  // 30 s start grace: worker 2 was declared lost.
  const Task next = TaskOf(0);
  EXPECT_EQ(next.kind, TaskKind::kFit);
  EXPECT_EQ(next.round, 2);
}

TEST_F(RoundEngineWaitTest, EachTenantsEvaluationIsKeptBesideThePooledOne) {
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  for (int i = 0; i < 3; ++i) Fit(i, 1);
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kEvaluate);
  ASSERT_TRUE(engine_->ReportEval(ids_[0], 1, {0.2, 0.9, 10}).ok());
  ASSERT_TRUE(engine_->ReportEval(ids_[1], 1, {0.8, 0.5, 30}).ok());
  ASSERT_TRUE(engine_->ReportEval(ids_[2], 1, {0.5, 0.7, 10}).ok());
  const std::vector<RoundRecord> history = engine_->Status().history;
  ASSERT_EQ(history.size(), 1u);
  const RoundRecord& r = history[0];
  EXPECT_NEAR(r.eval_loss, (0.2 * 10 + 0.8 * 30 + 0.5 * 10) / 50, 1e-12);
  ASSERT_EQ(r.tenant_eval.size(), 3u);
  EXPECT_EQ(r.tenant_eval[1].tenant, "t1");
  EXPECT_DOUBLE_EQ(r.tenant_eval[1].eval_loss, 0.8);
  EXPECT_DOUBLE_EQ(r.tenant_eval[1].eval_accuracy, 0.5);
  EXPECT_EQ(r.tenant_eval[1].eval_examples, 30);
  // Kept in the checkpoint: a restarted aggregator reports it too.
  absl::StatusOr<Checkpoint> reopened =
      Checkpoint::Open(dir_, "job", initial_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_EQ(reopened->state().history.at(0).tenant_eval.size(), 3u);
  EXPECT_DOUBLE_EQ(reopened->state().history[0].tenant_eval[2].eval_loss, 0.5);
}

TEST_F(RoundEngineWaitTest, AWorkerThatRejoinsIsWaitedForAgain) {
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  ASSERT_NO_FATAL_FAILURE(FitRound1WhileWorker2GoesSilent());
  ASSERT_TRUE(engine_->ReportEval(ids_[0], 1, {0.4, 0.9, 10}).ok());
  // Worker 2 comes back (a restarted pod) before round 2 begins.
  absl::StatusOr<std::string> again = engine_->Join("t2", 0, 10);
  ASSERT_TRUE(again.ok()) << again.status();
  ids_[2] = *again;
  ASSERT_TRUE(engine_->ReportEval(ids_[1], 1, {0.4, 0.9, 10}).ok());
  engine_->Tick();
  // Round 2 includes it again.
  EXPECT_EQ(TaskOf(2).kind, TaskKind::kFit);
  EXPECT_EQ(TaskOf(2).round, 2);
}

TEST_F(RoundEngineWaitTest, WithoutLossesAMissingWorkerGetsTheStartGrace) {
  // Only two of the three expected ever arrive (none lost): round 1 waits
  // the start grace for the third, then starts with minClients.
  EngineOptions options;
  options.job = "job";
  options.rounds = 1;
  options.min_clients = 2;
  options.expected_clients = 3;
  options.start_grace = absl::Seconds(30);
  auto cp = Checkpoint::Open(dir_ + "b", "job", initial_);
  ASSERT_TRUE(cp.ok()) << cp.status();
  RoundEngine engine(options, &*cp, &metrics_, &clock_);
  auto a = engine.Join("t0", 0, 10);
  auto b = engine.Join("t1", 0, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  engine.Tick();
  EXPECT_EQ(engine.NextTask(*a, absl::ZeroDuration())->kind, TaskKind::kWait);
  for (int s = 0; s < 31; ++s) {  // heartbeats every second while waiting
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(engine.Touch(*a).ok());
    ASSERT_TRUE(engine.Touch(*b).ok());
    engine.Tick();
    if (s < 29) {
      ASSERT_EQ(engine.NextTask(*a, absl::ZeroDuration())->kind, TaskKind::kWait) << s;
    }
  }
  EXPECT_EQ(engine.NextTask(*a, absl::ZeroDuration())->kind, TaskKind::kFit);
}

}  // namespace
}  // namespace braid::aggregator
