// braid-worker export's merged checkpoint against PEFT, for the job's LoRA
// settings (tiny random checkpoints made by export_reference.py with
// transformers 4.46.3 and PEFT 0.13.2 at test time; no downloads). Per kind:
//   1. The adapter a job's JobTrainer exchanges has exactly the tensor names
//      and shapes PEFT saves for the same LoRA settings.
//   2. An adapter with non-zero lora_B, written as a global model file, is
//      exported by the real command (`braid-worker export --job J --model M
//      --out D`, adapter.writeMerged: true).
//   3. transformers loads D/merged; PEFT loads D/adapter onto the base: their
//      fp32 logits agree within 1e-4 (and differ from the base's, so the
//      adapter is in both). Braid loading D/merged agrees too.
// If the reference stack is missing or a script fails, the test fails with
// the reason.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "braid/core/safetensors.h"
#include "braid/core/spec.h"
#include "braid/worker/checkpoint.h"
#include "braid/worker/job_trainer.h"
#include "reference_support.h"

namespace braid::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using reference::MaxAbsDiff;
using reference::ReadTensors;
using reference::RunCommand;

struct Kind {
  std::string name;        // export_reference.py's kind
  std::string model_kind;  // spec.model.kind
  std::vector<std::string> targets;
};

// The same LoRA settings as export_reference.py's (rank 4, alpha 8).
std::string JobYaml(const Kind& kind) {
  return absl::StrCat(R"(apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: export-ref}
spec:
  model:
    kind: )", kind.model_kind, R"(
    base: {path: base}
    adapter: {type: lora, rank: 4, alpha: 8, targets: [)", absl::StrJoin(kind.targets, ", "), R"(], writeMerged: true}
  data: {maxLength: 32}  # within the tiny GPT-2's n_positions
  strategy: {rounds: 1}
  tenants:
  - name: a
    data: {path: a.jsonl}
)");
}

class ExportReferenceTest : public testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    scratch_ = fs::temp_directory_path() /
               absl::StrCat("braid-export-ref-", GetParam().name, "-", getpid());
    fs::remove_all(scratch_);
    fs::create_directories(scratch_);
    python_ = reference::ReferencePython(scratch_);
    ASSERT_FALSE(python_.empty());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(scratch_);
  }
  void Script(const std::string& phase) {
    RunCommand(absl::StrCat(python_, " ", BRAID_SOURCE_DIR, "/tests/reference/export_reference.py ",
                            phase, " ", scratch_.string(), " ", GetParam().name),
               scratch_);
  }
  fs::path Dir() const { return scratch_ / GetParam().name; }

  fs::path scratch_;
  std::string python_;
};

TEST_P(ExportReferenceTest, MergedCheckpointGivesPeftsLogitsForBasePlusAdapter) {
  Script("make");
  ASSERT_FALSE(HasFailure());
  const fs::path job_file = Dir() / "job.yaml";
  std::ofstream(job_file) << JobYaml(GetParam());
  spec::ParseOptions parse;
  parse.check_files = false;
  auto job = spec::ParseJobFile(job_file.string(), parse);
  ASSERT_TRUE(job.ok()) << job.status();

  // 1. The exchanged adapter is PEFT's, name for name and shape for shape.
  auto trainer = JobTrainer::Create(*job, TrainerSource{});
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  TensorList adapter = (*trainer)->Weights();
  std::ifstream layout_in(Dir() / "peft_layout.json");
  const json layout = json::parse(layout_in);
  ASSERT_EQ(adapter.size(), layout.size());
  for (const Tensor& t : adapter) {
    ASSERT_TRUE(layout.contains(t.name)) << t.name << " is not a tensor PEFT saves";
    EXPECT_EQ(t.shape, layout[t.name].get<std::vector<int64_t>>()) << t.name;
  }

  // 2. A trained-looking adapter (lora_B non-zero), exported by the command.
  torch::manual_seed(5);
  for (Tensor& t : adapter) {
    const torch::Tensor values = torch::randn(t.shape) * 0.3;
    std::memcpy(t.data.data(), values.data_ptr<float>(), t.data.size());
  }
  const fs::path model_file = Dir() / "global.safetensors";
  ASSERT_TRUE(safetensors::Write(model_file.string(), adapter, {{"format", "pt"}}).ok());
  const fs::path out = Dir() / "export";
  RunCommand(absl::StrCat(BRAID_BUILD_DIR, "/bin/braid-worker export --job ", job_file.string(),
                          " --model ", model_file.string(), " --out ", out.string()),
             scratch_);
  ASSERT_FALSE(HasFailure());

  // 3. The merged checkpoint against base + adapter in PEFT.
  Script("check");
  ASSERT_FALSE(HasFailure());
  auto logits = ReadTensors(Dir() / "check_logits.safetensors");
  const double merged_vs_peft = MaxAbsDiff(logits["merged"], logits["peft"]);
  const double adapter_effect = MaxAbsDiff(logits["base"], logits["peft"]);
  EXPECT_LT(merged_vs_peft, 1e-4) << "transformers on the merged checkpoint differs from PEFT";
  EXPECT_GT(adapter_effect, 1e-2) << "the adapter hardly changes the logits: the test proves nothing";
  auto merged = LoadCausalLm((out / "merged").string());
  ASSERT_TRUE(merged.ok()) << merged.status();
  double braid_vs_peft;
  {
    torch::NoGradGuard no_grad;
    braid_vs_peft = MaxAbsDiff((*merged)->forward(logits["input_ids"], logits["attention_mask"]),
                               logits["peft"]);
  }
  EXPECT_LT(braid_vs_peft, 1e-4) << "Braid on its merged checkpoint differs from PEFT";
  std::printf("%s: max |hf(merged) - peft(base+adapter)| = %.3g, |braid(merged) - peft| = %.3g, "
              "adapter's effect %.3g\n",
              GetParam().name.c_str(), merged_vs_peft, braid_vs_peft, adapter_effect);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ExportReferenceTest,
    testing::Values(Kind{"llama", "llama",
                         {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
                    Kind{"llama_tied", "llama", {"q_proj", "v_proj"}},
                    Kind{"gpt2", "gpt2", {"c_attn", "c_proj", "c_fc"}}),
    [](const testing::TestParamInfo<Kind>& info) { return info.param.name; });

}  // namespace
}  // namespace braid::worker
