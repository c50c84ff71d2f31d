// The round engine under secure aggregation, driven through its public API
// by real core/secagg clients: the new global model is FedAvg by examples of
// the (never seen) updates; a failed attempt is run again and the third
// failure ends the job with SecureAggregationFailed; plaintext uploads are
// refused.
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/testing/fake_clock.h"
#include "braid/core/secagg/client.h"
#include "braid/core/secagg/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 64;
constexpr int64_t kExamples[] = {10, 20, 30};

class RoundEngineSecAggTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("round_engine_secagg", kFloats, 1.0f);
    ASSERT_TRUE(cp.ok()) << cp.status();
    checkpoint_ = std::move(cp->checkpoint);
  }

  // The engine, its three clients joined. `dp`: distributed DP on.
  // `max_examples`: each tenant's declared maxExamples (0: none); `joined`:
  // the examples each client joins with.
  void Create(bool dp = false, int64_t max_examples = 100,
              std::vector<int64_t> joined = {kExamples[0], kExamples[1], kExamples[2]}) {
    EngineOptions options;
    for (int i = 0; i < 3; ++i) {
      options.weighting.max_examples["t" + std::to_string(i)] = max_examples;
    }
    options.job = "job";
    options.rounds = 2;
    options.min_clients = 2;
    options.expected_clients = 3;
    options.start_grace = absl::Seconds(1);
    options.secagg.enabled = true;
    options.secagg.stage_timeout = absl::Seconds(5);
    if (dp) {
      options.dp.enabled = true;
      options.dp.central_noise = false;
      options.dp.clip_norm = 0.5;
      options.dp.noise_multiplier = 0.8;
      options.dp.max_epsilon = 100;
    }
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), &metrics_,
                                            &clock_);
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<std::string> id = engine_->Join("t" + std::to_string(i), 0, joined[i]);
      ASSERT_TRUE(id.ok()) << id.status();
      ids_.push_back(*id);
    }
    engine_->Tick();
  }

  std::vector<float> Update(int i) {
    std::vector<float> u(kFloats);
    for (int j = 0; j < kFloats; ++j) u[j] = 0.01f * static_cast<float>((i + 1) * (j % 5) - 3);
    return u;
  }

  // SecAggStep without waiting; the answer's payload (empty if pending).
  std::string Step(int i, int stage, const std::string& payload) {
    absl::StatusOr<SecAggAnswer> a = engine_->SecAggStep(ids_[i], task_[i].round,
                                                         task_[i].secagg->config.round_id, stage,
                                                         payload, absl::ZeroDuration());
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? a->payload : "";
  }

  void FetchTasks() {
    task_.clear();
    clients_.clear();
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<Task> t = engine_->NextTask(ids_[i], absl::ZeroDuration());
      ASSERT_TRUE(t.ok()) << t.status();
      ASSERT_EQ(t->kind, TaskKind::kFit);
      ASSERT_TRUE(t->secagg.has_value());
      task_.push_back(*t);
      auto c = secagg::Client::Create(t->secagg->config, t->secagg->self);
      ASSERT_TRUE(c.ok()) << c.status();
      clients_.push_back(*std::move(c));
    }
  }

  FakeClock clock_;
  std::unique_ptr<Checkpoint> checkpoint_;
  AggregatorMetrics metrics_{"job"};
  std::unique_ptr<RoundEngine> engine_;
  std::vector<std::string> ids_;
  std::vector<Task> task_;
  std::vector<std::unique_ptr<secagg::Client>> clients_;
};
TEST_F(RoundEngineSecAggTest, TheNewModelIsFedAvgByExamplesOfTheMaskedUpdates) {
  Create();
  FetchTasks();
  EXPECT_DOUBLE_EQ(task_[0].secagg->weight, 10.0 / 20);  // examples / mean examples
  EXPECT_DOUBLE_EQ(task_[2].secagg->weight, 30.0 / 20);
  EXPECT_EQ(task_[0].secagg->noise_stddev, 0);
  for (int i = 0; i < 3; ++i) Step(i, 1, secagg::Encode(*clients_[i]->AdvertiseKeys()));
  for (int i = 0; i < 3; ++i) {
    auto dir = secagg::DecodeKeyDirectory(Step(i, 1, ""));
    ASSERT_TRUE(dir.ok()) << dir.status();
    Step(i, 2, secagg::Encode(*clients_[i]->ShareKeys(*dir)));
  }
  for (int i = 0; i < 3; ++i) {
    auto fwd = secagg::DecodeForwardedShares(Step(i, 2, ""));
    ASSERT_TRUE(fwd.ok()) << fwd.status();
    std::vector<float> u = Update(i);
    for (float& x : u) x *= static_cast<float>(task_[i].secagg->weight);
    auto masked = clients_[i]->MaskInput(*fwd, u);
    ASSERT_TRUE(masked.ok());
    // A plaintext upload is refused under secure aggregation.
    EXPECT_EQ(engine_->BeginFit(ids_[i], 1, kFloats * 4, kExamples[i], absl::ZeroDuration())
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument);
    auto upload = engine_->BeginFit(ids_[i], 1, kFloats * 4, kExamples[i], absl::ZeroDuration(),
                                    /*masked=*/true);
    ASSERT_TRUE(upload.ok()) << upload.status();
    ASSERT_TRUE((*upload)->Write(0, masked->values.data(), kFloats * 4).ok());
    ASSERT_TRUE(engine_->CommitFit(*std::move(upload), {0.5, 0, kExamples[i]}).ok());
  }
  for (int i = 0; i < 3; ++i) {
    auto req = secagg::DecodeUnmaskRequest(Step(i, 3, ""));
    ASSERT_TRUE(req.ok()) << req.status();
    Step(i, 4, secagg::Encode(*clients_[i]->Unmask(*req)));
  }
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u) << s.message;
  EXPECT_EQ(s.history[0].participants, 3);
  std::vector<float> global(kFloats);
  ASSERT_TRUE(checkpoint_->ReadWeights(0, global.data(), kFloats * 4).ok());
  for (int j = 0; j < kFloats; ++j) {
    double want = 0;
    for (int i = 0; i < 3; ++i) want += kExamples[i] * Update(i)[j];
    want = 1.0 + want / (10 + 20 + 30);
    EXPECT_NEAR(global[j], want, 1e-6) << j;
  }
}

TEST_F(RoundEngineSecAggTest, AClaimOfExamplesCannotCrushTheOtherClientsPublicWeights) {
  // t2 joins claiming 2^40 examples and declared no maxExamples: its public
  // weight is capped at the heaviest other tenant's (20), so the honest
  // clients' inputs are not scaled to nothing and t2's (clipped to the
  // quantization range like any) cannot stand for the average.
  Create(/*dp=*/false, /*max_examples=*/0, {10, 20, kMaxExamplesClaim});
  FetchTasks();
  EXPECT_DOUBLE_EQ(task_[0].secagg->weight, 10.0 / (50.0 / 3));
  EXPECT_DOUBLE_EQ(task_[1].secagg->weight, 20.0 / (50.0 / 3));
  EXPECT_DOUBLE_EQ(task_[2].secagg->weight, 20.0 / (50.0 / 3));
  // Declared, the same claim counts for the declaration.
  engine_.reset();
  ids_.clear();
  Create(/*dp=*/false, /*max_examples=*/10, {10, 20, kMaxExamplesClaim});
  FetchTasks();
  for (const Task& t : task_) EXPECT_DOUBLE_EQ(t.secagg->weight, 1);
  // A claim above the limit is refused at Join.
  EXPECT_EQ(engine_->Join("t0", 1, kMaxExamplesClaim + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RoundEngineSecAggTest, DistributedDpWeighsClientsOneAndSplitsTheNoiseOverTheThreshold) {
  Create(/*dp=*/true);
  FetchTasks();
  for (const Task& t : task_) {
    EXPECT_EQ(t.secagg->weight, 1);
    EXPECT_EQ(t.secagg->config.threshold, 2u);  // a majority of 3
    // Any >= 2 survivors give the sum at least the central noise 0.8 * 0.5.
    EXPECT_NEAR(t.secagg->noise_stddev, 0.8 * 0.5 / std::sqrt(2.0), 1e-12);
  }
}

TEST_F(RoundEngineSecAggTest, AFailedAttemptRunsAgainAndTheThirdFailureEndsTheJob) {
  Create();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    FetchTasks();
    const uint64_t round_id = task_[0].secagg->config.round_id;
    Step(0, 1, secagg::Encode(*clients_[0]->AdvertiseKeys()));  // the others never do
    clock_.Advance(absl::Seconds(6));                                   // past the stage deadline
    engine_->Tick();
    // The attempt is over for the one who advertised.
    absl::StatusOr<SecAggAnswer> late =
        engine_->SecAggStep(ids_[0], 1, round_id, 1, "", absl::ZeroDuration());
    EXPECT_EQ(late.status().code(), absl::StatusCode::kAborted);
    EXPECT_THAT(late.status().message(), HasSubstr("failed at AdvertiseKeys"));
    const EngineStatus s = engine_->Status();
    if (attempt < 3) {
      EXPECT_EQ(s.phase, "Pending") << s.message;
      EXPECT_THAT(s.message, HasSubstr(absl::StrCat("attempt ", attempt, " of 3 failed")));
      for (const std::string& id : ids_) ASSERT_TRUE(engine_->Touch(id).ok());
      clock_.Advance(absl::Seconds(2));  // a new attempt starts once all are live
      engine_->Tick();
    } else {
      EXPECT_EQ(s.phase, "Failed");
      EXPECT_EQ(s.reason, "SecureAggregationFailed");
      EXPECT_THAT(s.message, HasSubstr("only 1 of 3 clients remain"));
    }
  }
}

}  // namespace
}  // namespace braid::aggregator
