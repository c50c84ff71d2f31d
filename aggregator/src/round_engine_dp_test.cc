// The round engine with client-level differential privacy: clipping,
// central noise, the fixed denominator, epsilon in the records and status,
// and the budget stop.
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/dp/gaussian_noise.h"
#include "braid/core/dp/rdp_accountant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 4;
constexpr double kClip = 1.0;
constexpr double kNoise = 0.8;
constexpr double kDelta = 1e-5;
constexpr uint64_t kSeed = 7;

// Epsilon after `rounds` rounds with every client sampled, from the
// accountant on its own (itself checked against dp-accounting).
double Epsilon(int rounds) {
  dp::RdpAccountant accountant;
  EXPECT_TRUE(accountant.AddRounds(1.0, kNoise, rounds).ok());
  return *accountant.Epsilon(kDelta);
}

class RoundEngineDpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("round_engine_dp", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    dir_ = cp->dir;
    checkpoint_ = std::move(cp->checkpoint);
  }

  // An engine for two clients with DP on, not started.
  void Create(double max_epsilon, int rounds) {
    EngineOptions options;
    options.job = "job";
    options.rounds = rounds;
    options.min_clients = 2;
    options.expected_clients = 2;
    options.dp.enabled = true;
    options.dp.clip_norm = kClip;
    options.dp.noise_multiplier = kNoise;
    options.dp.delta = kDelta;
    options.dp.max_epsilon = max_epsilon;
    options.dp.noise_seed = kSeed;
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), &metrics_);
  }

  // The value of the gauge braid_aggregator_privacy_epsilon.
  double EpsilonGauge() {
    for (const prometheus::MetricFamily& f : metrics_.registry().Collect()) {
      if (f.name == "braid_aggregator_privacy_epsilon" && !f.metric.empty()) {
        return f.metric[0].gauge.value;
      }
    }
    ADD_FAILURE() << "no braid_aggregator_privacy_epsilon";
    return -1;
  }

  // Create, and its clients joined.
  void Start(double max_epsilon, int rounds = 5) {
    Create(max_epsilon, rounds);
    ids_.clear();
    for (int replica = 0; replica < 2; ++replica) {
      absl::StatusOr<std::string> id = engine_->Join("t", replica, 10 + 90 * replica);
      ASSERT_TRUE(id.ok()) << id.status();
      ids_.push_back(*id);
    }
    engine_->Tick();
  }

  // Runs the FIT and EVALUATE phases of the current round with `deltas`.
  void RunRound(const std::vector<std::vector<float>>& deltas) {
    for (size_t i = 0; i < ids_.size(); ++i) {
      absl::StatusOr<Task> task = engine_->NextTask(ids_[i], absl::ZeroDuration());
      ASSERT_TRUE(task.ok()) << task.status();
      ASSERT_EQ(task->kind, TaskKind::kFit) << "client " << i;
      absl::StatusOr<std::unique_ptr<Upload>> upload = engine_->BeginFit(
          ids_[i], task->round, kFloats * sizeof(float), 10 + 90 * i, absl::ZeroDuration());
      ASSERT_TRUE(upload.ok()) << upload.status();
      ASSERT_TRUE((*upload)->Write(0, deltas[i].data(), kFloats * sizeof(float)).ok());
      ASSERT_TRUE(engine_->CommitFit(*std::move(upload), {0.5, 0, 10}).ok());
    }
    for (const std::string& id : ids_) {
      absl::StatusOr<Task> task = engine_->NextTask(id, absl::ZeroDuration());
      ASSERT_TRUE(task.ok()) << task.status();
      ASSERT_EQ(task->kind, TaskKind::kEvaluate);
      ASSERT_TRUE(engine_->ReportEval(id, task->round, {0.1, 0.9, 5}).ok());
    }
  }

  std::vector<float> Weights() {
    std::vector<float> w(kFloats);
    EXPECT_TRUE(checkpoint_->ReadWeights(0, w.data(), sizeof(float) * kFloats).ok());
    return w;
  }

  std::string dir_;
  AggregatorMetrics metrics_{"job"};
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<RoundEngine> engine_;
  std::vector<std::string> ids_;
};

TEST_F(RoundEngineDpTest, UpdatesAreClippedNoisedAndAveragedUniformly) {
  Start(/*max_epsilon=*/100);
  // Norm 10 (clipped to 1) and norm 0.5 (kept), with 10 and 100 examples:
  // DP-FedAvg ignores the example counts.
  const std::vector<std::vector<float>> deltas = {{6, 8, 0, 0}, {0, 0, 0.3f, 0.4f}};
  RunRound(deltas);
  // Reference: the same seeded noise stream on its own.
  std::vector<float> noise(kFloats, 0.0f);
  absl::StatusOr<dp::GaussianSampler> sampler = dp::GaussianSampler::Seeded(kSeed * 1000003u + 1);
  ASSERT_TRUE(sampler.ok());
  sampler->AddNoise(absl::MakeSpan(noise), kNoise * kClip);
  const std::vector<double> clipped_sum = {0.6, 0.8, 0.3, 0.4};
  const std::vector<float> w = Weights();
  for (int i = 0; i < kFloats; ++i) {
    EXPECT_NEAR(w[i], (clipped_sum[i] + noise[i]) / 2, 1e-5) << i;
  }
  // The noise is really there: at stddev 0.8 the chance all four land
  // within 1e-3 of zero is negligible.
  double noise_norm = 0;
  for (float x : noise) noise_norm += std::fabs(x);
  EXPECT_GT(noise_norm, 1e-3);
  const EngineStatus status = engine_->Status();
  ASSERT_EQ(status.history.size(), 1u);
  EXPECT_NEAR(status.history[0].epsilon, Epsilon(1), 1e-9);
  EXPECT_EQ(status.history[0].sampling_rate, 1.0);
  EXPECT_TRUE(status.privacy.enabled);
  EXPECT_NEAR(status.privacy.epsilon, Epsilon(1), 1e-9);
  EXPECT_EQ(status.privacy.delta, kDelta);
  EXPECT_EQ(status.privacy.max_epsilon, 100);
  EXPECT_NEAR(EpsilonGauge(), Epsilon(1), 1e-9);
}

TEST_F(RoundEngineDpTest, JobStopsBeforeTheRoundThatWouldExceedTheBudget) {
  const double budget = (Epsilon(2) + Epsilon(3)) / 2;  // two rounds fit, a third does not
  Start(budget, /*rounds=*/5);
  const std::vector<std::vector<float>> deltas = {{0.1f, 0, 0, 0}, {0, 0.1f, 0, 0}};
  RunRound(deltas);
  RunRound(deltas);
  engine_->Tick();
  ASSERT_TRUE(engine_->Finished());
  const EngineStatus status = engine_->Status();
  EXPECT_EQ(status.phase, "Succeeded");
  EXPECT_EQ(status.reason, "PrivacyBudgetExhausted");
  EXPECT_EQ(status.rounds_completed, 2);
  EXPECT_THAT(status.message, HasSubstr("round 3 would spend epsilon"));
  EXPECT_THAT(status.message, HasSubstr("stopped after 2 rounds"));
  EXPECT_LE(status.privacy.epsilon, budget);
  EXPECT_NEAR(status.privacy.epsilon, Epsilon(2), 1e-9);
  EXPECT_EQ(engine_->NextTask(ids_[0], absl::ZeroDuration())->kind, TaskKind::kDone);

  // A restarted aggregator reads the same spent budget from the checkpoint
  // and stays stopped.
  absl::StatusOr<Checkpoint> reopened = Checkpoint::Open(dir_, "job", "");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_EQ(reopened->state().history.size(), 2u);
  EXPECT_NEAR(reopened->state().history[1].epsilon, Epsilon(2), 1e-9);
  EXPECT_EQ(reopened->state().reason, "PrivacyBudgetExhausted");
  engine_.reset();
  checkpoint_ = std::make_unique<Checkpoint>(*std::move(reopened));
  Create(budget, /*rounds=*/5);
  engine_->Tick();
  EXPECT_TRUE(engine_->Finished());
  EXPECT_EQ(engine_->Status().reason, "PrivacyBudgetExhausted");
  EXPECT_EQ(engine_->Status().phase, "Succeeded");
}

TEST_F(RoundEngineDpTest, ABudgetTooSmallForOneRoundFailsTheJobWithoutTraining) {
  Create(/*max_epsilon=*/Epsilon(1) / 2, /*rounds=*/5);
  engine_->Tick();  // ends the job at once, without waiting for workers
  ASSERT_TRUE(engine_->Finished());
  const EngineStatus status = engine_->Status();
  EXPECT_EQ(status.phase, "Failed");
  EXPECT_EQ(status.reason, "PrivacyBudgetExhausted");
  EXPECT_THAT(status.message, HasSubstr("no round can run within the budget"));
  EXPECT_EQ(status.history.size(), 0u);
  absl::StatusOr<std::string> id = engine_->Join("t", 0, 10);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("PrivacyBudgetExhausted"));
}

TEST_F(RoundEngineDpTest, AResumedEngineKeepsAccounting) {
  Start(/*max_epsilon=*/100, /*rounds=*/3);
  const std::vector<std::vector<float>> deltas = {{0.1f, 0, 0, 0}, {0, 0.1f, 0, 0}};
  RunRound(deltas);
  Start(/*max_epsilon=*/100, /*rounds=*/3);  // a new engine on the same checkpoint
  EXPECT_NEAR(engine_->Status().privacy.epsilon, Epsilon(1), 1e-9);
  RunRound(deltas);
  const EngineStatus status = engine_->Status();
  ASSERT_EQ(status.history.size(), 2u);
  EXPECT_NEAR(status.history[1].epsilon, Epsilon(2), 1e-9);
}

}  // namespace
}  // namespace braid::aggregator
