// FedProx's local objective (Li et al. 2020) as braid-worker trains it,
// against the same objective written directly in PyTorch
// (fedprox_reference.py, in scripts/pyref.sh's interpreter): from the same
// MLP weights and the same batch, full-batch SGD on cross entropy plus
// mu / 2 * ||w - w0||^2 must end at the same weights. The first step's
// proximal gradient is 0 (w = w0), so several steps are taken.
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "braid/core/safetensors.h"
#include "braid/core/spec.h"
#include "braid/worker/local_trainer.h"
#include "reference_support.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;

constexpr int kRows = 40;
constexpr int kFeatures = 3;
constexpr int kEpochs = 4;  // one full-batch step each
constexpr double kLearningRate = 0.5;

spec::JobSpec Job(const std::string& strategy) {
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(
      absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: prox}\n"
                   "spec:\n  model: {kind: mlp, mlp: {hidden: [6], numClasses: 3}}\n"
                   "  data: {features: [x0, x1, x2], label: label}\n"
                   "  strategy: {",
                   strategy, "}\n  training: {batchSize: ", kRows,
                   ", learningRate: ", kLearningRate, ", optimizer: sgd, seed: 3}\n"
                   "  tenants:\n  - {name: a, data: {path: a.csv}}\n"),
      "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

Tensor RawTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                 const void* data, size_t bytes) {
  Tensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(bytes);
  std::memcpy(t.data.data(), data, bytes);
  return t;
}

torch::Tensor ToTorch(const Tensor& t) {
  return torch::from_blob(const_cast<uint8_t*>(t.data.data()), t.shape, torch::kFloat).clone();
}

// The trainer's weights after kEpochs full-batch steps on (x, y).
TensorList TrainedWeights(const spec::JobSpec& job, const TabularData& data, TensorList* initial) {
  absl::StatusOr<std::unique_ptr<LocalTrainer>> trainer = LocalTrainer::Create(job, kFeatures);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  *initial = (*trainer)->Weights();
  absl::StatusOr<FitResult> fit = (*trainer)->Fit(data, kEpochs, /*shuffle_seed=*/1);
  EXPECT_TRUE(fit.ok()) << fit.status();
  return (*trainer)->Weights();
}

TEST(FedProxReferenceTest, TheWorkersLocalObjectiveIsPyTorchsOnTheSameBatch) {
  const fs::path scratch = fs::path(::testing::TempDir()) / "braid-fedprox-reference";
  fs::remove_all(scratch);
  fs::create_directories(scratch);
  torch::manual_seed(11);
  TabularData data;
  data.features = torch::randn({kRows, kFeatures});
  data.labels = torch::randint(0, 3, {kRows}, torch::kLong);

  const double mu = 0.8;
  TensorList initial;
  const TensorList prox = TrainedWeights(Job(absl::StrCat("name: fedprox, proximalMu: ", mu)),
                                         data, &initial);
  TensorList unused;
  const TensorList plain = TrainedWeights(Job("name: fedavg"), data, &unused);

  TensorList in = initial;
  in.push_back(RawTensor("x", DType::kF32, {kRows, kFeatures}, data.features.data_ptr<float>(),
                         kRows * kFeatures * sizeof(float)));
  in.push_back(RawTensor("y", DType::kI64, {kRows}, data.labels.data_ptr<int64_t>(),
                         kRows * sizeof(int64_t)));
  ASSERT_TRUE(safetensors::Write((scratch / "in.safetensors").string(), in).ok());
  const std::string python = reference::ReferencePython(scratch);
  ASSERT_FALSE(python.empty());
  reference::RunCommand(
      absl::StrCat(python, " ", BRAID_SOURCE_DIR, "/tests/reference/fedprox_reference.py ",
                   (scratch / "in.safetensors").string(), " ",
                   (scratch / "out.safetensors").string(), " ", mu, " ", kLearningRate, " ",
                   kEpochs),
      scratch);
  const std::map<std::string, torch::Tensor> want =
      reference::ReadTensors(scratch / "out.safetensors");
  ASSERT_EQ(want.size(), prox.size());
  double worst = 0, moved_by_term = 0;
  for (size_t i = 0; i < prox.size(); ++i) {
    ASSERT_EQ(want.count(prox[i].name), 1u) << prox[i].name;
    worst = std::max(worst, reference::MaxAbsDiff(ToTorch(prox[i]), want.at(prox[i].name)));
    moved_by_term = std::max(moved_by_term, reference::MaxAbsDiff(ToTorch(prox[i]),
                                                                  ToTorch(plain[i])));
  }
  EXPECT_LE(worst, 1e-5);
  // The term changes training: FedAvg's worker ends elsewhere.
  EXPECT_GT(moved_by_term, 1e-3);
  std::cout << "fedprox: largest difference from PyTorch " << worst
            << "; from training without the term " << moved_by_term << "\n";
}

}  // namespace
}  // namespace braid::worker
