// `braid run examples/llm-lora.yaml --baselines`, as the demo runs it: the
// federated LoRA adapter must beat the base model and every tenant's
// local-only adapter on the pooled held-out set, only the adapter travels,
// and the job's output is an adapter folder in PEFT's layout.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/core/safetensors.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The demo's base model, built once (cached) by the script `make demo` runs.
// Needs the Python reference stack (scripts/pyref.sh, which `make test`
// prepares); without it the test fails and the log says why.
void BuildDemoModel(const std::string& dir) {
  auto proc = cli::Subprocess::Start({"/bin/bash", SourcePath("scripts/demo-model.sh")},
                                    dir + "/demo-model.log", dir + "/demo-model.out");
  ASSERT_TRUE(proc.ok()) << proc.status();
  ASSERT_EQ(proc->Wait(absl::Minutes(30)), 0)
      << "scripts/demo-model.sh failed:\n" << ReadFile(dir + "/demo-model.log");
}

// The bytes of the adapter the job wrote at `path`, checking that every
// tensor in it is a LoRA tensor; 0 (and a test failure) if it cannot be read.
int64_t AdapterBytes(const std::string& path) {
  auto adapter = safetensors::Read(path);
  if (!adapter.ok()) {
    ADD_FAILURE() << adapter.status();
    return 0;
  }
  int64_t bytes = 0;
  for (const Tensor& t : adapter->tensors) {
    EXPECT_NE(t.name.find(".lora_"), std::string::npos) << t.name;
    bytes += static_cast<int64_t>(t.data.size());
  }
  return bytes;
}

TEST(BraidRunLlm, FederatedAdapterBeatsBaseAndEveryLocalOnlyAdapter) {
  const std::string dir = FreshDir("llm-run");
  BuildDemoModel(dir);
  const std::string summary_path = dir + "/summary.json";
  const std::string stdout_path = dir + "/stdout.txt";
  auto proc = cli::Subprocess::Start(
      {Binary("braid"), "run", SourcePath("examples/llm-lora.yaml"), "--workdir", dir + "/work",
       "--summary", summary_path, "--baselines"},
      dir + "/braid.log", stdout_path);
  ASSERT_TRUE(proc.ok()) << proc.status();
  const int code = proc->Wait(absl::Minutes(30));
  const std::string out = ReadFile(stdout_path);
  ASSERT_EQ(code, 0) << out << ReadFile(dir + "/braid.log");

  const json s = json::parse(ReadFile(summary_path));
  EXPECT_EQ(s["phase"], "Succeeded");
  const size_t rounds = s["rounds"].size();
  ASSERT_GE(rounds, 2u);
  EXPECT_NE(out.find("perplexity"), std::string::npos) << out;

  // What travels is the adapter: each round moves 3 adapter updates up and
  // 6 copies of the global adapter down (fit and evaluate tasks), plus
  // framing; far less than one copy of the base.
  const int64_t adapter_bytes = AdapterBytes(s["model"].get<std::string>());
  ASSERT_GT(adapter_bytes, 0);
  auto base = safetensors::Read(SourcePath("examples/models/tiny-llama/model.safetensors"));
  ASSERT_TRUE(base.ok()) << base.status();
  int64_t base_bytes = 0;
  for (const Tensor& t : base->tensors) base_bytes += static_cast<int64_t>(t.data.size());
  for (const json& r : s["rounds"]) {
    EXPECT_EQ(r["participants"], 3);
    EXPECT_TRUE(r.contains("perplexity"));
    // Each tenant's eval loss and perplexity on its own split, beside the pooled.
    ASSERT_EQ(r["tenant_eval"].size(), 3u) << r;
    for (const auto& [tenant, e] : r["tenant_eval"].items()) {
      EXPECT_NEAR(e["perplexity"].get<double>(), std::exp(e["eval_loss"].get<double>()), 1e-9)
          << tenant;
      EXPECT_GT(e["num_examples"].get<int64_t>(), 0) << tenant;
    }
    EXPECT_FALSE(r.contains("eval_accuracy"));
    const int64_t up = r["bytes_up"].get<int64_t>();
    const int64_t down = r["bytes_down"].get<int64_t>();
    EXPECT_GE(up, 3 * adapter_bytes);
    EXPECT_LT(up, 3 * adapter_bytes * 11 / 10 + 65536);
    EXPECT_GE(down, 3 * adapter_bytes);
    EXPECT_LT(down, 6 * adapter_bytes * 11 / 10 + 65536);
  }
  EXPECT_LT(adapter_bytes * 4, base_bytes);

  // The deliverable: PEFT's adapter folder.
  const fs::path peft = s["adapter"].get<std::string>();
  EXPECT_TRUE(fs::exists(peft / "adapter_model.safetensors"));
  const json config = json::parse(ReadFile((peft / "adapter_config.json").string()));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 8);

  // Did federating help? Below the base and every tenant alone, on pooled data.
  const double federated = s["final"]["pooled"]["eval_loss"];
  const double base_loss = s["final"]["base"]["eval_loss"];
  EXPECT_NEAR(s["final"]["pooled"]["perplexity"].get<double>(), std::exp(federated), 1e-6);
  EXPECT_LT(federated, base_loss - 0.05) << "base " << base_loss << " vs federated " << federated;
  ASSERT_EQ(s["baselines"].size(), 3u);
  for (const auto& [tenant, b] : s["baselines"].items()) {
    const double local = b["pooled"]["eval_loss"];
    EXPECT_LT(federated, local - 0.02) << tenant << ": local-only " << local << " vs federated "
                                       << federated;
  }
}

// The same model and data under secure aggregation: each round's adapter
// updates reach the aggregator only masked, and the sum still trains.
TEST(BraidRunLlm, SecureAggregationCarriesTheAdapterMaskedAndStillLearns) {
  const std::string dir = FreshDir("llm-secagg");
  BuildDemoModel(dir);
  const std::string ex = SourcePath("examples");
  const std::string job = dir + "/job.yaml";
  WriteFile(job, absl::StrCat(
                     "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
                     "metadata: {name: llm-secagg, namespace: default}\n"
                     "spec:\n"
                     "  model:\n"
                     "    kind: llama\n"
                     "    base: {path: ", ex, "/models/tiny-llama}\n",
                     "    adapter: {type: lora, rank: 8, alpha: 16, targets: [q_proj, v_proj]}\n"
                     "  data: {format: jsonl, maxLength: 64, evalFraction: 0.2}\n"
                     "  strategy: {rounds: 2, minClients: 3, roundTimeout: 5m}\n"
                     "  training: {localEpochs: 1, batchSize: 16, learningRate: 0.005, "
                     "optimizer: adam, seed: 7}\n"
                     "  privacy:\n"
                     "    secureAggregation: true\n"
                     "    secureAggregationSettings: {threshold: 0.5, quantizationRange: 1.0}\n"
                     "  evaluation: {pooled: {path: ", ex, "/data/pooled-test.jsonl}}\n",
                     "  tenants:\n"
                     "  - {name: math-club, data: {path: ", ex, "/data/math-club.jsonl}}\n",
                     "  - {name: thesaurus, data: {path: ", ex, "/data/thesaurus.jsonl}}\n",
                     "  - {name: word-games, data: {path: ", ex, "/data/word-games.jsonl}}\n"));
  const std::string summary_path = dir + "/summary.json";
  // The job sits in its own folder and names the examples' files: allowed
  // explicitly (paths are confined to the job's folder otherwise).
  auto proc = cli::Subprocess::Start({Binary("braid"), "run", job, "--workdir", dir + "/work",
                                     "--summary", summary_path, "--allow-path", ex},
                                    dir + "/braid.log", dir + "/stdout.txt");
  ASSERT_TRUE(proc.ok()) << proc.status();
  ASSERT_EQ(proc->Wait(absl::Minutes(30)), 0)
      << ReadFile(dir + "/stdout.txt") << ReadFile(dir + "/braid.log");
  const json s = json::parse(ReadFile(summary_path));
  EXPECT_EQ(s["phase"], "Succeeded");
  ASSERT_EQ(s["rounds"].size(), 2u);

  // Every worker ran the secure protocol and uploaded a masked adapter.
  for (const char* tenant : {"math-club", "thesaurus", "word-games"}) {
    EXPECT_NE(ReadFile(dir + "/work/logs/worker-" + tenant + "-0.log")
                  .find("fit (secure aggregation)"),
              std::string::npos)
        << tenant;
  }
  const int64_t adapter_bytes = AdapterBytes(s["model"].get<std::string>());
  ASSERT_GT(adapter_bytes, 0);
  for (const json& r : s["rounds"]) {
    EXPECT_EQ(r["participants"], 3) << r;
    // Masked inputs are 4 bytes per adapter value, like fp32.
    EXPECT_GE(r["bytes_up"].get<int64_t>(), 3 * adapter_bytes) << r;
    EXPECT_LT(r["bytes_up"].get<int64_t>(), 3 * adapter_bytes * 11 / 10 + 65536) << r;
  }
  // The unmasked sum trained the adapter: below the base on pooled data.
  EXPECT_LT(s["final"]["pooled"]["eval_loss"].get<double>(),
            s["final"]["base"]["eval_loss"].get<double>() - 0.05)
      << s["final"].dump();
}

}  // namespace
}  // namespace braid::e2e
