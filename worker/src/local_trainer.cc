#include "braid/worker/local_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "braid/core/status_macros.h"
#include "braid/worker/mlp.h"
#include "precondition.h"
#include "proximal_term.h"
#include "seeded_random.h"

// braid::Tensor bytes are little-endian; parameters are copied byte for byte.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "braid-worker assumes a little-endian host");

namespace braid::worker {
namespace {

// Rows per forward pass in Evaluate, to bound memory on large sets.
constexpr int64_t kEvalChunk = 8192;

// A seed for the shuffle of one epoch, from (job seed, caller's seed, epoch).
uint64_t EpochSeed(int64_t job_seed, int64_t shuffle_seed, int epoch) {
  uint64_t state = static_cast<uint64_t>(job_seed);
  state = SplitMix64(state) ^ static_cast<uint64_t>(shuffle_seed);
  state = SplitMix64(state) ^ static_cast<uint64_t>(epoch);
  return SplitMix64(state);
}

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}
std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

class MlpTrainer final : public LocalTrainer {
 public:
  MlpTrainer(const spec::JobSpec& job, int num_features, Mlp model)
      : training_(job.training),
        proximal_mu_(ProximalMu(job)),
        num_features_(num_features),
        num_classes_(job.model.mlp.num_classes),
        model_(std::move(model)) {
    for (auto& item : model_->named_parameters(/*recurse=*/true)) {
      names_.push_back(item.key());
      params_.push_back(item.value());
    }
  }
  MlpTrainer(const MlpTrainer&) = delete;
  MlpTrainer& operator=(const MlpTrainer&) = delete;

  TensorList Weights() const override {
    TensorList out;
    out.reserve(params_.size());
    for (size_t i = 0; i < params_.size(); ++i) {
      const torch::Tensor p = params_[i].detach().to(torch::kFloat).contiguous();
      Tensor t;
      t.name = names_[i];
      t.dtype = DType::kF32;
      t.shape.assign(p.sizes().begin(), p.sizes().end());
      t.data.resize(static_cast<size_t>(p.numel()) * sizeof(float));
      std::memcpy(t.data.data(), p.data_ptr<float>(), t.data.size());
      out.push_back(std::move(t));
    }
    return out;
  }

  absl::Status SetWeights(const TensorList& weights) override {
    // Everything is checked before anything is written, so a refused update
    // leaves the model as it was.
    if (weights.size() != params_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "weights: expected ", params_.size(), " tensors (", absl::StrJoin(names_, ", "),
          "), got ", weights.size(), ModelHint()));
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      const Tensor& w = weights[i];
      if (w.name != names_[i]) {
        return absl::InvalidArgumentError(absl::StrCat("weights[", i, "]: expected tensor '",
                                                       names_[i], "', got '", w.name, "'",
                                                       ModelHint()));
      }
      if (w.dtype != DType::kF32) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", w.name, "': dtype ", std::string(DTypeName(w.dtype)), ", expected F32"));
      }
      const auto expected = params_[i].sizes();
      if (!std::equal(w.shape.begin(), w.shape.end(), expected.begin(), expected.end())) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", w.name, "': shape ",
                                                       ShapeString(w.shape), ", expected ",
                                                       ShapeString(expected), ModelHint()));
      }
      const size_t n = static_cast<size_t>(params_[i].numel());
      if (w.data.size() != n * sizeof(float)) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", w.name, "': ", w.data.size(), " data bytes for shape ",
                         ShapeString(w.shape), ", expected ", n * sizeof(float)));
      }
      for (size_t k = 0; k < n; ++k) {
        float v;
        std::memcpy(&v, w.data.data() + k * sizeof(float), sizeof(float));
        if (!std::isfinite(v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("tensor '", w.name, "': element ", k, " is ", v, " (not finite)"));
        }
      }
    }
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < weights.size(); ++i) {
      std::memcpy(params_[i].data_ptr<float>(), weights[i].data.data(), weights[i].data.size());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FitResult> Fit(const TabularData& train, int epochs,
                                int64_t shuffle_seed) override {
    if (epochs < 0) {
      return absl::InvalidArgumentError(absl::StrCat("Fit: epochs must be >= 0, got ", epochs));
    }
    BRAID_RETURN_IF_ERROR(CheckData(train, "training data"));
    const int64_t n = train.size();
    FitResult result;
    result.num_examples = n;
    if (n == 0 || epochs == 0) return result;

    std::vector<torch::Tensor> before;
    try {
      for (const auto& p : params_) before.push_back(p.detach().clone());
      absl::Status status = Train(train, epochs, shuffle_seed, before, &result.loss);
      if (!status.ok()) {
        Restore(before);
        return status;
      }
      return result;
    } catch (const c10::Error& e) {
      if (before.size() == params_.size()) Restore(before);
      return absl::InternalError(
          absl::StrCat("local training on ", n, " rows failed: ", e.what_without_backtrace()));
    }
  }

  EvalResult Evaluate(const TabularData& data) override {
    EvalResult result;
    const int64_t n = data.size();
    if (n == 0) return result;
    if (absl::Status s = CheckData(data, "evaluation data"); !s.ok()) {
      PreconditionFailed(s.ToString());
    }
    try {
      torch::NoGradGuard no_grad;
      model_->eval();
      double loss_sum = 0;
      int64_t correct = 0;
      for (int64_t start = 0; start < n; start += kEvalChunk) {
        const int64_t len = std::min(kEvalChunk, n - start);
        const torch::Tensor x = data.features.narrow(0, start, len);
        const torch::Tensor y = data.labels.narrow(0, start, len);
        const torch::Tensor logits = model_->forward(x);
        loss_sum += torch::nn::functional::cross_entropy(
                        logits, y,
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                        .item<double>();
        correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      }
      result.loss = loss_sum / static_cast<double>(n);
      result.accuracy = static_cast<double>(correct) / static_cast<double>(n);
      result.num_examples = n;
      return result;
    } catch (const c10::Error& e) {
      PreconditionFailed(absl::StrCat("evaluating ", n, " rows: ", e.what_without_backtrace()));
    }
  }

 private:
  // One local training run from the parameters `global` (under fedprox,
  // the anchors of the proximal term); `last_loss` gets the last epoch's
  // mean data loss (without the term). May throw c10::Error (Fit catches
  // it).
  absl::Status Train(const TabularData& train, int epochs, int64_t shuffle_seed,
                     const std::vector<torch::Tensor>& global, double* last_loss) {
    const int64_t n = train.size();
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (training_.optimizer == "adam") {
      optimizer = std::make_unique<torch::optim::Adam>(
          model_->parameters(), torch::optim::AdamOptions(training_.learning_rate));
    } else {
      optimizer = std::make_unique<torch::optim::SGD>(
          model_->parameters(), torch::optim::SGDOptions(training_.learning_rate));
    }
    const int64_t batch = std::min<int64_t>(training_.batch_size, n);
    model_->train();
    for (int epoch = 0; epoch < epochs; ++epoch) {
      std::vector<int64_t> perm =
          SeededPermutation(n, EpochSeed(training_.seed, shuffle_seed, epoch));
      const torch::Tensor index = torch::from_blob(perm.data(), {n}, torch::kLong);
      const torch::Tensor x = train.features.index_select(0, index);
      const torch::Tensor y = train.labels.index_select(0, index);
      double loss_sum = 0;
      for (int64_t start = 0; start < n; start += batch) {
        const int64_t len = std::min(batch, n - start);
        optimizer->zero_grad();
        torch::Tensor loss = torch::nn::functional::cross_entropy(
            model_->forward(x.narrow(0, start, len)), y.narrow(0, start, len));
        const double value = loss.item<double>();
        if (!std::isfinite(value)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "local training diverged: loss is ", value, " in epoch ", epoch + 1, " (rows ", start,
              "..", start + len - 1, "); lower the learning rate (now ", training_.learning_rate,
              ") or scale the features"));
        }
        if (proximal_mu_ > 0) loss = loss + ProximalTerm(params_, global, proximal_mu_);
        loss.backward();
        optimizer->step();
        loss_sum += value * static_cast<double>(len);
      }
      *last_loss = loss_sum / static_cast<double>(n);
    }
    for (size_t i = 0; i < params_.size(); ++i) {
      params_[i].mutable_grad() = torch::Tensor();  // free gradient memory
      if (!torch::isfinite(params_[i]).all().item<bool>()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "local training diverged: parameter '", names_[i], "' is not finite; lower the "
            "learning rate (now ", training_.learning_rate, ") or scale the features"));
      }
    }
    return absl::OkStatus();
  }

  void Restore(const std::vector<torch::Tensor>& before) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      params_[i].copy_(before[i]);
      params_[i].mutable_grad() = torch::Tensor();
    }
  }

  absl::Status CheckData(const TabularData& data, const char* what) const {
    if (data.size() == 0) return absl::OkStatus();
    const torch::Tensor& f = data.features;
    const torch::Tensor& l = data.labels;
    if (!f.defined() || f.dim() != 2 || f.scalar_type() != torch::kFloat) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": features must be a float32 [rows, ", num_features_, "] tensor"));
    }
    if (l.dim() != 1 || l.scalar_type() != torch::kLong) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": labels must be an int64 [rows] tensor"));
    }
    if (f.size(0) != l.size(0)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", f.size(0), " feature rows but ",
                                                     l.size(0), " labels"));
    }
    if (f.size(1) != num_features_) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", f.size(1),
                                                     " feature columns, the model takes ",
                                                     num_features_));
    }
    const int64_t lo = l.min().item<int64_t>();
    const int64_t hi = l.max().item<int64_t>();
    if (lo < 0 || hi >= num_classes_) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": class label ", lo < 0 ? lo : hi,
                                                     " is outside [0, ", num_classes_, ")"));
    }
    return absl::OkStatus();
  }

  std::string ModelHint() const {
    return absl::StrCat(
        " (this worker's model: ", num_features_, " inputs, hidden ",
        ShapeString(std::vector<int64_t>(model_->options().hidden.begin(),
                                         model_->options().hidden.end())),
        ", ", num_classes_,
        " classes; the job's data.features, model.mlp.hidden and model.mlp.num_classes must "
        "match the aggregator's model)");
  }

  const spec::Training training_;
  const double proximal_mu_;  // fedprox's mu; 0: no proximal term
  const int64_t num_features_;
  const int64_t num_classes_;
  Mlp model_;
  std::vector<std::string> names_;     // layout order
  std::vector<torch::Tensor> params_;  // the model's parameters, same order
};

}  // namespace

absl::StatusOr<std::unique_ptr<LocalTrainer>> LocalTrainer::Create(const spec::JobSpec& job,
                                                                   int num_features) {
  if (job.model.kind != "mlp") {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.model.kind: '", job.model.kind,
        "' is not supported by braid-worker (supported: mlp)"));
  }
  if (num_features < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model needs at least one input feature (spec.data.features), got ", num_features));
  }
  const spec::MlpModel& mlp = job.model.mlp;
  for (size_t i = 0; i < mlp.hidden.size(); ++i) {
    if (mlp.hidden[i] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.model.mlp.hidden[", i, "]: width must be >= 1, got ", mlp.hidden[i]));
    }
  }
  if (mlp.num_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.mlp number of classes must be >= 2, got ", mlp.num_classes));
  }
  const spec::Training& t = job.training;
  if (t.optimizer != "sgd" && t.optimizer != "adam") {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.training.optimizer: '", t.optimizer, "' is not supported (use sgd or adam)"));
  }
  if (t.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("training batch size must be >= 1, got ", t.batch_size));
  }
  if (!(std::isfinite(t.learning_rate) && t.learning_rate > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("training learning rate must be > 0, got ", t.learning_rate));
  }
  try {
    MlpOptions options;
    options.in_features = num_features;
    options.hidden = mlp.hidden;
    options.num_classes = mlp.num_classes;
    Mlp model(options);
    model->ResetParameters(static_cast<uint64_t>(t.seed));
    return std::unique_ptr<LocalTrainer>(new MlpTrainer(job, num_features, std::move(model)));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("building the mlp model: ", e.what_without_backtrace()));
  }
}

}  // namespace braid::worker
