// The round engine and what clients claim: example counts weigh what the
// job decides (capped, counted, audited), reported numbers are checked
// before they reach the state, and a model that is not finite is never
// committed.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/audit_log.h"
#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 40;  // > 16: the vector lanes of the norm are used

// The value of counter `name` with labels {tenant, reason} in `metrics`, or 0.
double CounterValue(AggregatorMetrics& metrics, const std::string& name,
                    const std::string& tenant, const std::string& reason) {
  for (const prometheus::MetricFamily& f : metrics.registry().Collect()) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      bool t = false, r = false;
      for (const prometheus::ClientMetric::Label& l : m.label) {
        t |= l.name == "tenant" && l.value == tenant;
        r |= l.name == "reason" && l.value == reason;
      }
      if (t && r) return m.counter.value;
    }
  }
  return 0;
}

class RoundEngineClaimsTest : public ::testing::Test {
 protected:
  // An engine over a fresh checkpoint whose weights are all `initial`, with
  // tenants t0..t(n-1) (none declared maxExamples), each joined once with
  // `joined[i]` examples.
  void Start(const std::vector<int64_t>& joined, float initial = 0,
             Weighting weighting = Weighting::kExamples) {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("claims", kFloats, initial);
    ASSERT_TRUE(cp.ok()) << cp.status();
    dir_ = cp->dir;
    checkpoint_ = std::move(cp->checkpoint);
    absl::StatusOr<std::unique_ptr<audit::AuditLog>> log =
        audit::AuditLog::Open(dir_ + "/audit.jsonl");
    ASSERT_TRUE(log.ok()) << log.status();
    audit_ = *std::move(log);
    options_.job = "job";
    options_.rounds = 2;
    options_.min_clients = static_cast<int>(joined.size());
    options_.expected_clients = static_cast<int>(joined.size());
    options_.audit = audit_.get();
    options_.weighting.weighting = weighting;
    for (size_t i = 0; i < joined.size(); ++i) {
      options_.weighting.max_examples["t" + std::to_string(i)] = 0;
    }
    Restart();
    for (size_t i = 0; i < joined.size(); ++i) {
      absl::StatusOr<std::string> id = engine_->Join("t" + std::to_string(i), 0, joined[i]);
      ASSERT_TRUE(id.ok()) << id.status();
      ids_.push_back(*id);
    }
    engine_->Tick();
  }

  // A new engine on the same checkpoint directory, as a restarted
  // aggregator (the old engine is gone first).
  void Restart() {
    engine_.reset();
    if (checkpoint_ == nullptr) {
      absl::StatusOr<Checkpoint> cp = Checkpoint::Open(dir_, "job", "");
      ASSERT_TRUE(cp.ok()) << cp.status();
      checkpoint_ = std::make_unique<Checkpoint>(*std::move(cp));
    }
    engine_ = std::make_unique<RoundEngine>(options_, checkpoint_.get(), &metrics_, &clock_);
  }

  // Client i's FIT update of `value` in every element, claiming `examples`.
  absl::Status Fit(int i, float value, int64_t examples, ClientMetrics train = {0.5, 0, 10}) {
    absl::StatusOr<std::unique_ptr<Upload>> up =
        engine_->BeginFit(ids_[i], 1, kFloats * sizeof(float), examples, absl::ZeroDuration());
    if (!up.ok()) return up.status();
    const std::vector<float> delta(kFloats, value);
    if (absl::Status s = (*up)->Write(0, delta.data(), kFloats * sizeof(float)); !s.ok()) return s;
    return engine_->CommitFit(*std::move(up), train);
  }

  std::vector<float> Global() {
    std::vector<float> w(kFloats);
    EXPECT_TRUE(checkpoint_->ReadWeights(0, w.data(), kFloats * sizeof(float)).ok());
    return w;
  }

  std::vector<audit::Entry> AuditOf(const std::string& kind) {
    absl::StatusOr<audit::AuditFile> f = audit::ReadAuditLog(dir_ + "/audit.jsonl");
    EXPECT_TRUE(f.ok()) << f.status();
    std::vector<audit::Entry> out;
    if (!f.ok()) return out;
    for (const audit::Entry& e : f->entries) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<audit::AuditLog> audit_;
  AggregatorMetrics metrics_{"job"};
  EngineOptions options_;
  std::unique_ptr<RoundEngine> engine_;
  std::vector<std::string> ids_;
};

TEST_F(RoundEngineClaimsTest, AHugeClaimOfExamplesDoesNotTakeTheRoundOver) {
  // t2 joins claiming 2^40 examples and sends +100; the honest t0 and t1
  // (10 examples each) send +1. Trusted, t2 would be the new global (100);
  // capped at the heaviest other tenant it weighs as one of three.
  Start({10, 10, kMaxExamplesClaim});
  ASSERT_TRUE(Fit(0, 1, 10).ok());
  ASSERT_TRUE(Fit(1, 1, 10).ok());
  ASSERT_TRUE(Fit(2, 100, kMaxExamplesClaim).ok());
  engine_->Tick();
  ASSERT_EQ(engine_->Status().history.size(), 1u) << engine_->Status().message;
  for (float w : Global()) EXPECT_NEAR(w, 102.0 / 3, 1e-4);
  EXPECT_EQ(CounterValue(metrics_, "braid_aggregator_claims_capped_total", "t2", "other_tenants"),
            1);
  EXPECT_EQ(CounterValue(metrics_, "braid_aggregator_claims_capped_total", "t0", "other_tenants"),
            0);
  const std::vector<audit::Entry> capped = AuditOf(audit::kClaimCapped);
  ASSERT_EQ(capped.size(), 1u);
  EXPECT_EQ(capped[0].details["tenant"], "t2");
  EXPECT_EQ(capped[0].details["claimed"], kMaxExamplesClaim);
  EXPECT_EQ(capped[0].details["counted"], 10.0);
  EXPECT_EQ(capped[0].details["reason"], "other_tenants");
}

TEST_F(RoundEngineClaimsTest, ClaimsAboveTheLimitAreRefusedCountedAndAuditedOnce) {
  Start({10, 10});
  EXPECT_EQ(engine_->Join("t0", 1, int64_t{1} << 62).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fit(0, 1, int64_t{1} << 62).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fit(0, 1, int64_t{1} << 62).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CounterValue(metrics_, "braid_aggregator_claims_refused_total", "t0", "num_examples"),
            3);
  // A tenant the job does not have is counted as "other", not as a new label.
  EXPECT_FALSE(engine_->Join("mallory", 0, -1).ok());
  EXPECT_EQ(
      CounterValue(metrics_, "braid_aggregator_claims_refused_total", "other", "num_examples"), 1);
  // Audited once per client (or joining tenant) and round.
  EXPECT_EQ(AuditOf(audit::kClaimRefused).size(), 3u);
  // The client may still send an honest update: nothing was lost.
  ASSERT_TRUE(Fit(0, 1, 10).ok());
  ASSERT_TRUE(Fit(1, 3, 10).ok());
  engine_->Tick();
  for (float w : Global()) EXPECT_FLOAT_EQ(w, 2);
}

TEST_F(RoundEngineClaimsTest, UniformWeightingIgnoresTheClaims) {
  Start({1, 1000}, 0, Weighting::kUniform);
  ASSERT_TRUE(Fit(0, 1, 1).ok());
  ASSERT_TRUE(Fit(1, 3, 1000).ok());
  engine_->Tick();
  for (float w : Global()) EXPECT_FLOAT_EQ(w, 2);
  EXPECT_EQ(AuditOf(audit::kClaimCapped).size(), 0u);
}

TEST_F(RoundEngineClaimsTest, ANanTrainingLossIsRefusedAndTheCheckpointStillLoads) {
  Start({10, 10});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const absl::Status refused = Fit(0, 1, 10, {nan, 0, 10});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("train.loss"));
  EXPECT_EQ(CounterValue(metrics_, "braid_aggregator_claims_refused_total", "t0", "train_metrics"),
            1);
  // The client is not counted as reported: its next, honest update goes in.
  ASSERT_TRUE(Fit(0, 1, 10, {0.25, 0, 10}).ok());
  ASSERT_TRUE(Fit(1, 1, 10, {0.75, 0, 10}).ok());
  engine_->Tick();
  // Evaluation: a NaN eval loss is refused as well, then an honest one taken.
  absl::StatusOr<Task> task = engine_->NextTask(ids_[0], absl::ZeroDuration());
  ASSERT_TRUE(task.ok() && task->kind == TaskKind::kEvaluate) << task.status();
  EXPECT_EQ(engine_->ReportEval(ids_[0], 1, {nan, 0.5, 10}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->ReportEval(ids_[0], 1, {0.1, 1.5, 10}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine_->ReportEval(ids_[0], 1, {0.1, 0.5, 10}).ok());
  ASSERT_TRUE(engine_->ReportEval(ids_[1], 1, {0.3, 0.5, 10}).ok());
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.rounds_completed, 1) << s.message;
  EXPECT_DOUBLE_EQ(s.history[0].train_loss, 0.5);
  EXPECT_NEAR(s.history[0].eval_loss, 0.2, 1e-12);
  // A restarted aggregator loads the checkpoint and goes on.
  checkpoint_.reset();
  Restart();
  EXPECT_EQ(engine_->Status().rounds_completed, 1);
  EXPECT_EQ(engine_->Status().phase, "Running");
}

TEST_F(RoundEngineClaimsTest, AModelThatIsNotFiniteIsNeverCommitted) {
  // Finite updates near float's limit on a global already there: the average
  // overflows. The round fails, says why, and the old global stays.
  Start({10, 10}, 3e38f);
  ASSERT_TRUE(Fit(0, 3e38f, 10).ok());
  ASSERT_TRUE(Fit(1, 3e38f, 10).ok());
  engine_->Tick();
  const EngineStatus s = engine_->Status();
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_EQ(s.reason, "NonFiniteModel");
  EXPECT_THAT(s.message, HasSubstr("tensor 'w' element 0 is inf"));
  EXPECT_THAT(s.message, HasSubstr("maxUpdateNorm"));
  for (float w : Global()) EXPECT_EQ(w, 3e38f);
  checkpoint_.reset();
  Restart();  // and the checkpoint still loads
  EXPECT_EQ(engine_->Status().reason, "NonFiniteModel");
}

TEST_F(RoundEngineClaimsTest, HugeFiniteValuesWithAHugeClaimKeepTheModelFinite) {
  // The red team's second attack: values of 1e30 claiming 1e12 examples
  // made every weight +Inf (1e12 * 1e30 overflows float).
  Start({10, 10, 1000000000000});
  ASSERT_TRUE(Fit(0, 1, 10).ok());
  ASSERT_TRUE(Fit(1, 1, 10).ok());
  ASSERT_TRUE(Fit(2, 1e30f, 1000000000000).ok());
  engine_->Tick();
  const EngineStatus s = engine_->Status();
  ASSERT_EQ(s.history.size(), 1u) << s.message;
  for (float w : Global()) EXPECT_TRUE(std::isfinite(w)) << w;
  EXPECT_TRUE(std::isfinite(s.history[0].update_norm_mean));
  checkpoint_.reset();
  Restart();
  EXPECT_NE(engine_->Status().phase, "Failed");
}

}  // namespace
}  // namespace braid::aggregator
