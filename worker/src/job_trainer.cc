#include "braid/worker/job_trainer.h"

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "braid/core/log.h"
#include "braid/core/status_macros.h"
#include "braid/worker/checkpoint.h"
#include "braid/worker/lm_data.h"
#include "braid/worker/lora.h"
#include "braid/worker/tabular_data.h"
#include "braid/worker/tokenizer.h"
#include "proximal_term.h"
#include "seeded_random.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;

// The MLP: a LocalTrainer with its CSV splits.
class MlpJobTrainer final : public JobTrainer {
 public:
  MlpJobTrainer(std::unique_ptr<LocalTrainer> trainer, Split split)
      : trainer_(std::move(trainer)), split_(std::move(split)) {}

  TensorList Weights() const override { return trainer_->Weights(); }
  absl::Status SetWeights(const TensorList& weights) override {
    return trainer_->SetWeights(weights);
  }
  int64_t num_train_examples() const override { return split_.train.size(); }
  absl::StatusOr<FitResult> Fit(int epochs, int64_t shuffle_seed) override {
    return trainer_->Fit(split_.train, epochs, shuffle_seed);
  }
  absl::StatusOr<EvalResult> Evaluate() override { return trainer_->Evaluate(split_.eval); }
  absl::Status Export(const std::string& dir) override {
    return absl::UnimplementedError("an mlp job's deliverable is its weights file");
  }

 private:
  std::unique_ptr<LocalTrainer> trainer_;
  Split split_;
};

absl::StatusOr<std::unique_ptr<JobTrainer>> CreateMlp(const spec::JobSpec& job,
                                                      const TrainerSource& source) {
  const int num_features = static_cast<int>(job.data.features.size());
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<LocalTrainer> trainer,
                         LocalTrainer::Create(job, num_features));
  Split split;
  if (!source.data_file.empty()) {
    BRAID_ASSIGN_OR_RETURN(TabularData data,
                           ReadCsv(source.data_file, job.data, job.model.mlp.num_classes));
    if (source.evaluate_only) {
      split.eval = std::move(data);
    } else {
      // The eval split is taken before sharding, so each replica holds a
      // disjoint part of both.
      Split whole = SplitForEval(data, job.data.eval_fraction, job.training.seed);
      split.train = Shard(whole.train, source.replica, source.replicas);
      split.eval = Shard(whole.eval, source.replica, source.replicas);
    }
  }
  return std::unique_ptr<JobTrainer>(new MlpJobTrainer(std::move(trainer), std::move(split)));
}

std::vector<LmExample> ShardExamples(std::vector<LmExample> all, int replica, int replicas) {
  if (replicas <= 1) return all;
  std::vector<LmExample> out;
  for (size_t i = static_cast<size_t>(replica); i < all.size(); i += replicas) {
    out.push_back(std::move(all[i]));
  }
  return out;
}

torch::Tensor ToTensor(const std::vector<int64_t>& v, int64_t rows, int64_t cols) {
  return torch::tensor(v, torch::kLong).view({rows, cols});
}

// A LoRA adapter on a frozen decoder, on tokenized JSONL examples.
class LoraJobTrainer final : public JobTrainer {
 public:
  LoraJobTrainer(const spec::JobSpec& job, std::string base_folder,
                 std::unique_ptr<LoraModel> lora, int32_t pad_id, std::vector<LmExample> train,
                 std::vector<LmExample> eval)
      : job_(job),
        base_folder_(std::move(base_folder)),
        lora_(std::move(lora)),
        pad_id_(pad_id),
        train_(std::move(train)),
        eval_(std::move(eval)) {}

  TensorList Weights() const override { return lora_->GetAdapter(); }
  absl::Status SetWeights(const TensorList& weights) override {
    return lora_->SetAdapter(weights);
  }
  int64_t num_train_examples() const override { return static_cast<int64_t>(train_.size()); }

  absl::StatusOr<FitResult> Fit(int epochs, int64_t shuffle_seed) override {
    FitResult result;
    result.num_examples = num_train_examples();
    if (train_.empty() || epochs <= 0) return result;
    const TensorList before = Weights();
    try {
      // Under fedprox, the proximal term's anchors: the adapter the round
      // began with.
      const double mu = ProximalMu(job_);
      std::vector<torch::Tensor> anchors;
      if (mu > 0) {
        for (const torch::Tensor& p : lora_->AdapterParameters()) {
          anchors.push_back(p.detach().clone());
        }
      }
      std::unique_ptr<torch::optim::Optimizer> opt;
      if (job_.training.optimizer == "adam") {
        opt = std::make_unique<torch::optim::AdamW>(
            lora_->AdapterParameters(),
            torch::optim::AdamWOptions(job_.training.learning_rate).weight_decay(0));
      } else {
        opt = std::make_unique<torch::optim::SGD>(
            lora_->AdapterParameters(), torch::optim::SGDOptions(job_.training.learning_rate));
      }
      lora_->model().train();
      for (int epoch = 0; epoch < epochs; ++epoch) {
        uint64_t state = static_cast<uint64_t>(job_.training.seed);
        state = SplitMix64(state) ^ static_cast<uint64_t>(shuffle_seed);
        state = SplitMix64(state) ^ static_cast<uint64_t>(epoch);
        const uint64_t seed = SplitMix64(state);
        double loss_sum = 0;
        int64_t tokens = 0;
        for (const LmBatch& b :
             MakeLmBatches(train_, job_.training.batch_size, pad_id_, /*shuffle=*/true, seed)) {
          const torch::Tensor labels = ToTensor(b.labels, b.rows, b.cols);
          // Labelled tokens after the shift the loss makes; a batch without
          // any has no loss to take.
          const int64_t n =
              labels.narrow(1, 1, b.cols - 1).ne(kIgnoreLabel).sum().item<int64_t>();
          if (n == 0) continue;
          const torch::Tensor loss =
              lora_->Loss(ToTensor(b.input_ids, b.rows, b.cols),
                          ToTensor(b.attention_mask, b.rows, b.cols), labels);
          opt->zero_grad();
          if (mu > 0) {
            (loss + ProximalTerm(lora_->AdapterParameters(), anchors, mu)).backward();
          } else {
            loss.backward();
          }
          opt->step();
          loss_sum += loss.item<double>() * static_cast<double>(n);
          tokens += n;
        }
        result.loss = tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0;
      }
      if (!std::isfinite(result.loss)) {
        (void)SetWeights(before);
        return absl::InvalidArgumentError(absl::StrCat(
            "local training diverged (loss ", result.loss,
            "); lower spec.training.learningRate"));
      }
      return result;
    } catch (const c10::Error& e) {
      (void)SetWeights(before);
      return absl::InternalError(absl::StrCat("local training on ", train_.size(),
                                              " sequences failed: ", e.what_without_backtrace()));
    }
  }

  absl::StatusOr<EvalResult> Evaluate() override {
    EvalResult result;
    result.num_examples = static_cast<int64_t>(eval_.size());
    if (eval_.empty()) return result;
    try {
      torch::NoGradGuard no_grad;
      lora_->model().eval();
      double loss_sum = 0;
      int64_t tokens = 0;
      for (const LmBatch& b :
           MakeLmBatches(eval_, job_.training.batch_size, pad_id_, /*shuffle=*/false, 0)) {
        const torch::Tensor labels = ToTensor(b.labels, b.rows, b.cols);
        const int64_t n = labels.narrow(1, 1, b.cols - 1).ne(kIgnoreLabel).sum().item<int64_t>();
        if (n == 0) continue;
        const torch::Tensor loss =
            lora_->Loss(ToTensor(b.input_ids, b.rows, b.cols),
                        ToTensor(b.attention_mask, b.rows, b.cols), labels);
        loss_sum += loss.item<double>() * static_cast<double>(n);
        tokens += n;
      }
      lora_->model().train();
      result.num_tokens = tokens;
      result.loss = tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0;
      result.perplexity = std::exp(result.loss);
      return result;
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("evaluating ", eval_.size(),
                                              " sequences failed: ", e.what_without_backtrace()));
    }
  }

  absl::Status Export(const std::string& dir) override {
    BRAID_RETURN_IF_ERROR(lora_->WriteAdapter((fs::path(dir) / "adapter").string(), base_folder_));
    if (!job_.model.adapter.write_merged) return absl::OkStatus();
    const fs::path merged = fs::path(dir) / "merged";
    std::error_code ec;
    fs::create_directories(merged, ec);
    if (ec) return absl::InternalError(absl::StrCat(merged.string(), ": ", ec.message()));
    // The base's configuration and tokenizer, so the folder loads as a
    // checkpoint of its own.
    for (const char* name : {"config.json", "generation_config.json", "tokenizer.json",
                             "tokenizer.model", "tokenizer_config.json",
                             "special_tokens_map.json"}) {
      const fs::path from = fs::path(base_folder_) / name;
      if (!fs::exists(from)) continue;
      fs::copy_file(from, merged / name, fs::copy_options::overwrite_existing, ec);
      if (ec) return absl::InternalError(absl::StrCat((merged / name).string(), ": ", ec.message()));
    }
    return WriteMergedWeights(lora_->model(), (merged / "model.safetensors").string());
  }

 private:
  const spec::JobSpec job_;
  const std::string base_folder_;
  std::unique_ptr<LoraModel> lora_;
  const int32_t pad_id_;
  std::vector<LmExample> train_;
  std::vector<LmExample> eval_;
};

// GPT-2 learns one embedding per position: a block longer than n_positions
// would index past them (LibTorch's "index out of range in self", rounds
// into the job).
absl::Status CheckPositions(const spec::JobSpec& job, const DecoderConfig& config,
                            const std::string& folder) {
  if (config.family != DecoderFamily::kGpt2 ||
      job.data.max_length <= config.max_position_embeddings) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "spec.data.maxLength: ", job.data.max_length, " is longer than n_positions ",
      config.max_position_embeddings, " in ", (fs::path(folder) / "config.json").string(),
      " (GPT-2 has one learned embedding per position); set maxLength to at most ",
      config.max_position_embeddings));
}

// Every id the tokenizer can emit must have a row in the embedding.
absl::Status CheckVocabulary(const Tokenizer& tokenizer, const DecoderConfig& config,
                             const std::string& folder) {
  if (tokenizer.vocab_size() <= config.vocab_size) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      (fs::path(folder) / "config.json").string(), ": vocab_size: ", config.vocab_size,
      " is smaller than the tokenizer's ", tokenizer.vocab_size(), " ids (in ", folder,
      "); ids from ", config.vocab_size,
      " up would index outside the embedding. Use the tokenizer that came with the model"));
}

absl::StatusOr<std::unique_ptr<JobTrainer>> CreateLora(const spec::JobSpec& job,
                                                       const TrainerSource& source) {
  std::string folder = source.base_folder;
  if (folder.empty()) {
    if (job.model.base.path.empty()) {
      return absl::InvalidArgumentError(
          "spec.model.base is a persistentVolumeClaim: pass --base with the folder where it "
          "is mounted");
    }
    folder = spec::ResolvedPath(job, job.model.base.path);
  }
  BRAID_ASSIGN_OR_RETURN(std::shared_ptr<CausalLmImpl> base, LoadCausalLm(folder));
  BRAID_RETURN_IF_ERROR(CheckPositions(job, base->config(), folder));
  LoraOptions options;
  options.rank = job.model.adapter.rank;
  options.alpha = job.model.adapter.alpha;
  options.dropout = job.model.adapter.dropout;
  options.target_modules = job.model.adapter.targets;
  BRAID_ASSIGN_OR_RETURN(
      std::unique_ptr<LoraModel> lora,
      LoraModel::Create(base, options, static_cast<uint64_t>(job.training.seed)));
  std::vector<LmExample> train, eval;
  int32_t pad_id = 0;
  if (!source.data_file.empty()) {
    BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(folder));
    BRAID_RETURN_IF_ERROR(CheckVocabulary(*tokenizer, base->config(), folder));
    pad_id = PadId(*tokenizer);
    LmDataOptions data_options = LmDataOptionsFromJob(job);
    if (source.evaluate_only) data_options.eval_fraction = 0;
    BRAID_ASSIGN_OR_RETURN(LmDataset data, ReadLmJsonl(source.data_file, *tokenizer, data_options));
    for (const std::string& problem : data.report.problems) {
      LogWarning(absl::StrCat("skipped: ", problem));
    }
    if (data.report.skipped > data.report.problems.size()) {
      LogWarning(absl::StrCat("skipped ", data.report.skipped - data.report.problems.size(),
                              " more lines of ", source.data_file));
    }
    if (source.evaluate_only) {
      eval = std::move(data.train);  // eval_fraction 0: every record is in train
    } else {
      train = ShardExamples(std::move(data.train), source.replica, source.replicas);
      eval = ShardExamples(std::move(data.eval), source.replica, source.replicas);
    }
  }
  return std::unique_ptr<JobTrainer>(new LoraJobTrainer(job, folder, std::move(lora), pad_id,
                                                        std::move(train), std::move(eval)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobTrainer>> JobTrainer::Create(const spec::JobSpec& job,
                                                               const TrainerSource& source) {
  if (source.replicas < 1 || source.replica < 0 || source.replica >= source.replicas) {
    return absl::InvalidArgumentError(absl::StrCat("replica ", source.replica, " of ",
                                                   source.replicas, " is out of range"));
  }
  if (job.model.IsLanguageModel()) return CreateLora(job, source);
  return CreateMlp(job, source);
}

}  // namespace braid::worker
