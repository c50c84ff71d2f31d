// `braid run` on the example job, as a user runs it: the federated model
// must beat every tenant's local-only model on the pooled held-out set.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "braid/core/safetensors.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(BraidRun, ExampleJobBeatsEveryLocalOnlyBaseline) {
  const std::string dir = FreshDir("run");
  const std::string summary_path = dir + "/summary.json";
  const std::string stdout_path = dir + "/stdout.txt";
  auto proc = cli::Subprocess::Start(
      {Binary("braid"), "run", SourcePath("examples/tabular.yaml"), "--workdir", dir + "/work",
       "--summary", summary_path, "--baselines"},
      dir + "/braid.log", stdout_path);
  ASSERT_TRUE(proc.ok()) << proc.status();
  const int code = proc->Wait(absl::Minutes(10));
  const std::string out = ReadFile(stdout_path);
  ASSERT_EQ(code, 0) << out << ReadFile(dir + "/braid.log");

  // One progress line per round.
  for (int r = 1; r <= 10; ++r) {
    EXPECT_NE(out.find("round " + std::to_string(r) + "/10 "), std::string::npos) << out;
  }
  const json s = json::parse(ReadFile(summary_path));
  EXPECT_EQ(s["job"], "tabular-demo");
  EXPECT_EQ(s["phase"], "Succeeded");
  ASSERT_EQ(s["rounds"].size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    const json& r = s["rounds"][i];
    EXPECT_EQ(r["round"], i + 1);
    EXPECT_EQ(r["participants"], 3);
    EXPECT_GT(r["bytes_up"].get<int64_t>(), 0);
    EXPECT_GT(r["bytes_down"].get<int64_t>(), 0);
    EXPECT_GT(r["eval_accuracy"].get<double>(), 0.0);
  }
  // Training helps: the last round's loss is below the first's.
  EXPECT_LT(s["rounds"][9]["eval_loss"].get<double>(), s["rounds"][0]["eval_loss"].get<double>());

  // The final model is a safetensors file with the MLP's layout.
  auto model = safetensors::Read(s["model"].get<std::string>());
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->tensors.size(), 6u);  // 3 Linear layers x (weight, bias)
  EXPECT_EQ(model->tensors[0].name, "layers.0.weight");
  EXPECT_EQ(model->tensors[0].shape, (std::vector<int64_t>{32, 8}));

  // Did federating help? Better than every tenant alone, on pooled data.
  const double federated = s["final"]["pooled"]["eval_accuracy"];
  ASSERT_EQ(s["baselines"].size(), 3u);
  for (const auto& [tenant, b] : s["baselines"].items()) {
    const double local = b["pooled"]["eval_accuracy"];
    EXPECT_GT(federated, local + 0.05) << tenant << ": local-only " << local << " vs federated "
                                       << federated;
  }
  // No child left behind: nothing listens on the aggregator's port.
  const int port = std::stoi(ReadFile(dir + "/work/aggregator.port"));
  auto probe = StartAggregator(SourcePath("examples/tabular.yaml"), FreshDir("probe"),
                               s["model"].get<std::string>(), port);
  EXPECT_TRUE(probe.ok()) << "port " << port << " still taken: " << probe.status();
}

// Each strategy beyond FedAvg runs the example job end to end (aggregator,
// workers, checkpoint; a robust one's updates spilled to disk) and learns:
// its final model classifies the pooled held-out set at least twice as
// well as chance (4 classes). Krum keeps one tenant's update a round, and
// the example's tenants hold different parts of the data, so it learns less
// than the averaging rules here. The example has 3 clients: Bulyan with
// f = 0 (all 3 in every round) is the most it admits.
TEST(BraidRun, EveryStrategyTrainsTheExampleJob) {
  const std::string job = ReadFile(SourcePath("examples/tabular.yaml"));
  const std::string data_dir = SourcePath("examples/data");
  for (const std::string& strategy :
       {std::string("fedprox, proximalMu: 0.01"),
        std::string("fedavgm, serverLearningRate: 0.5, serverMomentum: 0.5"),
        std::string("fedadam"), std::string("fedyogi"), std::string("fedadagrad"),
        std::string("median"), std::string("trimmedmean, trimFraction: 0.34"),
        std::string("krum"), std::string("multikrum, keepClients: 2"),
        std::string("bulyan")}) {
    const std::string name = strategy.substr(0, strategy.find(','));
    SCOPED_TRACE(name);
    const std::string dir = FreshDir("run-" + name);
    std::string text = job;
    text.replace(text.find("name: fedavg,"), 13, "name: " + strategy + ",");
    if (name == "bulyan") text.replace(text.find("minClients: 2"), 13, "minClients: 3");
    for (size_t at = text.find("path: data/"); at != std::string::npos;
         at = text.find("path: data/", at)) {
      text.replace(at, 11, "path: " + data_dir + "/");
    }
    std::ofstream(dir + "/job.yaml") << text;
    auto proc = cli::Subprocess::Start({Binary("braid"), "run", dir + "/job.yaml", "--allow-path",
                                        data_dir, "--workdir", dir + "/work", "--summary",
                                        dir + "/summary.json"},
                                       dir + "/braid.log", dir + "/stdout.txt");
    ASSERT_TRUE(proc.ok()) << proc.status();
    ASSERT_EQ(proc->Wait(absl::Minutes(5)), 0) << ReadFile(dir + "/braid.log");
    const json s = json::parse(ReadFile(dir + "/summary.json"));
    EXPECT_EQ(s["phase"], "Succeeded");
    ASSERT_EQ(s["rounds"].size(), 10u);
    EXPECT_LT(s["rounds"][9]["eval_loss"].get<double>(), s["rounds"][0]["eval_loss"].get<double>());
    EXPECT_GT(s["final"]["pooled"]["eval_accuracy"].get<double>(), 0.5);
  }
}

TEST(BraidValidate, PrintsEveryProblemAndExits2) {
  const std::string dir = FreshDir("validate");
  WriteFile(dir + "/bad.yaml",
            "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: x}\n"
            "spec:\n  model: {kind: mlp, mlp: {numClasses: 2}}\n"
            "  data: {features: [a], label: y}\n"
            "  strategy: {rounds: -1}\n"
            "  tenants:\n  - {name: a, data: {path: nowhere.csv}}\n");
  auto proc = cli::Subprocess::Start({Binary("braid"), "validate", dir + "/bad.yaml"},
                                    dir + "/log", dir + "/out");
  ASSERT_TRUE(proc.ok());
  EXPECT_EQ(proc->Wait(absl::Seconds(30)), 2);
  const std::string out = ReadFile(dir + "/out");
  EXPECT_NE(out.find("spec.strategy.rounds"), std::string::npos) << out;
  EXPECT_NE(out.find("spec.tenants[0].data.path"), std::string::npos) << out;

  auto good = cli::Subprocess::Start({Binary("braid"), "validate", SourcePath("examples/tabular.yaml")},
                                    dir + "/log", dir + "/out2");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->Wait(absl::Seconds(30)), 0) << ReadFile(dir + "/out2");
}

TEST(ExampleData, GeneratorReproducesTheCommittedFiles) {
  const std::string dir = FreshDir("gen");
  auto proc = cli::Subprocess::Start(
      {"/usr/bin/env", "python3", SourcePath("examples/data/generate_tabular.py"), dir},
      dir + "/log");
  ASSERT_TRUE(proc.ok());
  ASSERT_EQ(proc->Wait(absl::Seconds(60)), 0) << ReadFile(dir + "/log");
  for (const char* f : {"st-mary.csv", "charite.csv", "karolinska.csv", "pooled-test.csv"}) {
    EXPECT_EQ(ReadFile(dir + "/" + f), ReadFile(SourcePath(std::string("examples/data/") + f)))
        << f << " differs from what generate_tabular.py makes";
  }
}

}  // namespace
}  // namespace braid::e2e
