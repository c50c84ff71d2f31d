#include "braid/worker/local_trainer.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::worker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kFeatures = 4;
constexpr int kClasses = 3;

spec::JobSpec Job(const std::string& optimizer = "sgd", int64_t seed = 1) {
  spec::JobSpec job;
  job.model.kind = "mlp";
  job.model.mlp.hidden = {16, 8};
  job.model.mlp.num_classes = kClasses;
  job.training.optimizer = optimizer;
  job.training.learning_rate = optimizer == "adam" ? 0.01 : 0.1;
  job.training.batch_size = 32;
  job.training.seed = seed;
  return job;
}

std::unique_ptr<LocalTrainer> MakeTrainer(const spec::JobSpec& job) {
  auto trainer = LocalTrainer::Create(job, kFeatures);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return std::move(trainer).value();
}

// Three well-separated Gaussian blobs in kFeatures dimensions.
TabularData Blobs(int rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  std::vector<float> x;
  std::vector<int64_t> y;
  for (int i = 0; i < rows; ++i) {
    const int c = i % kClasses;
    for (int j = 0; j < kFeatures; ++j) x.push_back((j == c ? 3.0f : 0.0f) + noise(rng));
    y.push_back(c);
  }
  TabularData data;
  data.features = torch::from_blob(x.data(), {rows, kFeatures}, torch::kFloat).clone();
  data.labels = torch::from_blob(y.data(), {rows}, torch::kLong).clone();
  return data;
}

bool SameBytes(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].data != b[i].data) return false;
  }
  return true;
}

TEST(LocalTrainerTest, WeightsFollowTheMlpLayout) {
  auto trainer = MakeTrainer(Job());
  const TensorList w = trainer->Weights();
  ASSERT_EQ(w.size(), 6u);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"layers.0.weight", {16, kFeatures}}, {"layers.0.bias", {16}},
      {"layers.1.weight", {8, 16}},         {"layers.1.bias", {8}},
      {"layers.2.weight", {kClasses, 8}},   {"layers.2.bias", {kClasses}}};
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(w[i].name, expected[i].first);
    EXPECT_EQ(w[i].shape, expected[i].second) << w[i].name;
    EXPECT_EQ(w[i].dtype, DType::kF32);
    EXPECT_EQ(w[i].data.size(), w[i].NumElements() * sizeof(float)) << w[i].name;
  }
}

TEST(LocalTrainerTest, InitializationDependsOnlyOnTheSeed) {
  EXPECT_TRUE(
      SameBytes(MakeTrainer(Job("sgd", 5))->Weights(), MakeTrainer(Job("adam", 5))->Weights()));
  // Torch's global generator plays no part.
  torch::manual_seed(123);
  const TensorList a = MakeTrainer(Job("sgd", 5))->Weights();
  torch::manual_seed(456);
  EXPECT_TRUE(SameBytes(a, MakeTrainer(Job("sgd", 5))->Weights()));
  EXPECT_FALSE(SameBytes(a, MakeTrainer(Job("sgd", 6))->Weights()));
  // Values lie in PyTorch's default Linear range, +-1/sqrt(fan_in).
  for (float v : std::vector<float>(a[0].f32(), a[0].f32() + a[0].NumElements())) {
    EXPECT_LE(std::fabs(v), 0.5f);  // fan_in 4
  }
}

TEST(LocalTrainerTest, WeightsRoundTripThroughSetWeights) {
  auto source = MakeTrainer(Job("sgd", 1));
  auto target = MakeTrainer(Job("sgd", 2));
  TensorList w = source->Weights();
  for (Tensor& t : w) {
    for (int64_t k = 0; k < t.NumElements(); ++k) t.f32()[k] += 0.25f * static_cast<float>(k % 3);
  }
  ASSERT_TRUE(target->SetWeights(w).ok());
  EXPECT_TRUE(SameBytes(target->Weights(), w));
  // And the model uses them: same weights, same predictions.
  ASSERT_TRUE(source->SetWeights(w).ok());
  const TabularData data = Blobs(30, 3);
  EXPECT_EQ(source->Evaluate(data).loss, target->Evaluate(data).loss);
}

TEST(LocalTrainerTest, SetWeightsRefusesAnotherLayoutNamingTheTensor) {
  auto trainer = MakeTrainer(Job());
  const TensorList good = trainer->Weights();
  auto refused = [&](const TensorList& w) {
    const absl::Status s = trainer->SetWeights(w);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(SameBytes(trainer->Weights(), good)) << "a refused update changed the model";
    return std::string(s.message());
  };

  TensorList renamed = good;
  renamed[2].name = "layers.1.kernel";
  EXPECT_THAT(refused(renamed),
              AllOf(HasSubstr("'layers.1.weight'"), HasSubstr("'layers.1.kernel'")));

  TensorList swapped = good;
  std::swap(swapped[0], swapped[1]);
  EXPECT_THAT(refused(swapped), HasSubstr("'layers.0.weight'"));

  // A model built for 5 features.
  auto other = LocalTrainer::Create(Job(), kFeatures + 1);
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(refused((*other)->Weights()),
              AllOf(HasSubstr("'layers.0.weight'"), HasSubstr("[16, 5]"), HasSubstr("[16, 4]")));

  TensorList fewer = good;
  fewer.pop_back();
  EXPECT_THAT(refused(fewer), HasSubstr("expected 6 tensors"));

  TensorList half = good;
  half[3].dtype = DType::kF16;
  half[3].data.resize(half[3].data.size() / 2);
  EXPECT_THAT(refused(half), AllOf(HasSubstr("'layers.1.bias'"), HasSubstr("F16")));

  TensorList short_data = good;
  short_data[4].data.pop_back();
  EXPECT_THAT(refused(short_data), HasSubstr("'layers.2.weight'"));

  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    TensorList nonfinite = good;
    nonfinite[5].f32()[1] = bad;
    EXPECT_THAT(refused(nonfinite), AllOf(HasSubstr("'layers.2.bias'"), HasSubstr("element 1")));
  }
}

class FitTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FitTest, LearnsASeparableProblem) {
  const spec::JobSpec job = Job(GetParam());
  auto trainer = MakeTrainer(job);
  const Split split = SplitForEval(Blobs(900, 11), 0.2, job.training.seed);
  const EvalResult before = trainer->Evaluate(split.eval);

  auto fit = trainer->Fit(split.train, 10, /*shuffle_seed=*/0);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->num_examples, split.train.size());
  EXPECT_GT(fit->loss, 0);

  const EvalResult after = trainer->Evaluate(split.eval);
  EXPECT_EQ(after.num_examples, 180);
  EXPECT_GT(after.accuracy, 0.9) << "before: " << before.accuracy;
  EXPECT_LT(after.loss, before.loss);
  EXPECT_LT(fit->loss, 0.5);
}

TEST_P(FitTest, SameSeedSameWeights) {
  const TabularData train = Blobs(300, 5);
  auto a = MakeTrainer(Job(GetParam()));
  auto b = MakeTrainer(Job(GetParam()));
  auto fa = a->Fit(train, 3, /*shuffle_seed=*/7);
  auto fb = b->Fit(train, 3, /*shuffle_seed=*/7);
  ASSERT_TRUE(fa.ok() && fb.ok());
  EXPECT_EQ(fa->loss, fb->loss);
  EXPECT_TRUE(SameBytes(a->Weights(), b->Weights()));

  // Another shuffle seed (say, the next round) shuffles differently.
  auto c = MakeTrainer(Job(GetParam()));
  ASSERT_TRUE(c->Fit(train, 3, /*shuffle_seed=*/8).ok());
  EXPECT_FALSE(SameBytes(a->Weights(), c->Weights()));
}

INSTANTIATE_TEST_SUITE_P(Optimizers, FitTest, ::testing::Values("sgd", "adam"));

TEST(LocalTrainerTest, FitOnNoRowsChangesNothing) {
  auto trainer = MakeTrainer(Job());
  const TensorList before = trainer->Weights();
  auto fit = trainer->Fit(TabularData{}, 3, 0);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->num_examples, 0);
  EXPECT_TRUE(SameBytes(trainer->Weights(), before));
  const EvalResult eval = trainer->Evaluate(TabularData{});
  EXPECT_EQ(eval.num_examples, 0);
  EXPECT_EQ(eval.loss, 0);
}

TEST(LocalTrainerTest, FitRefusesDataOfAnotherShape) {
  auto trainer = MakeTrainer(Job());
  TabularData data = Blobs(10, 1);
  data.features = torch::cat({data.features, data.features.narrow(1, 0, 1)}, 1);
  auto fit = trainer->Fit(data, 1, 0);
  EXPECT_EQ(fit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fit.status().message()),
              HasSubstr("5 feature columns, the model takes 4"));

  data = Blobs(10, 1);
  data.labels[3] = kClasses;
  fit = trainer->Fit(data, 1, 0);
  EXPECT_EQ(fit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fit.status().message()), HasSubstr("class label 3 is outside [0, 3)"));
}

TEST(LocalTrainerDeathTest, EvaluateOnDataOfAnotherShapeIsAPreconditionFailure) {
  auto trainer = MakeTrainer(Job());
  TabularData data = Blobs(10, 1);
  data.features = data.features.narrow(1, 0, kFeatures - 1);
  EXPECT_DEATH(trainer->Evaluate(data), "3 feature columns, the model takes 4");
}

TEST(LocalTrainerTest, DivergenceIsAnErrorAndKeepsTheWeights) {
  spec::JobSpec job = Job();
  job.training.learning_rate = 10;
  auto trainer = MakeTrainer(job);
  const TensorList before = trainer->Weights();
  TabularData data = Blobs(64, 2);
  data.features = data.features.sign() * 3e38f;
  auto fit = trainer->Fit(data, 2, 0);
  EXPECT_EQ(fit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fit.status().message()), HasSubstr("diverged"));
  EXPECT_TRUE(SameBytes(trainer->Weights(), before));
}

TEST(LocalTrainerTest, CreateRefusesWhatItCannotBuild) {
  spec::JobSpec job = Job();
  job.model.kind = "llama";
  EXPECT_THAT(std::string(LocalTrainer::Create(job, kFeatures).status().message()),
              HasSubstr("'llama'"));
  job = Job("rmsprop");
  EXPECT_THAT(std::string(LocalTrainer::Create(job, kFeatures).status().message()),
              HasSubstr("'rmsprop'"));
  EXPECT_EQ(LocalTrainer::Create(Job(), 0).status().code(), absl::StatusCode::kInvalidArgument);
  job = Job();
  job.model.mlp.hidden = {16, 0};
  EXPECT_THAT(std::string(LocalTrainer::Create(job, kFeatures).status().message()),
              HasSubstr("hidden[1]"));
  job = Job();
  job.model.mlp.hidden = {};  // plain logistic regression is a valid MLP
  auto linear = LocalTrainer::Create(job, kFeatures);
  ASSERT_TRUE(linear.ok()) << linear.status();
  EXPECT_EQ((*linear)->Weights().size(), 2u);
}

}  // namespace
}  // namespace braid::worker
