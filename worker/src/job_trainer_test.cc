// The JobTrainer seam for LLM jobs, as a user of braid-worker sees it: what
// travels (the adapter only, PEFT's names and shapes), what stays (the frozen
// base), what the loss is taken on (the response of instruction records),
// what a bad data line does (reported as file:line, skipped), and what
// evaluation reports. A tiny random Llama checkpoint with a byte-level
// tokenizer is written per test, so expected token ids follow from the text.
#include "braid/worker/job_trainer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "braid/core/safetensors.h"
#include "braid/worker/checkpoint.h"
#include "braid/worker/decoder.h"
#include "braid/worker/llm_config.h"
#include "test_byte_tokenizer.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int32_t kEos = kTestEos;
constexpr int32_t kBos = kTestBos;
constexpr int kVocab = 258;
constexpr int kHidden = 32, kIntermediate = 48, kLayers = 2, kHeads = 4, kKvHeads = 2;
constexpr int kHeadDim = kHidden / kHeads;
constexpr int kRank = 4;

json LlamaConfigJson() {
  return {{"model_type", "llama"},        {"vocab_size", kVocab},
          {"hidden_size", kHidden},       {"intermediate_size", kIntermediate},
          {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads},
          {"num_key_value_heads", kKvHeads}, {"max_position_embeddings", 128},
          {"rms_norm_eps", 1e-5},         {"tie_word_embeddings", false}};
}

struct Record {
  std::string prompt;
  std::string response;
};

// Prompts and responses of different lengths, so padding and the prompt mask
// both matter.
const std::vector<Record>& Records() {
  static const std::vector<Record> records = {
      {"Reverse: abc\nAnswer:", " cba"},
      {"Opposite of hot?", " cold"},
      {"2+3=", " 5"},
      {"Reverse the word 'stone'\n", "enots"},
      {"Q: colour of the sky\nA:", " blue, mostly"},
      {"Say hi.", " hi"},
  };
  return records;
}

std::string RecordsJsonl() {
  std::string out;
  for (const Record& r : Records()) {
    out += json{{"prompt", r.prompt}, {"response", r.response}}.dump() + "\n";
  }
  return out;
}

std::vector<int64_t> Bytes(const std::string& s) {
  std::vector<int64_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

class JobTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("braid-job-trainer-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-",
                        getpid());
    fs::remove_all(dir_);
    fs::create_directories(base_dir());
    const std::string config_text = LlamaConfigJson().dump();
    std::ofstream(base_dir() / "config.json") << config_text;
    std::ofstream(base_dir() / "tokenizer.json") << ByteTokenizerJson().dump();
    auto config = ParseDecoderConfig(config_text);
    ASSERT_TRUE(config.ok()) << config.status();
    auto model = MakeCausalLm(*config);
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    for (auto& item : model->named_parameters()) {
      if (item.key().find("norm") != std::string::npos) {
        item.value().normal_(1.0, 0.1);
      } else {
        item.value().normal_(0.0, 0.15);
      }
    }
    ASSERT_TRUE(WriteMergedWeights(*model, (base_dir() / "model.safetensors").string()).ok());
    WriteData(RecordsJsonl());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  fs::path base_dir() const { return dir_ / "base"; }
  std::string data_file() const { return (dir_ / "data.jsonl").string(); }
  void WriteData(const std::string& text) { std::ofstream(data_file()) << text; }

  // What a job file with `model.kind: llama` gives the worker.
  spec::JobSpec Job() const {
    spec::JobSpec job;
    job.name = "lm-test";
    job.model.kind = "llama";
    job.model.base.path = base_dir().string();
    job.model.adapter.rank = kRank;
    job.model.adapter.alpha = 8;
    job.model.adapter.targets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                 "gate_proj", "up_proj", "down_proj"};
    job.data.format = "jsonl";
    job.data.max_length = 64;
    job.data.eval_fraction = 0;  // every record trains, unless a test says otherwise
    job.training.batch_size = 64;
    job.training.optimizer = "adam";
    job.training.learning_rate = 0.02;
    job.training.seed = 3;
    return job;
  }

  std::unique_ptr<JobTrainer> Make(const spec::JobSpec& job, bool with_data = true,
                                   bool evaluate_only = false) {
    TrainerSource source;
    if (with_data) source.data_file = data_file();
    source.evaluate_only = evaluate_only;
    auto trainer = JobTrainer::Create(job, source);
    EXPECT_TRUE(trainer.ok()) << trainer.status();
    return trainer.ok() ? std::move(trainer).value() : nullptr;
  }

  // Mean cross-entropy of the base model over the tokens of `records` that
  // `labelled(prompt_tokens, position)` selects, computed one record at a
  // time without padding; and the count of those tokens.
  std::pair<double, int64_t> BaseLoss(bool response_only) {
    auto base = LoadCausalLm(base_dir().string());
    EXPECT_TRUE(base.ok()) << base.status();
    torch::NoGradGuard no_grad;
    double sum = 0;
    int64_t count = 0;
    for (const Record& r : Records()) {
      std::vector<int64_t> ids = {kBos};
      for (int64_t b : Bytes(r.prompt)) ids.push_back(b);
      const int64_t prompt_len = static_cast<int64_t>(ids.size());
      for (int64_t b : Bytes(r.response)) ids.push_back(b);
      ids.push_back(kEos);
      std::vector<int64_t> labels = ids;
      if (response_only) {
        for (int64_t i = 0; i < prompt_len; ++i) labels[i] = -100;
      }
      const int64_t n = static_cast<int64_t>(ids.size());
      const torch::Tensor t_ids = torch::tensor(ids, torch::kLong).view({1, n});
      const torch::Tensor t_labels = torch::tensor(labels, torch::kLong).view({1, n});
      const int64_t counted = t_labels.narrow(1, 1, n - 1).ne(-100).sum().item<int64_t>();
      const torch::Tensor loss = CausalLmLoss((*base)->forward(t_ids, {}), t_labels);
      sum += loss.item<double>() * static_cast<double>(counted);
      count += counted;
    }
    return {sum / static_cast<double>(count), count};
  }

  fs::path dir_;
};

std::map<std::string, const Tensor*> ByName(const TensorList& list) {
  std::map<std::string, const Tensor*> out;
  for (const Tensor& t : list) out[t.name] = &t;
  return out;
}

bool SameBytes(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].data != b[i].data) return false;
  }
  return true;
}

TEST_F(JobTrainerTest, WeightsAreOnlyTheAdapterWithPeftNamesAndShapes) {
  auto trainer = Make(Job(), /*with_data=*/false);
  ASSERT_NE(trainer, nullptr);
  // PEFT's layout: lora_A [r, in], lora_B [out, r] per targeted projection,
  // layer by layer, q k v o gate up down, A before B.
  struct Projection {
    std::string path;
    int64_t in, out;
  };
  const std::vector<Projection> projections = {
      {"self_attn.q_proj", kHidden, kHeads * kHeadDim},
      {"self_attn.k_proj", kHidden, kKvHeads * kHeadDim},
      {"self_attn.v_proj", kHidden, kKvHeads * kHeadDim},
      {"self_attn.o_proj", kHeads * kHeadDim, kHidden},
      {"mlp.gate_proj", kHidden, kIntermediate},
      {"mlp.up_proj", kHidden, kIntermediate},
      {"mlp.down_proj", kIntermediate, kHidden}};
  std::vector<std::pair<std::string, std::vector<int64_t>>> want;
  for (int layer = 0; layer < kLayers; ++layer) {
    for (const Projection& p : projections) {
      const std::string prefix = absl::StrCat("base_model.model.model.layers.", layer, ".", p.path);
      want.push_back({prefix + ".lora_A.weight", {kRank, p.in}});
      want.push_back({prefix + ".lora_B.weight", {p.out, kRank}});
    }
  }
  const TensorList weights = trainer->Weights();
  ASSERT_EQ(weights.size(), want.size());
  int64_t adapter_bytes = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(weights[i].name, want[i].first);
    EXPECT_EQ(weights[i].shape, want[i].second) << weights[i].name;
    EXPECT_EQ(weights[i].dtype, DType::kF32) << weights[i].name;
    adapter_bytes += static_cast<int64_t>(weights[i].data.size());
  }
  // A fresh adapter computes what the base computes: every lora_B is zero,
  // every lora_A is not.
  for (const Tensor& t : weights) {
    const float* v = reinterpret_cast<const float*>(t.data.data());
    const bool all_zero = std::all_of(v, v + t.NumElements(), [](float x) { return x == 0.0f; });
    EXPECT_EQ(all_zero, t.name.find(".lora_B.") != std::string::npos) << t.name;
  }
  // What travels is far smaller than the base.
  const auto base_size = static_cast<int64_t>(fs::file_size(base_dir() / "model.safetensors"));
  EXPECT_LT(adapter_bytes * 4, base_size) << adapter_bytes << " adapter bytes vs " << base_size;
}

TEST_F(JobTrainerTest, FitChangesOnlyTheAdapterAndLeavesTheBaseBitForBit) {
  auto trainer = Make(Job());
  ASSERT_NE(trainer, nullptr);
  auto eval_trainer = Make(Job(), /*with_data=*/true, /*evaluate_only=*/true);
  ASSERT_NE(eval_trainer, nullptr);
  const TensorList initial = trainer->Weights();
  auto before = eval_trainer->Evaluate();
  ASSERT_TRUE(before.ok()) << before.status();

  FitResult fit;
  for (int round = 0; round < 8; ++round) {
    auto r = trainer->Fit(1, round);
    ASSERT_TRUE(r.ok()) << r.status();
    fit = *r;
  }
  EXPECT_EQ(fit.num_examples, static_cast<int64_t>(Records().size()));
  const TensorList trained = trainer->Weights();
  EXPECT_FALSE(SameBytes(initial, trained)) << "training did not change the adapter";

  // The trained adapter lowers the loss on the data it saw.
  ASSERT_TRUE(eval_trainer->SetWeights(trained).ok());
  auto after = eval_trainer->Evaluate();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_LT(after->loss, before->loss - 0.1);

  // With the initial adapter back, the trained model computes exactly what it
  // computed before training: the base was not touched. Its merged export is
  // the base checkpoint, tensor for tensor, byte for byte.
  ASSERT_TRUE(trainer->SetWeights(initial).ok());
  spec::JobSpec merged_job = Job();
  merged_job.model.adapter.write_merged = true;
  const fs::path out = dir_ / "export";
  // Export through a trainer for the job that asks for merged weights, on the
  // same base: bring the trained-and-reset adapter over.
  auto exporter = Make(merged_job, /*with_data=*/false);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->SetWeights(trainer->Weights()).ok());
  ASSERT_TRUE(exporter->Export(out.string()).ok());
  auto base_file = safetensors::Read((base_dir() / "model.safetensors").string());
  auto merged_file = safetensors::Read((out / "merged" / "model.safetensors").string());
  ASSERT_TRUE(base_file.ok() && merged_file.ok());
  const auto merged = ByName(merged_file->tensors);
  ASSERT_EQ(merged.size(), base_file->tensors.size());
  for (const Tensor& t : base_file->tensors) {
    ASSERT_TRUE(merged.count(t.name)) << t.name;
    EXPECT_TRUE(merged.at(t.name)->data == t.data) << t.name << " changed";
  }
  ASSERT_TRUE(eval_trainer->SetWeights(trainer->Weights()).ok());
  auto reset = eval_trainer->Evaluate();
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(reset->loss, before->loss);
}

// Under fedprox the adapter's proximal term pulls local training back
// towards the adapter the round began with: from the same start, on the same
// data, it ends nearer to it than without the term.
TEST_F(JobTrainerTest, FedProxKeepsTheAdapterNearerToWhereTheRoundBegan) {
  spec::JobSpec prox_job = Job();
  prox_job.strategy.name = "fedprox";
  prox_job.strategy.proximal_mu = 50;
  auto plain = Make(Job());
  auto prox = Make(prox_job);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(prox, nullptr);
  const TensorList initial = plain->Weights();
  ASSERT_TRUE(prox->SetWeights(initial).ok());
  ASSERT_TRUE(plain->Fit(3, 0).ok());
  ASSERT_TRUE(prox->Fit(3, 0).ok());
  auto distance = [&](const TensorList& w) {
    double sq = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const float* a = reinterpret_cast<const float*>(w[i].data.data());
      const float* b = reinterpret_cast<const float*>(initial[i].data.data());
      for (int64_t j = 0; j < w[i].NumElements(); ++j) sq += (a[j] - b[j]) * (a[j] - b[j]);
    }
    return std::sqrt(sq);
  };
  const double plain_moved = distance(plain->Weights());
  const double prox_moved = distance(prox->Weights());
  EXPECT_GT(plain_moved, 0);
  std::cout << "moved: fedprox " << prox_moved << ", fedavg " << plain_moved << "\n";
  EXPECT_LT(prox_moved, 0.9 * plain_moved) << "fedprox " << prox_moved << ", fedavg " << plain_moved;
}

TEST_F(JobTrainerTest, EvaluationLossIsOnResponseTokensOnlyAndPerplexityIsItsExp) {
  auto trainer = Make(Job(), /*with_data=*/true, /*evaluate_only=*/true);
  ASSERT_NE(trainer, nullptr);
  auto eval = trainer->Evaluate();
  ASSERT_TRUE(eval.ok()) << eval.status();
  const auto [response_loss, response_tokens] = BaseLoss(/*response_only=*/true);
  const auto [all_loss, all_tokens] = BaseLoss(/*response_only=*/false);
  ASSERT_GT(std::abs(response_loss - all_loss), 1e-2) << "the data cannot tell the two apart";

  EXPECT_EQ(eval->num_examples, static_cast<int64_t>(Records().size()));
  EXPECT_EQ(eval->num_tokens, response_tokens);  // each response's bytes and its EOS
  EXPECT_NEAR(eval->loss, response_loss, 1e-5);
  EXPECT_DOUBLE_EQ(eval->perplexity, std::exp(eval->loss));
  EXPECT_EQ(eval->accuracy, 0);

  // Evaluation trains nothing.
  const TensorList weights = trainer->Weights();
  auto again = trainer->Evaluate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->loss, eval->loss);
  EXPECT_TRUE(SameBytes(weights, trainer->Weights()));
}

TEST_F(JobTrainerTest, TrainingLossIsOnResponseTokensOnly) {
  // One batch holds every record, so the loss Fit reports is the fresh
  // adapter's (the base's) before its only step.
  auto trainer = Make(Job());
  ASSERT_NE(trainer, nullptr);
  auto fit = trainer->Fit(1, 0);
  ASSERT_TRUE(fit.ok()) << fit.status();
  const auto [response_loss, response_tokens] = BaseLoss(/*response_only=*/true);
  EXPECT_NEAR(fit->loss, response_loss, 1e-5);
}

TEST_F(JobTrainerTest, MalformedLinesAreReportedWithFileAndLineAndSkipped) {
  std::string text;
  text += json{{"prompt", "a"}, {"response", " b"}}.dump() + "\n";  // line 1
  text += "{\"prompt\": \"unterminated\n";                           // line 2: not JSON
  text += json{{"prompt", 3}, {"response", "x"}}.dump() + "\n";      // line 3: not a string
  text += json{{"prompt", "c"}, {"response", " d"}}.dump() + "\n";  // line 4
  text += "[1, 2]\n";                                                // line 5: not an object
  text += json{{"text", "free text"}}.dump() + "\n";                 // line 6
  WriteData(text);
  ::testing::internal::CaptureStderr();
  auto trainer = Make(Job());
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(trainer, nullptr);
  EXPECT_THAT(err, AllOf(HasSubstr(data_file() + ":2:"), HasSubstr(data_file() + ":3:"),
                         HasSubstr(data_file() + ":5:")));
  EXPECT_THAT(err, ::testing::Not(HasSubstr(data_file() + ":1:")));
  EXPECT_EQ(trainer->num_train_examples(), 3);
  auto fit = trainer->Fit(1, 0);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(std::isfinite(fit->loss));
}

TEST_F(JobTrainerTest, AFileWithoutAUsableLineIsAnErrorNamingTheLines) {
  WriteData("not json\n{\"response\": \"no prompt\"}\n");
  TrainerSource source;
  source.data_file = data_file();
  auto trainer = JobTrainer::Create(Job(), source);
  ASSERT_FALSE(trainer.ok());
  EXPECT_EQ(trainer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trainer.status().message()),
              AllOf(HasSubstr(data_file() + ":1:"), HasSubstr(data_file() + ":2:")));
}

TEST_F(JobTrainerTest, SetWeightsRefusesAnotherLayoutNamingTheTensorAndKeepsTheModel) {
  auto trainer = Make(Job(), /*with_data=*/false);
  ASSERT_NE(trainer, nullptr);
  const TensorList good = trainer->Weights();
  TensorList bad = good;
  bad[3].shape = {bad[3].shape[1], bad[3].shape[0]};
  bad[0].f32()[0] += 1.0f;  // would change the model if anything were applied
  absl::Status status = trainer->SetWeights(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(good[3].name));
  EXPECT_TRUE(SameBytes(good, trainer->Weights()));

  TensorList renamed = good;
  renamed[0].name = "model.layers.0.self_attn.q_proj.weight";  // a base tensor
  status = trainer->SetWeights(renamed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("model.layers.0.self_attn.q_proj.weight"));
}

TEST_F(JobTrainerTest, ExportWritesThePeftAdapterAndMergedWeightsOnlyWhenAsked) {
  auto trainer = Make(Job());
  ASSERT_NE(trainer, nullptr);
  ASSERT_TRUE(trainer->Fit(2, 0).ok());
  const fs::path out = dir_ / "out";
  ASSERT_TRUE(trainer->Export(out.string()).ok());
  auto adapter = safetensors::Read((out / "adapter" / "adapter_model.safetensors").string());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  const auto written = ByName(adapter->tensors);
  const TensorList weights = trainer->Weights();
  ASSERT_EQ(written.size(), weights.size());
  for (const Tensor& t : weights) {
    ASSERT_TRUE(written.count(t.name)) << t.name;
    EXPECT_EQ(written.at(t.name)->shape, t.shape) << t.name;
    EXPECT_TRUE(written.at(t.name)->data == t.data) << t.name;
  }
  std::ifstream config_in(out / "adapter" / "adapter_config.json");
  const json config = json::parse(config_in);
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["r"], kRank);
  EXPECT_EQ(config["lora_alpha"], 8);
  EXPECT_EQ(config["target_modules"].size(), 7u);
  EXPECT_FALSE(fs::exists(out / "merged")) << "merged weights written though the job did not ask";

  spec::JobSpec merged_job = Job();
  merged_job.model.adapter.write_merged = true;
  auto exporter = Make(merged_job, /*with_data=*/false);
  ASSERT_NE(exporter, nullptr);
  ASSERT_TRUE(exporter->SetWeights(weights).ok());
  const fs::path out2 = dir_ / "out2";
  ASSERT_TRUE(exporter->Export(out2.string()).ok());
  for (const char* name : {"config.json", "tokenizer.json", "model.safetensors"}) {
    EXPECT_TRUE(fs::exists(out2 / "merged" / name)) << name;
  }
  // The merged folder is a checkpoint of its own; with the trained adapter
  // folded in, its logits are the trained model's, not the base's.
  auto merged = LoadCausalLm((out2 / "merged").string());
  auto base = LoadCausalLm(base_dir().string());
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_TRUE(base.ok());
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({{kBos, 'a', 'b', 'c'}}, torch::kLong);
  EXPECT_GT(((*merged)->forward(ids, {}) - (*base)->forward(ids, {})).abs().max().item<double>(),
            1e-3);
}

TEST_F(JobTrainerTest, ReplicasSplitTheRecordsBetweenThem) {
  const spec::JobSpec job = Job();
  int64_t total = 0;
  for (int replica = 0; replica < 2; ++replica) {
    TrainerSource source;
    source.data_file = data_file();
    source.replica = replica;
    source.replicas = 2;
    auto trainer = JobTrainer::Create(job, source);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    EXPECT_EQ((*trainer)->num_train_examples(), 3);
    total += (*trainer)->num_train_examples();
  }
  EXPECT_EQ(total, static_cast<int64_t>(Records().size()));
  TrainerSource out_of_range;
  out_of_range.replica = 2;
  out_of_range.replicas = 2;
  EXPECT_EQ(JobTrainer::Create(job, out_of_range).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JobTrainerTest, AMissingBaseOrAClaimWithoutAMountIsAnErrorNamingIt) {
  spec::JobSpec job = Job();
  job.model.base.path = (dir_ / "nowhere").string();
  auto missing = JobTrainer::Create(job, TrainerSource{});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nowhere"));

  job.model.base.path = "";
  job.model.base.claim_name = "models";
  auto claim = JobTrainer::Create(job, TrainerSource{});
  ASSERT_FALSE(claim.ok());
  EXPECT_THAT(std::string(claim.status().message()), HasSubstr("--base"));
}

// Replaces the base folder's config.json and weights with a model of
// `config` (random weights).
void WriteBase(const fs::path& folder, const json& config) {
  std::ofstream(folder / "config.json") << config.dump();
  auto parsed = ParseDecoderConfig(config.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto model = MakeCausalLm(*parsed);
  ASSERT_TRUE(WriteMergedWeights(*model, (folder / "model.safetensors").string()).ok());
}

// Issue 17, finding 10: a model whose vocabulary is smaller than its
// tokenizer's is refused when it loads, naming the file and field, rather
// than failing rounds later with "index out of range in self".
TEST_F(JobTrainerTest, AVocabularySmallerThanTheTokenizersIsRefusedAtLoad) {
  json config = LlamaConfigJson();
  config["vocab_size"] = 100;
  WriteBase(base_dir(), config);
  TrainerSource source;
  source.data_file = data_file();
  auto trainer = JobTrainer::Create(Job(), source);
  ASSERT_EQ(trainer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trainer.status().message()),
              HasSubstr((base_dir() / "config.json").string() +
                        ": vocab_size: 100 is smaller than the tokenizer's 258 ids"));
}

// GPT-2's learned positions: a maxLength beyond n_positions is refused at
// load.
TEST_F(JobTrainerTest, AMaxLengthBeyondGpt2PositionsIsRefusedAtLoad) {
  const json gpt2 = {{"model_type", "gpt2"}, {"vocab_size", kVocab + 8}, {"n_embd", kHidden},
                     {"n_layer", 1},         {"n_head", kHeads},         {"n_positions", 16}};
  WriteBase(base_dir(), gpt2);
  spec::JobSpec job = Job();
  job.model.kind = "gpt2";
  job.model.adapter.targets = {"c_attn"};
  job.data.max_length = 64;
  auto trainer = JobTrainer::Create(job, TrainerSource{});
  ASSERT_EQ(trainer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(trainer.status().message()),
              HasSubstr("spec.data.maxLength: 64 is longer than n_positions 16 in " +
                        (base_dir() / "config.json").string()));
  job.data.max_length = 16;
  EXPECT_TRUE(JobTrainer::Create(job, TrainerSource{}).ok());
}

}  // namespace
}  // namespace braid::worker
