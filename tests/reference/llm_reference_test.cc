// Braid's decoders and LoRA against Hugging Face transformers 4.46.3 and
// PEFT 0.13.2, on tiny random checkpoints that llm_reference.py makes with
// them at test time (no downloads). Per model kind:
//   1. Braid loads the checkpoint folder; its fp32 logits on a right-padded
//      batch equal Hugging Face's within 1e-4 (max abs).
//   2. Braid loads PEFT's adapter (non-zero lora_B); one forward+backward of
//      the causal-LM loss with -100 labels: loss and every adapter gradient
//      equal PEFT's (tolerances below).
//   3. Braid takes an SGD step on the adapter, writes it in PEFT's layout and
//      its merged weights; PEFT loads the adapter onto the Hugging Face base,
//      transformers loads the merged folder: both give Braid's logits within
//      1e-4.
// If the reference stack cannot be made or the script fails, the test fails
// with the script's stderr.
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "braid/worker/checkpoint.h"
#include "braid/worker/lora.h"
#include "reference_support.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;

using reference::MaxAbsDiff;
using reference::ReadTensors;
using reference::RunCommand;

class LlmReferenceTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    scratch_ = fs::temp_directory_path() / ("braid-llm-ref-" + GetParam() + "-" + std::to_string(getpid()));
    fs::remove_all(scratch_);
    fs::create_directories(scratch_);
    python_ = reference::ReferencePython(scratch_);
    ASSERT_FALSE(python_.empty());
    torch::manual_seed(0);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(scratch_);
  }
  void Script(const std::string& phase) {
    RunCommand(python_ + " " + BRAID_SOURCE_DIR + "/tests/reference/llm_reference.py " + phase + " " + scratch_.string() +
            " " + GetParam(),
        scratch_);
  }
  fs::path Dir() const { return scratch_ / GetParam(); }

  fs::path scratch_;
  std::string python_;
};

TEST_P(LlmReferenceTest, LogitsLoraGradientsAndPeftRoundTripMatchHuggingFace) {
  Script("make");
  ASSERT_FALSE(HasFailure());
  auto batch = ReadTensors(Dir() / "batch.safetensors");
  const torch::Tensor ids = batch["input_ids"], mask = batch["attention_mask"], labels = batch["labels"];

  // 1. Logits of the base checkpoint.
  auto base = LoadCausalLm((Dir() / "base").string());
  ASSERT_TRUE(base.ok()) << base.status();
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = (*base)->forward(ids, mask);
    const double diff = MaxAbsDiff(logits, ReadTensors(Dir() / "logits.safetensors")["logits"]);
    EXPECT_LT(diff, 1e-4) << "base logits differ from Hugging Face's";
    std::printf("%s: base logits max |braid - hf| = %.3g\n", GetParam().c_str(), diff);
  }

  // 2. One LoRA forward+backward against PEFT's.
  auto lora = LoraModel::FromPeftFolder(*base, (Dir() / "adapter_init").string());
  ASSERT_TRUE(lora.ok()) << lora.status();
  auto reference = ReadTensors(Dir() / "lora_grads.safetensors");
  torch::Tensor loss = (*lora)->Loss(ids, mask, labels);
  loss.backward();
  const double loss_diff = std::abs(loss.item<double>() - reference["loss"].item<double>());
  // fp32 sums over a few hundred terms in another order: agreement to ~1e-6
  // relative is expected; 1e-5 absolute on a loss of ~4.5 leaves margin.
  EXPECT_LT(loss_diff, 1e-5) << "loss " << loss.item<double>() << " vs PEFT " << reference["loss"].item<double>();
  const auto names = (*lora)->AdapterNames();
  const auto params = (*lora)->AdapterParameters();
  ASSERT_EQ(names.size() + 1, reference.size()) << "adapter tensor count differs from PEFT's";
  double worst = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_TRUE(reference.count(names[i])) << names[i] << " is not a PEFT adapter name";
    ASSERT_TRUE(params[i].grad().defined()) << names[i] << " got no gradient";
    const torch::Tensor& want = reference[names[i]];
    const double scale = want.abs().max().item<double>();
    const double diff = MaxAbsDiff(params[i].grad(), want);
    // Gradients are fp32 sums whose order differs from PyTorch's; relative to
    // the tensor's largest gradient, 1e-4 is ~1000x fp32's epsilon and far
    // below what any wrong term (a missed mask, a transposed factor) causes.
    EXPECT_LE(diff, 1e-4 * scale + 1e-7) << names[i] << ": max |braid - peft| " << diff << ", max |peft| " << scale;
    EXPECT_GT(scale, 0) << names[i] << ": PEFT's gradient is zero, so the comparison proves nothing";
    worst = std::max(worst, diff / (scale + 1e-12));
  }
  std::printf("%s: loss |braid - peft| = %.3g; worst gradient max-diff / max|grad| = %.3g over %zu tensors\n",
              GetParam().c_str(), loss_diff, worst, names.size());

  // 3. Change the adapter, write it and the merged weights; PEFT and
  //    transformers load them.
  torch::optim::SGD sgd((*lora)->AdapterParameters(), torch::optim::SGDOptions(1.0));
  sgd.step();
  sgd.zero_grad();
  torch::Tensor braid_logits;
  {
    torch::NoGradGuard no_grad;
    braid_logits = (*lora)->model().forward(ids, mask);
  }
  ASSERT_TRUE((*lora)->WriteAdapter((Dir() / "adapter_braid").string(), (Dir() / "base").string()).ok());
  fs::create_directories(Dir() / "merged");
  fs::copy_file(Dir() / "base" / "config.json", Dir() / "merged" / "config.json");
  auto merged_status = WriteMergedWeights((*lora)->model(), (Dir() / "merged" / "model.safetensors").string());
  ASSERT_TRUE(merged_status.ok()) << merged_status;
  Script("peft");
  ASSERT_FALSE(HasFailure());
  const double peft_diff = MaxAbsDiff(braid_logits, ReadTensors(Dir() / "peft_logits.safetensors")["logits"]);
  EXPECT_LT(peft_diff, 1e-4) << "PEFT's logits with Braid's adapter differ from Braid's";
  const double merged_diff = MaxAbsDiff(braid_logits, ReadTensors(Dir() / "merged_logits.safetensors")["logits"]);
  EXPECT_LT(merged_diff, 1e-4) << "Hugging Face's logits on Braid's merged weights differ from Braid's";
  std::printf("%s: after a step, max |braid - peft| = %.3g, max |braid - hf(merged)| = %.3g\n",
              GetParam().c_str(), peft_diff, merged_diff);
}

INSTANTIATE_TEST_SUITE_P(Kinds, LlmReferenceTest,
                         testing::Values("llama_gqa", "llama_tied_bf16", "qwen2", "mistral", "gpt2"),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace braid::worker
