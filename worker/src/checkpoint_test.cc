#include "braid/worker/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "braid/core/safetensors.h"
#include "braid/worker/lora.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

constexpr char kConfig[] = R"({"model_type": "llama", "vocab_size": 16, "hidden_size": 8,
  "intermediate_size": 12, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1})";

class CheckpointTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("braid-ckpt-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "config.json") << kConfig;
    auto config = ParseDecoderConfig(kConfig);
    ASSERT_TRUE(config.ok());
    auto model = MakeCausalLm(*config);
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.uniform_(-1, 1);
    ASSERT_TRUE(WriteMergedWeights(*model, Weights()).ok());
    auto file = safetensors::Read(Weights());
    ASSERT_TRUE(file.ok());
    tensors_ = file->tensors;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Weights() const { return (dir_ / "model.safetensors").string(); }
  void Rewrite(const TensorList& tensors) { ASSERT_TRUE(safetensors::Write(Weights(), tensors).ok()); }
  std::string LoadError() {
    auto model = LoadCausalLm(dir_.string());
    EXPECT_FALSE(model.ok());
    return model.ok() ? "" : std::string(model.status().message());
  }

  fs::path dir_;
  TensorList tensors_;
};

TEST_F(CheckpointTest, WrittenWeightsLoadBackIdentically) {
  auto model = LoadCausalLm(dir_.string());
  ASSERT_TRUE(model.ok()) << model.status();
  auto ids = torch::tensor({{1, 2, 3}}, torch::kLong);
  auto again = LoadCausalLm(dir_.string());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal((*model)->forward(ids, {}), (*again)->forward(ids, {})));
  EXPECT_EQ(tensors_.size(), (*model)->parameters().size());
}

TEST_F(CheckpointTest, HalfPrecisionWeightsAreUpcast) {
  auto f32 = LoadCausalLm(dir_.string());
  ASSERT_TRUE(f32.ok());
  for (Tensor& t : tensors_) {
    torch::Tensor half = torch::from_blob(t.f32(), t.shape, torch::kFloat).to(torch::kHalf).contiguous();
    t.dtype = DType::kF16;
    t.data.assign(static_cast<uint8_t*>(half.data_ptr()), static_cast<uint8_t*>(half.data_ptr()) + half.nbytes());
  }
  Rewrite(tensors_);
  auto f16 = LoadCausalLm(dir_.string());
  ASSERT_TRUE(f16.ok()) << f16.status();
  const auto a = (*f32)->named_parameters(), b = (*f16)->named_parameters();
  for (const auto& p : a) {
    // Values in [-1, 1): fp16 keeps 11 significant bits, an error <= 2^-11.
    const double diff = (p.value() - b[p.key()]).abs().max().item<double>();
    EXPECT_LE(diff, 1.0 / 2048) << p.key();
    EXPECT_EQ(b[p.key()].scalar_type(), torch::kFloat);
  }
}

TEST_F(CheckpointTest, LoraInitDependsOnlyOnTheSeed) {
  LoraOptions options;
  auto adapter = [&](uint64_t seed) {
    auto model = LoadCausalLm(dir_.string());
    EXPECT_TRUE(model.ok());
    auto lora = LoraModel::Create(*model, options, seed);
    EXPECT_TRUE(lora.ok());
    return (*lora)->GetAdapter();
  };
  const TensorList a = adapter(7), b = adapter(7), c = adapter(8);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].data, b[i].data) << a[i].name;
  EXPECT_NE(a[0].data, c[0].data);
  // lora_B starts at zero so the adapted model computes the base model.
  EXPECT_EQ(a[1].data, std::vector<uint8_t>(a[1].data.size(), 0));
}

TEST_F(CheckpointTest, MissingTensorIsNamed) {
  tensors_.erase(tensors_.begin() + 1);
  Rewrite(tensors_);
  EXPECT_THAT(LoadError(), HasSubstr("missing tensor '"));
}

TEST_F(CheckpointTest, UnexpectedTensorIsNamedWithItsFile) {
  tensors_.push_back(Tensor::F32("model.layers.7.mlp.up_proj.weight", {1}, {0}));
  Rewrite(tensors_);
  EXPECT_THAT(LoadError(), HasSubstr("unexpected tensor 'model.layers.7.mlp.up_proj.weight' in " + Weights()));
}

TEST_F(CheckpointTest, MisShapedTensorIsNamedWithBothShapes) {
  for (Tensor& t : tensors_) {
    if (t.name == "model.norm.weight") t = Tensor::F32(t.name, {4}, {1, 1, 1, 1});
  }
  Rewrite(tensors_);
  EXPECT_THAT(LoadError(), HasSubstr("tensor 'model.norm.weight' in " + Weights() +
                                     ": shape [4], the config implies [8]"));
}

// Issue 17, finding 10: a NaN or infinite weight is refused at load, naming
// the tensor and file (it used to surface as "diverged: lower learningRate").
TEST_F(CheckpointTest, NonFiniteWeightsAreRefusedNamingTensorAndFile) {
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    TensorList tensors = tensors_;
    for (Tensor& t : tensors) {
      if (t.name == "model.norm.weight") t.f32()[3] = bad;
    }
    Rewrite(tensors);
    EXPECT_THAT(LoadError(), HasSubstr("tensor 'model.norm.weight' in " + Weights() +
                                       ": 1 of 8 values are NaN or infinite"));
  }
}

// tie_word_embeddings: true with an lm_head.weight that is not the
// embedding: Hugging Face versions disagree on which one they use, so the
// load is refused naming both fields; a redundant copy loads.
TEST_F(CheckpointTest, ATiedCheckpointWithADifferentHeadIsRefused) {
  std::string tied(kConfig);
  tied.insert(tied.size() - 1, R"(, "tie_word_embeddings": true)");
  std::ofstream(dir_ / "config.json") << tied;
  EXPECT_THAT(LoadError(),
              HasSubstr(Weights() + ": lm_head.weight differs from model.embed_tokens.weight but " +
                        (dir_ / "config.json").string() + " sets tie_word_embeddings: true"));
  const Tensor* embedding = nullptr;
  for (const Tensor& t : tensors_) {
    if (t.name == "model.embed_tokens.weight") embedding = &t;
  }
  ASSERT_NE(embedding, nullptr);
  TensorList tensors = tensors_;
  for (Tensor& t : tensors) {
    if (t.name == "lm_head.weight") t.data = embedding->data;
  }
  Rewrite(tensors);
  auto model = LoadCausalLm(dir_.string());
  EXPECT_TRUE(model.ok()) << model.status();
  // Without lm_head.weight it loads too (the usual tied checkpoint).
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](const Tensor& t) { return t.name == "lm_head.weight"; }),
                tensors.end());
  Rewrite(tensors);
  EXPECT_TRUE(LoadCausalLm(dir_.string()).ok());
}

TEST_F(CheckpointTest, MissingWeightsFileIsNotFound) {
  fs::remove(Weights());
  auto model = LoadCausalLm(dir_.string());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, LoraRefusesUnknownTargetsAndMisShapedAdapters) {
  auto model = LoadCausalLm(dir_.string());
  ASSERT_TRUE(model.ok());
  LoraOptions options;
  options.target_modules = {"c_attn"};
  auto bad = LoraModel::Create(*model, options, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"c_attn\" matches no module"));

  options.target_modules = {"q_proj", "v_proj"};
  options.rank = 2;
  auto lora = LoraModel::Create(*model, options, 1);
  ASSERT_TRUE(lora.ok()) << lora.status();
  ASSERT_EQ((*lora)->AdapterNames().size(), 4u);
  EXPECT_EQ((*lora)->AdapterNames()[0], "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  for (const auto& p : (*model)->named_parameters()) {
    const bool adapter = p.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(p.value().requires_grad(), adapter) << p.key();
  }
  TensorList adapter = (*lora)->GetAdapter();
  adapter[1] = Tensor::F32(adapter[1].name, {1}, {0});
  absl::Status s = (*lora)->SetAdapter(adapter);
  EXPECT_THAT(std::string(s.message()), HasSubstr("adapter tensor '" + adapter[1].name + "': shape [1]"));
  adapter.pop_back();
  adapter.erase(adapter.begin() + 1);
  s = (*lora)->SetAdapter(adapter);
  EXPECT_THAT(std::string(s.message()), HasSubstr("missing adapter tensor"));
}

}  // namespace
}  // namespace braid::worker
