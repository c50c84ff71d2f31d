#include "braid/worker/job_replica_trainer.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;

// A JobTrainer whose training adds `step` to every weight; records the
// calls the replica trainer makes.
class StepTrainer final : public JobTrainer {
 public:
  float step = 3;
  TensorList weights = {Tensor::F32("w", {2}, {0, 0}), Tensor::F32("b", {1}, {0})};
  std::vector<std::pair<int, int64_t>> fits;  // (epochs, shuffle seed)
  int set_weights = 0;

  TensorList Weights() const override { return weights; }
  absl::Status SetWeights(const TensorList& w) override {
    ++set_weights;
    weights = w;
    return absl::OkStatus();
  }
  int64_t num_train_examples() const override { return 40; }
  absl::StatusOr<FitResult> Fit(int epochs, int64_t shuffle_seed) override {
    fits.emplace_back(epochs, shuffle_seed);
    for (Tensor& t : weights) {
      for (int64_t i = 0; i < t.NumElements(); ++i) t.f32()[i] += step;
    }
    return FitResult{0.7, 40};
  }
  absl::StatusOr<EvalResult> Evaluate() override {
    EvalResult r;
    r.loss = 0.4;
    r.accuracy = 0.9;
    r.num_examples = 10;
    return r;
  }
  absl::Status Export(const std::string&) override { return absl::UnimplementedError("no"); }
};

spec::JobSpec Job() {
  spec::JobSpec job;
  job.training.local_epochs = 3;
  return job;
}

TensorList Global() { return {Tensor::F32("w", {2}, {1, 2}), Tensor::F32("b", {1}, {-1})}; }

std::vector<float> Flat(const TensorList& tensors) {
  std::vector<float> out;
  for (const Tensor& t : tensors) out.insert(out.end(), t.f32(), t.f32() + t.NumElements());
  return out;
}

TEST(JobReplicaTrainerTest, FitTrainsFromTheGlobalWeightsAndReturnsLocalMinusGlobal) {
  auto owned = std::make_unique<StepTrainer>();
  StepTrainer& inner = *owned;
  JobReplicaTrainer trainer(Job(), /*replica=*/1, std::move(owned));
  EXPECT_EQ(trainer.num_train_examples(), 40);

  absl::StatusOr<LocalUpdate> update = trainer.Fit(/*round=*/2, Global());
  ASSERT_TRUE(update.ok()) << update.status();
  EXPECT_EQ(inner.set_weights, 1);
  // localEpochs epochs, shuffled by round * 1000 + replica.
  EXPECT_THAT(inner.fits, ElementsAre(std::make_pair(3, int64_t{2001})));
  EXPECT_THAT(Flat(update->delta), ElementsAre(3, 3, 3));
  EXPECT_EQ(update->delta[0].name, "w");
  EXPECT_EQ(update->num_examples, 40);
  EXPECT_DOUBLE_EQ(update->train.loss, 0.7);
  EXPECT_EQ(update->train.num_examples, 40);
}

TEST(JobReplicaTrainerTest, WithDifferentialPrivacyTheWholeUpdateIsClippedToClipNorm) {
  spec::JobSpec job = Job();
  job.privacy.differential_privacy = true;
  job.privacy.dp.clip_norm = 1.5;
  JobReplicaTrainer trainer(job, 0, std::make_unique<StepTrainer>());
  absl::StatusOr<LocalUpdate> update = trainer.Fit(1, Global());
  ASSERT_TRUE(update.ok()) << update.status();
  // (3, 3, 3) has norm 3 * sqrt(3); scaled to 1.5 over all tensors together.
  const float each = static_cast<float>(1.5 / std::sqrt(3.0));
  EXPECT_THAT(Flat(update->delta), Pointwise(FloatNear(1e-6f), {each, each, each}));
}

TEST(JobReplicaTrainerTest, EvaluateScoresTheGlobalWeights) {
  auto owned = std::make_unique<StepTrainer>();
  StepTrainer& inner = *owned;
  JobReplicaTrainer trainer(Job(), 0, std::move(owned));
  absl::StatusOr<UpdateMetrics> eval = trainer.Evaluate(1, Global());
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(Flat(inner.weights), Flat(Global()));
  EXPECT_DOUBLE_EQ(eval->loss, 0.4);
  EXPECT_DOUBLE_EQ(eval->accuracy, 0.9);
  EXPECT_EQ(eval->num_examples, 10);
}

}  // namespace
}  // namespace braid::worker
