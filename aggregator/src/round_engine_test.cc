// The round engine on its own, with a fake clock: sampling, the start grace,
// round deadlines, lost workers, RoundFailed, resuming from a checkpoint,
// the strategy seam (state kept in the checkpoint) and the fold running
// outside the engine's lock.
#include "braid/aggregator/round_engine.h"

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/strategy_factory.h"
#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 8;

EngineOptions Options(int rounds, int min_clients, int expected) {
  EngineOptions options;
  options.job = "job";
  options.rounds = rounds;
  options.min_clients = min_clients;
  options.expected_clients = expected;
  options.round_timeout = absl::Seconds(60);
  options.heartbeat_timeout = absl::Seconds(10);
  options.start_grace = absl::Seconds(30);
  return options;
}

class RoundEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("round_engine", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    dir_ = cp->dir;
    checkpoint_ = std::move(cp->checkpoint);
  }

  // A new engine on checkpoint_, `n` clients t0..t(n-1) joined (10 examples
  // each), ticked once.
  void Start(const EngineOptions& options, int n,
             std::unique_ptr<AggregationStrategy> strategy = nullptr) {
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), &metrics_, &clock_,
                                            std::move(strategy));
    ids_.clear();
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<std::string> id = engine_->Join("t" + std::to_string(i), 0, 10);
      ASSERT_TRUE(id.ok()) << id.status();
      ids_.push_back(*id);
    }
    engine_->Tick();
  }

  Task TaskOf(int i) {
    absl::StatusOr<Task> t = engine_->NextTask(ids_[i], absl::ZeroDuration());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : Task();
  }

  // Client i's FIT update of `value` in every element, received and
  // committed.
  absl::Status Fit(int i, int round, float value) {
    absl::StatusOr<std::unique_ptr<Upload>> up =
        engine_->BeginFit(ids_[i], round, kFloats * sizeof(float), 10, absl::ZeroDuration());
    if (!up.ok()) return up.status();
    const std::vector<float> delta(kFloats, value);
    if (absl::Status s = (*up)->Write(0, delta.data(), kFloats * sizeof(float)); !s.ok()) return s;
    return engine_->CommitFit(*std::move(up), {0.5, 0, 10});
  }

  // Time passes by `d` while clients `alive` keep their heartbeats.
  void Pass(absl::Duration d, const std::vector<int>& alive) {
    for (absl::Duration step = absl::Seconds(1); d > absl::ZeroDuration(); d -= step) {
      clock_.Advance(std::min(step, d));
      for (int i : alive) ASSERT_TRUE(engine_->Touch(ids_[i]).ok()) << i;
      engine_->Tick();
    }
  }

  float Weight0() {
    float w = -1;
    EXPECT_TRUE(checkpoint_->ReadWeights(0, &w, sizeof(w)).ok());
    return w;
  }

  // The clients given a FIT task now.
  std::set<int> Sampled() {
    std::set<int> out;
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (TaskOf(static_cast<int>(i)).kind == TaskKind::kFit) out.insert(static_cast<int>(i));
    }
    return out;
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Checkpoint> checkpoint_;
  AggregatorMetrics metrics_{"job"};
  std::unique_ptr<RoundEngine> engine_;
  std::vector<std::string> ids_;
};

TEST_F(RoundEngineTest, SamplesMaxOfMinClientsAndFractionFitOfTheLive) {
  EngineOptions options = Options(1, 2, 5);
  options.fraction_fit = 0.5;  // ceil(0.5 * 5) = 3 > minClients 2
  options.seed = 42;
  Start(options, 5);
  const std::set<int> first = Sampled();
  EXPECT_EQ(first.size(), 3u);
  EXPECT_EQ(engine_->Status().phase, "Running");

  // The same seed samples the same clients.
  absl::StatusOr<TestCheckpoint> other = MakeTestCheckpoint("round_engine_c", kFloats);
  ASSERT_TRUE(other.ok()) << other.status();
  checkpoint_ = std::move(other->checkpoint);
  Start(options, 5);
  EXPECT_EQ(Sampled(), first);

  // A small fraction still samples minClients.
  absl::StatusOr<TestCheckpoint> third = MakeTestCheckpoint("round_engine_d", kFloats);
  ASSERT_TRUE(third.ok()) << third.status();
  checkpoint_ = std::move(third->checkpoint);
  options.fraction_fit = 0.1;  // ceil(0.5) = 1 < minClients 2
  Start(options, 5);
  EXPECT_EQ(Sampled().size(), 2u);
}

TEST_F(RoundEngineTest, ARoundStartsWithMinClientsOnlyAfterTheStartGrace) {
  Start(Options(1, 2, 3), 2);  // 2 of the 3 expected
  Pass(absl::Seconds(29), {0, 1});
  EXPECT_EQ(TaskOf(0).kind, TaskKind::kWait);
  Pass(absl::Seconds(1), {0, 1});
  EXPECT_EQ(TaskOf(0).kind, TaskKind::kFit);
  EXPECT_EQ(TaskOf(1).kind, TaskKind::kFit);
}

TEST_F(RoundEngineTest, TheRoundClosesAtItsDeadlineWithTheUpdatesIn) {
  Start(Options(2, 1, 2), 2);
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  ASSERT_TRUE(Fit(0, 1, 0.5f).ok());
  Pass(absl::Seconds(59), {0, 1});
  EXPECT_EQ(TaskOf(1).kind, TaskKind::kFit) << "closed before roundTimeout";
  EXPECT_TRUE(engine_->Status().history.empty());
  Pass(absl::Seconds(1), {0, 1});
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u) << s.message;
  EXPECT_EQ(s.history[0].participants, 1);
  EXPECT_EQ(s.history[0].sampled, 2);
  EXPECT_FLOAT_EQ(Weight0(), 0.5f);
  EXPECT_EQ(TaskOf(1).kind, TaskKind::kEvaluate);
  // The late update is refused.
  EXPECT_EQ(Fit(1, 1, 9.0f).code(), absl::StatusCode::kAborted);
}

TEST_F(RoundEngineTest, ASilentWorkerIsLostAfterTheHeartbeatTimeout) {
  Start(Options(1, 1, 2), 2);
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  ASSERT_TRUE(Fit(0, 1, 1.0f).ok());
  Pass(absl::Seconds(10), {0});
  EXPECT_EQ(engine_->Status().live_clients, 2);  // silent exactly the timeout
  EXPECT_TRUE(engine_->Status().history.empty());
  Pass(absl::Seconds(1), {0});
  // Lost: the round does not wait for it and closes long before its deadline.
  EXPECT_EQ(engine_->Status().live_clients, 1);
  EXPECT_EQ(engine_->Touch(ids_[1]).code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(engine_->Status().history.size(), 1u);
  EXPECT_EQ(TaskOf(0).kind, TaskKind::kEvaluate);
}

TEST_F(RoundEngineTest, RoundFailedNamesTheMissingWorkers) {
  Start(Options(1, 3, 3), 3);
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  ASSERT_TRUE(Fit(0, 1, 1.0f).ok());
  Pass(absl::Seconds(20), {0, 1});  // t2 goes silent and is lost; t1 sends nothing
  EXPECT_FALSE(engine_->Finished());
  Pass(absl::Seconds(40), {0, 1});  // the deadline
  ASSERT_TRUE(engine_->Finished());
  const EngineStatus s = engine_->Status();
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_EQ(s.reason, "RoundFailed");
  EXPECT_THAT(s.message, HasSubstr("1 of 3 sampled clients sent an update"));
  EXPECT_THAT(s.message, HasSubstr(ids_[1] + " (no update in time)"));
  EXPECT_THAT(s.message, HasSubstr(ids_[2] + " (lost: no heartbeat)"));
  EXPECT_THAT(s.message, ::testing::Not(HasSubstr(ids_[0])));
  EXPECT_EQ(TaskOf(0).kind, TaskKind::kDone);
}

TEST_F(RoundEngineTest, AResumedEngineEvaluatesTheAggregatedRoundThenStartsTheNext) {
  Start(Options(2, 2, 2), 2);
  ASSERT_TRUE(Fit(0, 1, 1.0f).ok());
  ASSERT_TRUE(Fit(1, 1, 3.0f).ok());
  engine_->Tick();
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kEvaluate);  // aggregated, not evaluated
  EXPECT_FLOAT_EQ(Weight0(), 2.0f);
  // The aggregator restarts.
  engine_.reset();
  absl::StatusOr<Checkpoint> reopened = Checkpoint::Open(dir_, "job", "");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  checkpoint_ = std::make_unique<Checkpoint>(*std::move(reopened));
  Start(Options(2, 2, 2), 2);
  Task t = TaskOf(0);
  EXPECT_EQ(t.kind, TaskKind::kEvaluate);
  EXPECT_EQ(t.round, 1);
  EXPECT_EQ(TaskOf(1).kind, TaskKind::kEvaluate);
  ASSERT_TRUE(engine_->ReportEval(ids_[0], 1, {0.3, 0.8, 10}).ok());
  ASSERT_TRUE(engine_->ReportEval(ids_[1], 1, {0.5, 0.6, 10}).ok());
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u);
  EXPECT_TRUE(s.history[0].evaluated);
  EXPECT_EQ(s.rounds_completed, 1);
  EXPECT_NEAR(s.history[0].eval_loss, 0.4, 1e-12);
  t = TaskOf(0);
  EXPECT_EQ(t.kind, TaskKind::kFit);
  EXPECT_EQ(t.round, 2);
}

// FedAvg, plus a count of rounds kept as the strategy's state.
class CountingStrategy final : public AggregationStrategy {
 public:
  explicit CountingStrategy(std::string* restored) : restored_(restored) {
    inner_ = *CreateStrategy(StrategyOptions{});
  }
  absl::string_view name() const override { return "counting"; }
  bool masked_input() const override { return false; }
  absl::Status BeginRound(const RoundBegin& r) override { return inner_->BeginRound(r); }
  absl::StatusOr<FoldResult> Fold(Upload& u) override { return inner_->Fold(u); }
  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& g) override {
    ++finished_;
    return inner_->Finish(g);
  }
  std::string SaveState() const override { return "rounds=" + std::to_string(finished_); }
  absl::Status RestoreState(absl::string_view state) override {
    *restored_ = std::string(state);
    if (!state.empty()) finished_ = std::stoi(std::string(state.substr(7)));
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<AggregationStrategy> inner_;
  std::string* restored_;
  int finished_ = 0;
};

TEST_F(RoundEngineTest, TheStrategysStateIsKeptInTheCheckpoint) {
  std::string restored = "unset";
  Start(Options(3, 1, 1), 1, std::make_unique<CountingStrategy>(&restored));
  EXPECT_EQ(restored, "");  // a fresh checkpoint
  ASSERT_TRUE(Fit(0, 1, 1.0f).ok());
  engine_->Tick();
  ASSERT_TRUE(engine_->ReportEval(ids_[0], 1, {0.1, 0.9, 1}).ok());
  ASSERT_TRUE(Fit(0, 2, 1.0f).ok());
  engine_->Tick();
  ASSERT_EQ(engine_->Status().history.size(), 2u);
  engine_.reset();
  absl::StatusOr<Checkpoint> reopened = Checkpoint::Open(dir_, "job", "");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  checkpoint_ = std::make_unique<Checkpoint>(*std::move(reopened));
  Start(Options(3, 1, 1), 1, std::make_unique<CountingStrategy>(&restored));
  EXPECT_EQ(restored, "rounds=2");
}

TEST_F(RoundEngineTest, AnUnknownStrategyFailsTheJob) {
  EngineOptions options = Options(1, 1, 1);
  options.strategy = "scaffold";
  engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), &metrics_, &clock_);
  ASSERT_TRUE(engine_->Finished());
  EXPECT_EQ(engine_->Status().reason, "InvalidStrategy");
  EXPECT_THAT(engine_->Status().message, HasSubstr("spec.strategy.name"));
}

// FedAvg whose Fold waits until the test releases it.
class BlockingStrategy final : public AggregationStrategy {
 public:
  BlockingStrategy(absl::Notification* entered, absl::Notification* release)
      : entered_(entered), release_(release) {
    inner_ = *CreateStrategy(StrategyOptions{});
  }
  absl::string_view name() const override { return "blocking"; }
  bool masked_input() const override { return false; }
  absl::Status BeginRound(const RoundBegin& r) override { return inner_->BeginRound(r); }
  absl::StatusOr<FoldResult> Fold(Upload& u) override {
    entered_->Notify();
    release_->WaitForNotification();
    return inner_->Fold(u);
  }
  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& g) override {
    return inner_->Finish(g);
  }
  std::string SaveState() const override { return ""; }
  absl::Status RestoreState(absl::string_view) override { return absl::OkStatus(); }

 private:
  std::unique_ptr<AggregationStrategy> inner_;
  absl::Notification* entered_;
  absl::Notification* release_;
};

TEST_F(RoundEngineTest, TheFoldRunsOutsideTheLockAndTheRoundWaitsForIt) {
  absl::Notification entered, release;
  Start(Options(1, 1, 2), 2, std::make_unique<BlockingStrategy>(&entered, &release));
  ASSERT_EQ(TaskOf(0).kind, TaskKind::kFit);
  absl::Status committed = absl::UnknownError("not run");
  std::thread uploader([&] { committed = Fit(0, 1, 2.0f); });
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // While the fold is in flight, other clients are served.
  absl::Notification served;
  std::thread other([&] {
    EXPECT_TRUE(engine_->Touch(ids_[1]).ok());
    EXPECT_EQ(engine_->Status().phase, "Running");
    served.Notify();
  });
  const bool not_blocked = served.WaitForNotificationWithTimeout(absl::Seconds(30));
  EXPECT_TRUE(not_blocked) << "the engine's lock is held during the fold";
  // The deadline passes during the fold: the round does not close under it.
  clock_.Advance(absl::Seconds(61));
  ASSERT_TRUE(engine_->Touch(ids_[1]).ok());
  engine_->Tick();
  EXPECT_TRUE(engine_->Status().history.empty());
  release.Notify();
  uploader.join();
  other.join();
  ASSERT_TRUE(committed.ok()) << committed;
  // Folded before the round closed: it counts.
  engine_->Tick();
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u) << s.message;
  EXPECT_EQ(s.history[0].participants, 1);
  EXPECT_FLOAT_EQ(Weight0(), 2.0f);
}

TEST_F(RoundEngineTest, ConcurrentUploadsAreAllFolded) {
  constexpr int kClients = 8;
  EngineOptions options = Options(1, kClients, kClients);
  options.upload_slots = 2;
  Start(options, kClients);
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<Upload>> up = engine_->BeginFit(
          ids_[i], 1, kFloats * sizeof(float), 10, absl::Seconds(30));
      if (!up.ok()) {
        results[i] = up.status();
        return;
      }
      const std::vector<float> delta(kFloats, static_cast<float>(i));
      results[i] = (*up)->Write(0, delta.data(), kFloats * sizeof(float));
      if (results[i].ok()) results[i] = engine_->CommitFit(*std::move(up), {0.5, 0, 10});
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_TRUE(results[i].ok()) << i << ": " << results[i];
  engine_->Tick();
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u) << s.message;
  EXPECT_EQ(s.history[0].participants, kClients);
  EXPECT_FLOAT_EQ(Weight0(), (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7) / 8.0f);
}

}  // namespace
}  // namespace braid::aggregator
