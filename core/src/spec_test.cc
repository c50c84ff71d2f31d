#include "braid/core/spec.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace braid::spec {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

const std::string kTestdata = BRAID_CORE_TESTDATA;
const std::string kSpecDir = kTestdata + "/spec";
const std::string kGoodDir = kSpecDir + "/good";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> YamlFilesIn(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The status message as a std::string (Debian's absl::string_view is not
// std::string_view, and gMock's string matchers want std::string).
std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::vector<std::string> Lines(const absl::Status& status) {
  return absl::StrSplit(Message(status), '\n');
}

// A valid job whose spec gets `extra` (indented YAML lines) before the
// tenants; parse it with base_dir kGoodDir so data/a.csv exists.
std::string Job(const std::string& extra = "",
                const std::string& tenants = "  - {name: a, data: {path: data/a.csv}}\n") {
  return "apiVersion: braid.dev/v1alpha1\n"
         "kind: FederatedJob\n"
         "metadata: {name: test}\n"
         "spec:\n"
         "  data: {features: [x0, x1, x2]}\n" +
         extra + "  tenants:\n" + tenants;
}

// Elapsed seconds of `f`, printed (not asserted: timings belong in bench/).
template <typename F>
void Timed(const std::string& what, F f) {
  auto start = std::chrono::steady_clock::now();
  f();
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::cout << "[ info     ] " << what << " took " << took.count() << " s\n";
}

TEST(ParseJobFileTest, MinimalJobGetsEveryDefault) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/minimal.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->api_version, "braid.dev/v1alpha1");
  EXPECT_EQ(job->kind, "FederatedJob");
  EXPECT_EQ(job->name, "minimal");
  EXPECT_EQ(job->namespace_, "default");
  EXPECT_EQ(job->base_dir, kGoodDir);
  EXPECT_EQ(job->model.kind, "mlp");
  EXPECT_THAT(job->model.mlp.hidden, ElementsAre(64, 64));
  EXPECT_EQ(job->model.mlp.num_classes, 2);
  EXPECT_EQ(job->data.format, "csv");
  EXPECT_THAT(job->data.features, ElementsAre("x0", "x1", "x2"));
  EXPECT_EQ(job->data.label, "label");
  EXPECT_DOUBLE_EQ(job->data.eval_fraction, 0.2);
  EXPECT_EQ(job->strategy.name, "fedavg");
  EXPECT_EQ(job->strategy.rounds, 10);
  EXPECT_EQ(job->strategy.min_clients, 1);
  EXPECT_EQ(job->strategy.min_tenants, 1);  // min(2, one tenant)
  EXPECT_DOUBLE_EQ(job->strategy.fraction_fit, 1.0);
  EXPECT_DOUBLE_EQ(job->strategy.round_timeout_seconds, 300);
  EXPECT_EQ(job->training.local_epochs, 1);
  EXPECT_EQ(job->training.batch_size, 32);
  EXPECT_DOUBLE_EQ(job->training.learning_rate, 0.01);
  EXPECT_EQ(job->training.optimizer, "sgd");
  EXPECT_EQ(job->training.seed, 0);
  EXPECT_EQ(job->evaluation.pooled.path, "");
  ASSERT_THAT(job->tenants, SizeIs(1));
  EXPECT_EQ(job->tenants[0].name, "a");
  EXPECT_EQ(job->tenants[0].namespace_, "");
  EXPECT_EQ(job->tenants[0].replicas, 1);
  EXPECT_EQ(job->tenants[0].data.path, "data/a.csv");
  EXPECT_EQ(job->tenants[0].data.claim_name, "");
  EXPECT_EQ(job->TotalReplicas(), 1);
}

TEST(ParseJobFileTest, FullJobSetsEveryField) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/full.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name, "tabular-demo");
  EXPECT_EQ(job->namespace_, "research");
  EXPECT_THAT(job->model.mlp.hidden, ElementsAre(128, 64, 32));
  EXPECT_EQ(job->model.mlp.num_classes, 4);
  EXPECT_DOUBLE_EQ(job->data.eval_fraction, 0.25);
  EXPECT_EQ(job->strategy.rounds, 20);
  EXPECT_EQ(job->strategy.min_clients, 3);
  EXPECT_EQ(job->strategy.min_tenants, 2);
  EXPECT_DOUBLE_EQ(job->strategy.fraction_fit, 0.5);
  EXPECT_DOUBLE_EQ(job->strategy.round_timeout_seconds, 5400);
  EXPECT_EQ(job->training.local_epochs, 2);
  EXPECT_EQ(job->training.batch_size, 16);
  EXPECT_DOUBLE_EQ(job->training.learning_rate, 0.05);
  EXPECT_EQ(job->training.optimizer, "adam");
  EXPECT_EQ(job->training.seed, 7);
  EXPECT_EQ(job->evaluation.pooled.path, "data/pooled.csv");
  ASSERT_THAT(job->tenants, SizeIs(2));
  EXPECT_EQ(job->tenants[0].name, "st-mary");
  EXPECT_EQ(job->tenants[0].namespace_, "tenant-st-mary");
  EXPECT_EQ(job->tenants[0].replicas, 2);
  EXPECT_EQ(job->tenants[1].name, "general");
  EXPECT_EQ(job->TotalReplicas(), 3);
}

TEST(ParseJobFileTest, LanguageModelJobGetsLoraAndJsonlDefaults) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/llm_minimal.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.kind, "llama");
  EXPECT_TRUE(job->model.IsLanguageModel());
  EXPECT_EQ(job->model.base.path, "models/tiny");
  EXPECT_EQ(ResolvedPath(*job, job->model.base.path), kGoodDir + "/models/tiny");
  EXPECT_EQ(job->model.adapter.type, "lora");
  EXPECT_EQ(job->model.adapter.rank, 8);
  EXPECT_DOUBLE_EQ(job->model.adapter.alpha, 16);
  EXPECT_DOUBLE_EQ(job->model.adapter.dropout, 0.0);
  EXPECT_THAT(job->model.adapter.targets, ElementsAre("q_proj", "v_proj"));
  EXPECT_FALSE(job->model.adapter.write_merged);
  EXPECT_EQ(job->data.format, "jsonl");
  EXPECT_THAT(job->data.features, SizeIs(0));
  EXPECT_EQ(job->data.max_length, 512);
  EXPECT_FALSE(job->data.packing);
  EXPECT_DOUBLE_EQ(job->data.eval_fraction, 0.2);
}

TEST(ParseJobFileTest, LanguageModelJobSetsEveryField) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/llm_full.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.kind, "gpt2");
  EXPECT_EQ(job->model.adapter.rank, 16);
  EXPECT_DOUBLE_EQ(job->model.adapter.alpha, 32);
  EXPECT_DOUBLE_EQ(job->model.adapter.dropout, 0.05);
  EXPECT_THAT(job->model.adapter.targets, ElementsAre("c_attn", "c_proj", "mlp.c_fc"));
  EXPECT_TRUE(job->model.adapter.write_merged);
  EXPECT_EQ(job->data.format, "jsonl");
  EXPECT_EQ(job->data.max_length, 1024);
  EXPECT_TRUE(job->data.packing);
  EXPECT_DOUBLE_EQ(job->data.eval_fraction, 0.1);
}

TEST(ParseJobYamlTest, Gpt2AdapterDefaultsToItsAttentionProjection) {
  absl::StatusOr<JobSpec> job = ParseJobYaml(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: g}\nspec:\n"
      "  model: {kind: gpt2, base: {path: models/tiny}, adapter: {rank: 4}}\n"
      "  data: {maxLength: 64}\n"
      "  tenants: [{name: a, data: {path: data/a.jsonl}}]\n",
      kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.adapter.rank, 4);
  EXPECT_THAT(job->model.adapter.targets, ElementsAre("c_attn"));
  EXPECT_EQ(job->data.format, "jsonl");
  EXPECT_EQ(job->data.max_length, 64);
}

TEST(ParseJobYamlTest, CheckpointOnAClaimIsForKubernetesOnly) {
  const std::string yaml =
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: g}\nspec:\n"
      "  model:\n    kind: llama\n"
      "    base: {persistentVolumeClaim: {claimName: models, subPath: smollm2-135m}}\n"
      "  tenants: [{name: a, data: {path: data/a.jsonl}}]\n";
  ParseOptions kubernetes;
  kubernetes.check_files = false;
  absl::StatusOr<JobSpec> job = ParseJobYaml(yaml, "", kubernetes);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->model.base.claim_name, "models");
  EXPECT_EQ(job->model.base.sub_path, "smollm2-135m");
  EXPECT_EQ(job->model.base.path, "");

  std::vector<FieldError> local = ValidateJobYaml(yaml, kGoodDir);
  ASSERT_FALSE(local.empty());
  EXPECT_EQ(local[0].path, "spec.model.base.persistentVolumeClaim");
  EXPECT_THAT(local[0].message, HasSubstr("set path to a local folder"));
}

TEST(ParseJobYamlTest, SiteTenantsNameASiteAndADatasetInsteadOfData) {
  const std::string yaml = Job("", "  - {name: a, data: {path: data/a.csv}}\n"
                                   "  - {name: st-mary, site: st-mary, dataset: notes.v2, "
                                   "replicas: 2}\n");
  ParseOptions coordinator;
  coordinator.check_files = false;
  absl::StatusOr<JobSpec> job = ParseJobYaml(yaml, "", coordinator);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_THAT(job->tenants, SizeIs(2));
  EXPECT_FALSE(job->tenants[0].IsSite());
  EXPECT_TRUE(job->tenants[1].IsSite());
  EXPECT_EQ(job->tenants[1].site, "st-mary");
  EXPECT_EQ(job->tenants[1].dataset, "notes.v2");
  EXPECT_EQ(job->tenants[1].data.path, "");
  EXPECT_EQ(job->tenants[1].data.claim_name, "");
  EXPECT_EQ(job->tenants[1].namespace_, "");
  EXPECT_EQ(job->TotalReplicas(), 3);

  // braid run and braid validate (files checked) have no sites.
  std::vector<FieldError> local = ValidateJobYaml(yaml, kGoodDir);
  ASSERT_THAT(local, SizeIs(1));
  EXPECT_EQ(local[0].path, "spec.tenants[1].site");
  EXPECT_THAT(local[0].message, AllOf(HasSubstr("braid run has no sites"),
                                      HasSubstr("coordinator role")));
}

TEST(ParseJobYamlTest, SiteTenantProblemsNameTheField) {
  ParseOptions coordinator;
  coordinator.check_files = false;
  auto problems = [&](const std::string& tenant) {
    std::vector<std::string> out;
    for (const FieldError& e : ValidateJobYaml(Job("", tenant), "", coordinator)) {
      out.push_back(e.ToString());
    }
    return out;
  };
  EXPECT_THAT(problems("  - {name: a, site: s}\n"),
              ElementsAre(StartsWith("spec.tenants[0].dataset: required when site is set")));
  EXPECT_THAT(problems("  - {name: a, dataset: d}\n"),
              ElementsAre(StartsWith("spec.tenants[0].site: required when dataset is set")));
  EXPECT_THAT(problems("  - {name: a, site: s, dataset: d, data: {path: a.csv}}\n"),
              ElementsAre(StartsWith("spec.tenants[0].data: not with site and dataset")));
  EXPECT_THAT(problems("  - {name: a, dataset: d, data: {path: a.csv}}\n"),
              ElementsAre(StartsWith("spec.tenants[0].data: not with site and dataset")));
  EXPECT_THAT(problems("  - {name: a, namespace: n, site: s, dataset: d}\n"),
              ElementsAre(StartsWith("spec.tenants[0].namespace: not with site")));
  EXPECT_THAT(problems("  - {name: a, site: s, dataset: 7}\n"),
              ElementsAre(StartsWith("spec.tenants[0].dataset: must be a string")));
  EXPECT_THAT(problems("  - {name: a}\n"),
              ElementsAre(AllOf(StartsWith("spec.tenants[0].data: required"),
                                HasSubstr("or site and dataset"))));
  EXPECT_THAT(problems("  - {name: a, site: s, dataset: d}\n"
                       "  - {name: b, site: s, dataset: e}\n"),
              ElementsAre(StartsWith("spec.tenants[1].site: site \"s\" is already tenant \"a\" "
                                     "(spec.tenants[0])")));
}

TEST(ParseJobFileTest, EveryGoodFileParses) {
  std::vector<std::string> files = YamlFilesIn(kGoodDir);
  ASSERT_THAT(files, testing::Contains("minimal.yaml"));
  for (const std::string& file : files) {
    absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/" + file);
    EXPECT_TRUE(job.ok()) << file << ":\n" << job.status().message();
  }
}

TEST(ParseJobFileTest, AnchorsAndAliasesShareValues) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/anchors.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_THAT(job->tenants, SizeIs(2));
  EXPECT_EQ(job->tenants[1].replicas, 2);
  EXPECT_EQ(job->tenants[1].data.path, "data/a.csv");
  EXPECT_EQ(job->strategy.min_clients, 4);
}

TEST(ParseJobFileTest, QuotedStringsAndRangeEdgesAreAccepted) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/edge_values.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_THAT(job->data.features, ElementsAre("1", "y", "x0"));
  EXPECT_EQ(job->data.label, "no");
  EXPECT_TRUE(job->model.mlp.hidden.empty());
  EXPECT_DOUBLE_EQ(job->strategy.round_timeout_seconds, 1);
  EXPECT_EQ(job->training.batch_size, 1048576);
  EXPECT_EQ(job->tenants[0].replicas, 1000);
}

TEST(ParseJobYamlTest, ServerOptimizersTakeFlowersDefaultsUnlessGiven) {
  struct Case {
    const char* name;
    ServerOptimizer want;
  };
  // flwr 1.42: FedAvgM(server_learning_rate=1.0, server_momentum=0.0),
  // FedAdam(eta=0.1, beta_1=0.9, beta_2=0.99, tau=1e-9),
  // FedYogi(eta=0.01, beta_1=0.9, beta_2=0.99, tau=1e-3), FedAdagrad(eta=0.1, tau=1e-9).
  for (const Case& c : {Case{"fedavgm", {1.0, 0, 0, 0, 0}}, Case{"fedadam", {0.1, 0, 0.9, 0.99, 1e-9}},
                        Case{"fedyogi", {0.01, 0, 0.9, 0.99, 1e-3}},
                        Case{"fedadagrad", {0.1, 0, 0, 0, 1e-9}}}) {
    absl::StatusOr<JobSpec> job =
        ParseJobYaml(Job(absl::StrCat("  strategy: {name: ", c.name, "}\n")), kGoodDir);
    ASSERT_TRUE(job.ok()) << c.name << ": " << job.status();
    EXPECT_EQ(job->strategy.name, c.name);
    EXPECT_DOUBLE_EQ(job->strategy.server.learning_rate, c.want.learning_rate) << c.name;
    EXPECT_DOUBLE_EQ(job->strategy.server.momentum, c.want.momentum) << c.name;
    EXPECT_DOUBLE_EQ(job->strategy.server.beta1, c.want.beta1) << c.name;
    EXPECT_DOUBLE_EQ(job->strategy.server.beta2, c.want.beta2) << c.name;
    EXPECT_DOUBLE_EQ(job->strategy.server.tau, c.want.tau) << c.name;
  }
  absl::StatusOr<JobSpec> given = ParseJobYaml(
      Job("  strategy: {name: fedavgm, serverLearningRate: 0.5, serverMomentum: 0.9}\n"),
      kGoodDir);
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_DOUBLE_EQ(given->strategy.server.learning_rate, 0.5);
  EXPECT_DOUBLE_EQ(given->strategy.server.momentum, 0.9);
  given = ParseJobYaml(Job("  strategy: {name: fedyogi, beta1: 0, beta2: 0.5, tau: 0.1}\n"),
                       kGoodDir);
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_DOUBLE_EQ(given->strategy.server.learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(given->strategy.server.beta1, 0);
  EXPECT_DOUBLE_EQ(given->strategy.server.beta2, 0.5);
  EXPECT_DOUBLE_EQ(given->strategy.server.tau, 0.1);
}

TEST(ParseJobFileTest, WeightingAndMaxExamples) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/weighting.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->strategy.weighting, "uniform");
  EXPECT_EQ(job->tenants[0].max_examples, 1);
  EXPECT_EQ(job->tenants[1].max_examples, kMaxExamples);
  EXPECT_EQ(job->tenants[2].max_examples, 0);  // none declared
  job = ParseJobFile(kGoodDir + "/minimal.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->strategy.weighting, "examples");
}

TEST(ParseJobFileTest, RelativePathsResolveAgainstTheJobFilesDirectory) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir + "/../good/minimal.yaml");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->base_dir, kGoodDir);
  EXPECT_EQ(ResolvedPath(*job, job->tenants[0].data.path), kGoodDir + "/data/a.csv");
  EXPECT_EQ(ResolvedPath(*job, "/abs/x.csv"), "/abs/x.csv");

  // The same text resolved from another directory finds no file there.
  const std::string text = ReadFile(kGoodDir + "/minimal.yaml");
  absl::StatusOr<JobSpec> elsewhere = ParseJobYaml(text, kTestdata);
  EXPECT_EQ(elsewhere.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(elsewhere.status().message(),
            "spec.tenants[0].data.path: no such file: " +
                fs::path(kTestdata + "/data/a.csv").lexically_normal().string());
}

TEST(ParseJobFileTest, MissingFileIsNotFoundNamingTheFile) {
  const std::string missing = kSpecDir + "/no-such-job.yaml";
  absl::StatusOr<JobSpec> job = ParseJobFile(missing);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(job.status()), HasSubstr(missing));
}

TEST(ParseJobFileTest, DirectoryIsRefusedNamingIt) {
  absl::StatusOr<JobSpec> job = ParseJobFile(kGoodDir);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(job.status()), HasSubstr(kGoodDir));
}

TEST(ParseJobFileTest, OversizedFileIsRefusedNamingIt) {
  const fs::path dir = fs::path(testing::TempDir()) / "spec_test_big";
  fs::create_directories(dir);
  const std::string file = (dir / "big.yaml").string();
  {
    std::ofstream out(file, std::ios::binary);
    out << Job();
    out << std::string(2 * kMaxJobBytes, '#');
  }
  absl::StatusOr<JobSpec> job = ParseJobFile(file);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(job.status()), AllOf(HasSubstr(file), HasSubstr("larger than 1048576")));
  fs::remove_all(dir);
}

// Each file in testdata/spec/bad starts with "# expect: <path>: <message>"
// lines. Parsing it must fail with exactly that many errors, each line
// containing its expectation ($TESTDATA stands for the testdata directory).
class BadCorpusTest : public testing::TestWithParam<std::string> {};

TEST_P(BadCorpusTest, FailsWithExactlyTheExpectedErrors) {
  const std::string file = kSpecDir + "/bad/" + GetParam();
  std::vector<std::string> expected;
  for (absl::string_view line : absl::StrSplit(ReadFile(file), '\n')) {
    if (!absl::ConsumePrefix(&line, "# expect: ")) break;
    expected.push_back(absl::StrReplaceAll(line, {{"$TESTDATA", kTestdata}}));
  }
  ASSERT_FALSE(expected.empty()) << file << " has no '# expect: ' line";

  absl::StatusOr<JobSpec> job = ParseJobFile(file);
  ASSERT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  std::vector<std::string> errors = Lines(job.status());
  EXPECT_EQ(errors.size(), expected.size()) << job.status().message();
  for (const std::string& want : expected) {
    EXPECT_TRUE(std::any_of(errors.begin(), errors.end(),
                            [&](const std::string& got) { return absl::StrContains(got, want); }))
        << "expected an error containing:\n  " << want << "\ngot:\n"
        << job.status().message();
  }
  // Every error names where it is: a field path or the file.
  for (const std::string& error : errors) {
    EXPECT_THAT(error, testing::MatchesRegex("^[A-Za-z<][^ ]*: .*")) << error;
  }
}

std::string TestName(const testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadCorpusTest,
                         testing::ValuesIn(YamlFilesIn(BRAID_CORE_TESTDATA "/spec/bad")), TestName);

TEST(SpecCorpusTest, HasAtLeast25BadFiles) {
  EXPECT_GE(YamlFilesIn(kSpecDir + "/bad").size(), 25u);
}

TEST(ParseJobYamlTest, ReportsEveryProblemAtOnce) {
  const std::string yaml =
      Job("  strategy: {rounds: 0, minClient: 2}\n  training: {learningRate: -1}\n",
          "  - {name: A, data: {path: data/nope.csv}}\n");
  std::vector<FieldError> errors = ValidateJobYaml(yaml, kGoodDir);
  std::vector<std::string> paths;
  for (const FieldError& error : errors) paths.push_back(error.path);
  EXPECT_THAT(paths, ElementsAre("spec.strategy.minClient", "spec.strategy.rounds",
                                 "spec.training.learningRate", "spec.tenants[0].name",
                                 "spec.tenants[0].data.path"));

  absl::StatusOr<JobSpec> job = ParseJobYaml(yaml, kGoodDir);
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Lines(job.status()), SizeIs(5));
  EXPECT_EQ(Lines(job.status())[0], errors[0].ToString());
}

TEST(ParseJobYamlTest, ValidYamlHasNoErrors) {
  EXPECT_THAT(ValidateJobYaml(Job(), kGoodDir), testing::IsEmpty());
}

TEST(ParseJobYamlTest, NullValuesCountAsAbsent) {
  absl::StatusOr<JobSpec> job =
      ParseJobYaml(Job("  strategy:\n    rounds:\n    minClients: ~\n  training:\n"), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->strategy.rounds, 10);
  EXPECT_EQ(job->strategy.min_clients, 1);
}

TEST(ParseJobYamlTest, SuspendIsABoolean) {
  absl::StatusOr<JobSpec> job = ParseJobYaml(Job("  suspend: true\n"), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->suspend);
  job = ParseJobYaml(Job(""), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(job->suspend);
  for (const std::string text : {"yes", "\"true\"", "1", "[true]"}) {
    std::vector<FieldError> errors = ValidateJobYaml(Job("  suspend: " + text + "\n"), kGoodDir);
    ASSERT_EQ(errors.size(), 1u) << text;
    EXPECT_EQ(errors[0].path, "spec.suspend") << text;
  }
}

TEST(ParseJobYamlTest, DurationsInEveryAcceptedForm) {
  const std::vector<std::pair<std::string, double>> good = {
      {"30s", 30},      {"5m", 300},   {"1h30m", 5400}, {"250ms", 0.25},
      {"1.5h", 5400},   {"45", 45},    {"\"2.5s\"", 2.5}, {"\"90s\"", 90},
      {"1m30s", 90},    {"168h", 604800}};
  for (const auto& [text, seconds] : good) {
    absl::StatusOr<JobSpec> job =
        ParseJobYaml(Job("  strategy: {roundTimeout: " + text + "}\n"), kGoodDir);
    ASSERT_TRUE(job.ok()) << text << ": " << job.status();
    EXPECT_DOUBLE_EQ(job->strategy.round_timeout_seconds, seconds) << text;
  }
  for (const std::string text :
       {"5x", "2.5", "-1s", "0", "0s", "\"\"", "s", "1h-30m", "\"5\"", "1e3s", ".5.5s", "169h", "true",
        "[5s]", "1 h", "-5"}) {
    std::vector<FieldError> errors =
        ValidateJobYaml(Job("  strategy: {roundTimeout: " + text + "}\n"), kGoodDir);
    ASSERT_THAT(errors, SizeIs(1)) << text;
    EXPECT_EQ(errors[0].path, "spec.strategy.roundTimeout") << text;
  }
}

TEST(ParseJobYamlTest, KubernetesModeAcceptsClaimsAndSkipsFileChecks) {
  ParseOptions options;
  options.check_files = false;
  absl::StatusOr<JobSpec> job = ParseJobYaml(
      Job("  evaluation: {pooled: {path: mnt/pooled.csv}}\n",
          "  - name: a\n"
          "    data: {persistentVolumeClaim: {claimName: st-mary.data, subPath: train/a.csv}}\n"
          "  - {name: b, data: {path: not/there.csv}}\n"),
      "", options);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->base_dir, "");
  EXPECT_EQ(job->tenants[0].data.claim_name, "st-mary.data");
  EXPECT_EQ(job->tenants[0].data.sub_path, "train/a.csv");
  EXPECT_EQ(job->tenants[0].data.path, "");
  EXPECT_EQ(job->tenants[1].data.path, "not/there.csv");
  EXPECT_EQ(ResolvedPath(*job, "not/there.csv"), "not/there.csv");
}

TEST(ParseJobYamlTest, AliasBombIsRefusedWithoutExpanding) {
  // 30 levels of 10 aliases each: 10^30 scalars if anything expanded it.
  std::string yaml = "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
                     "metadata: {name: bomb, labels: &l0 {a: b}}\nstatus:\n";
  for (int i = 1; i <= 30; ++i) {
    yaml += absl::StrCat("  l", i, ": &l", i, " [");
    for (int j = 0; j < 10; ++j) yaml += absl::StrCat(j ? ", " : "", "*l", i - 1);
    yaml += "]\n";
  }
  yaml += "  m: &m {name: t, replicas: *l30, data: {path: *l30}, namespace: *l30}\n";
  yaml += "spec:\n  model: {mlp: {hidden: *l30, numClasses: *l30}}\n"
          "  data: {features: *l30, label: *l30}\n"
          "  strategy: {rounds: *l30, roundTimeout: *l30}\n"
          "  evaluation: {pooled: *l30}\n"
          "  tenants: [";
  for (int i = 0; i < 1000; ++i) yaml += i ? ", *m" : "*m";
  yaml += "]\n";
  ASSERT_LE(yaml.size(), kMaxJobBytes);

  std::vector<FieldError> errors;
  Timed("alias bomb", [&] { errors = ValidateJobYaml(yaml, kGoodDir); });
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].ToString(),
            "spec.model.mlp.hidden[0]: must be an integer between 1 and 65536, got a list");
  EXPECT_THAT(errors.back().ToString(),
              AllOf(StartsWith("<file>: "), HasSubstr("more errors not shown")));
}

TEST(ParseJobYamlTest, DeepNestingIsAnErrorNotACrash) {
  for (const std::string& nested :
       {"spec: " + std::string(100000, '['), "spec: " + std::string(100000, '{'),
        [] {
          std::string dashes = "spec:\n";
          for (int i = 0; i < 100000; ++i) dashes += "- ";
          return dashes + "x\n";
        }()}) {
    absl::StatusOr<JobSpec> job;
    Timed("deep nesting", [&] { job = ParseJobYaml(nested, ""); });
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(job.status()),
                testing::MatchesRegex("<file>: line [0-9]+, column [0-9]+: nested too deeply.*"));
  }
}

TEST(ParseJobYamlTest, StrayCommaIsASyntaxErrorNotAHang) {
  // yaml-cpp 0.7's LoadAll loops forever on these (jbeder/yaml-cpp#1040).
  for (const std::string& yaml : {std::string(","), Job() + "---\n,\n", std::string(", a: 1\n")}) {
    absl::StatusOr<JobSpec> job = ParseJobYaml(yaml, kGoodDir);
    EXPECT_THAT(Message(job.status()),
                testing::MatchesRegex("<file>: line [0-9]+, column 1: YAML syntax error: "
                                      "unexpected \",\""))
        << yaml;
  }
}

TEST(ParseJobYamlTest, OversizedInputIsRefusedBeforeParsing) {
  // Unbalanced brackets: parsing would fail differently.
  absl::StatusOr<JobSpec> job = ParseJobYaml(std::string(kMaxJobBytes + 1, '['), "");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(job.status().message(),
            "<file>: is 1048577 bytes; a job file is at most 1048576 bytes (1 MiB)");

  // Exactly at the limit is fine.
  std::string padded = Job();
  padded += std::string(kMaxJobBytes - padded.size() - 1, '#') + "\n";
  ASSERT_EQ(padded.size(), kMaxJobBytes);
  EXPECT_TRUE(ParseJobYaml(padded, kGoodDir).ok());
}

TEST(ParseJobYamlTest, EmptyInputIsAnError) {
  for (const std::string yaml : {"", "\n\n", "# just a comment\n", "---\n", "~\n"}) {
    absl::StatusOr<JobSpec> job = ParseJobYaml(yaml, "");
    EXPECT_THAT(Message(job.status()), StartsWith("<file>: is empty"))
        << testing::PrintToString(yaml);
  }
}

TEST(ParseJobYamlTest, BinaryAndNonTextInputNamesTheSpot) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {std::string("apiVersion: a\nkind: b") + '\0' + "c\n",
       "<file>: line 2, column 8: contains a NUL byte; a job file must be UTF-8 encoded YAML"},
      {"\x89PNG\r\n\x1a\n\xff\xfe",
       "<file>: line 1, column 1: not UTF-8 text (byte 0x89); a job file must be UTF-8 "
       "encoded YAML"},
      {"name: caf\xc3\xa9\nx: \xc3\x28\n",
       "<file>: line 2, column 4: not UTF-8 text (byte 0xc3); a job file must be UTF-8 "
       "encoded YAML"},
      {"a: 1\nb: \x1b[31m\n",
       "<file>: line 2, column 4: contains the control character 0x1b; a job file must be "
       "printable text"},
      {std::string("\xff\xfe" "a\0:\0", 6), "<file>: is UTF-16 text; save the job file as UTF-8"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<JobSpec> job = ParseJobYaml(c.yaml, "");
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(job.status().message(), c.message);
  }
}

TEST(ParseJobYamlTest, TooManyTenantsIsRefusedUnread) {
  std::string tenants;
  for (int i = 0; i <= kMaxTenants; ++i) {
    tenants += absl::StrCat("  - {name: t", i, ", data: {path: data/a.csv}}\n");
  }
  std::vector<FieldError> errors = ValidateJobYaml(Job("", tenants), kGoodDir);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].ToString(), "spec.tenants: must list at most 1000 tenants, got 1001");
}

TEST(ParseJobYamlTest, ErrorListIsCappedWithACount) {
  std::string tenants;
  for (int i = 0; i < kMaxTenants; ++i) {
    tenants += absl::StrCat("  - {name: T", i, ", data: {path: data/a.csv}}\n");
  }
  absl::StatusOr<JobSpec> job = ParseJobYaml(Job("", tenants), kGoodDir);
  std::vector<std::string> lines = Lines(job.status());
  ASSERT_THAT(lines, SizeIs(101));
  EXPECT_THAT(lines[0], StartsWith("spec.tenants[0].name: must be a DNS-1123 label"));
  EXPECT_EQ(lines[100], "<file>: 900 more errors not shown; fix these first");
}

TEST(ParseJobYamlTest, LongStringsAreRefusedBeforeCopying) {
  // 60000 aliases of one 10 KB scalar would be 600 MB of column names.
  std::string yaml = "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
                     "metadata: {name: long}\nstatus: {s: &s " +
                     std::string(10000, 'x') + "}\nspec:\n  data: {features: [";
  for (int i = 0; i < 60000; ++i) yaml += i ? ", *s" : "*s";
  yaml += "]}\n  tenants: [{name: *s, data: {path: *s}}]\n";
  std::vector<FieldError> errors = ValidateJobYaml(yaml, kGoodDir);
  ASSERT_THAT(errors, SizeIs(101));
  EXPECT_EQ(errors[0].ToString(),
            "spec.data.features[0]: must be at most 256 bytes long, got 10000 bytes");
  EXPECT_EQ(errors[100].ToString(), "<file>: 59902 more errors not shown; fix these first");
}

TEST(ParseJobYamlTest, HugeMapsAreRefusedUnread) {
  std::string fields;
  for (int i = 0; i < 60000; ++i) fields += absl::StrCat("k", i, ": 1, ");
  std::vector<FieldError> errors =
      ValidateJobYaml(Job("  training: {" + fields + "seed: 1}\n"), kGoodDir);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.back().ToString(), "spec.training: has more than 64 fields; not read further");
}

TEST(ParseJobYamlTest, PrivacyIsOffByDefault) {
  absl::StatusOr<JobSpec> job = ParseJobYaml(Job(), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_FALSE(job->privacy.secure_aggregation);
  EXPECT_FALSE(job->privacy.differential_privacy);
  EXPECT_EQ(job->strategy.max_update_norm, 0);
}

constexpr char kTwoTenants[] =
    "  - {name: a, data: {path: data/a.csv}}\n  - {name: b, data: {path: data/a.csv}}\n";

TEST(ParseJobYamlTest, MinTenantsDefaultsToTwoWhenTheJobHasTwoTenants) {
  absl::StatusOr<JobSpec> job = ParseJobYaml(Job("", kTwoTenants), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->strategy.min_tenants, 2);
  job = ParseJobYaml(Job("  strategy: {minTenants: 1}\n", kTwoTenants), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->strategy.min_tenants, 1);
}

TEST(ParseJobYamlTest, SecureAggregationGetsDefaultsAndItsSettings) {
  absl::StatusOr<JobSpec> job = ParseJobYaml(
      Job("  strategy: {minClients: 2}\n  privacy: {secureAggregation: true}\n", kTwoTenants),
      kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->privacy.secure_aggregation);
  EXPECT_EQ(job->privacy.secagg.threshold, 0);
  EXPECT_EQ(job->privacy.secagg.neighbours, -1);
  EXPECT_EQ(job->privacy.secagg.quantization_range, 1.0);
  EXPECT_EQ(job->privacy.secagg.stage_timeout_seconds, 60);

  job = ParseJobYaml(Job("  strategy: {minClients: 2}\n"
                         "  privacy:\n    secureAggregation: true\n"
                         "    secureAggregationSettings: {threshold: 0.5, neighbours: 4, "
                         "quantizationRange: 0.25, stageTimeout: 5s}\n"
                         "    differentialPrivacy: {maxEpsilon: 8, mode: distributed}\n",
                         kTwoTenants),
                     kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->privacy.secagg.threshold, 0.5);
  EXPECT_EQ(job->privacy.secagg.neighbours, 4);
  EXPECT_EQ(job->privacy.secagg.quantization_range, 0.25);
  EXPECT_EQ(job->privacy.secagg.stage_timeout_seconds, 5);
  EXPECT_EQ(job->privacy.dp.mode, "distributed");
}

TEST(ParseJobYamlTest, SecureAggregationSettingsAreChecked) {
  struct Case {
    std::string settings;
    std::string path;
  };
  const std::vector<Case> cases = {
      {"{threshold: 0}", "spec.privacy.secureAggregationSettings.threshold"},
      {"{threshold: 1.5}", "spec.privacy.secureAggregationSettings.threshold"},
      {"{neighbours: 3}", "spec.privacy.secureAggregationSettings.neighbours"},
      {"{neighbours: -2}", "spec.privacy.secureAggregationSettings.neighbours"},
      {"{quantizationRange: 0}", "spec.privacy.secureAggregationSettings.quantizationRange"},
      {"{stageTimeout: -1s}", "spec.privacy.secureAggregationSettings.stageTimeout"},
      {"{treshold: 0.5}", "spec.privacy.secureAggregationSettings.treshold"},
  };
  for (const Case& c : cases) {
    const std::string yaml = Job("  strategy: {minClients: 2}\n  privacy:\n"
                                 "    secureAggregation: true\n    secureAggregationSettings: " +
                                     c.settings + "\n",
                                 kTwoTenants);
    std::vector<FieldError> errors = ValidateJobYaml(yaml, kGoodDir);
    ASSERT_EQ(errors.size(), 1u) << c.settings;
    EXPECT_EQ(errors[0].path, c.path) << c.settings << " " << errors[0].ToString();
  }
}

TEST(ParseJobYamlTest, DifferentialPrivacyGetsDefaultsAndRequiresABudget) {
  absl::StatusOr<JobSpec> job =
      ParseJobYaml(Job("  privacy: {differentialPrivacy: {maxEpsilon: 8}}\n"), kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->privacy.differential_privacy);
  EXPECT_EQ(job->privacy.dp.clip_norm, 1.0);
  EXPECT_EQ(job->privacy.dp.noise_multiplier, 1.0);
  EXPECT_EQ(job->privacy.dp.delta, 1e-5);
  EXPECT_EQ(job->privacy.dp.max_epsilon, 8);
  EXPECT_EQ(job->privacy.dp.mode, "central");

  job = ParseJobYaml(Job("  privacy:\n    differentialPrivacy: {clipNorm: 0.5, noiseMultiplier: "
                         "1.3, delta: 0.001, maxEpsilon: 3.5, mode: central}\n"
                         "  strategy: {maxUpdateNorm: 100}\n"),
                     kGoodDir);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->privacy.dp.clip_norm, 0.5);
  EXPECT_EQ(job->privacy.dp.noise_multiplier, 1.3);
  EXPECT_EQ(job->privacy.dp.delta, 0.001);
  EXPECT_EQ(job->privacy.dp.max_epsilon, 3.5);
  EXPECT_EQ(job->strategy.max_update_norm, 100);

  std::vector<FieldError> errors =
      ValidateJobYaml(Job("  privacy: {differentialPrivacy: {clipNorm: 1}}\n"), kGoodDir);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "spec.privacy.differentialPrivacy.maxEpsilon");
  EXPECT_THAT(errors[0].message, HasSubstr("required"));
}

TEST(ParseJobYamlTest, PrivacyValuesOutOfRangeNameTheirField) {
  struct Case {
    std::string yaml;
    std::string path;
  };
  const std::vector<Case> cases = {
      {"  privacy: {differentialPrivacy: {maxEpsilon: 1, clipNorm: 0}}\n",
       "spec.privacy.differentialPrivacy.clipNorm"},
      {"  privacy: {differentialPrivacy: {maxEpsilon: 1, noiseMultiplier: -1}}\n",
       "spec.privacy.differentialPrivacy.noiseMultiplier"},
      {"  privacy: {differentialPrivacy: {maxEpsilon: 1, delta: 0.5}}\n",
       "spec.privacy.differentialPrivacy.delta"},
      {"  privacy: {differentialPrivacy: {maxEpsilon: 0}}\n",
       "spec.privacy.differentialPrivacy.maxEpsilon"},
      {"  privacy: {differentialPrivacy: {maxEpsilon: 1, mode: local}}\n",
       "spec.privacy.differentialPrivacy.mode"},
      {"  privacy: {differentialPrivacy: {maxEpsilon: 1, mode: distributed}}\n",
       "spec.privacy.differentialPrivacy.mode"},
      {"  privacy: {differentialPrivacy: {maxEpsilon: 1, clipnorm: 1}}\n",
       "spec.privacy.differentialPrivacy.clipnorm"},
      {"  privacy: {secureAggregation: yes}\n", "spec.privacy.secureAggregation"},
      {"  privacy: {secureAggregation: true}\n", "spec.strategy.minClients"},
      {"  privacy: {secureAggregationSettings: {threshold: 0.5}}\n",
       "spec.privacy.secureAggregationSettings"},
      {"  privacy: {dp: {}}\n", "spec.privacy.dp"},
      {"  strategy: {maxUpdateNorm: -1}\n", "spec.strategy.maxUpdateNorm"},
  };
  for (const Case& c : cases) {
    std::vector<FieldError> errors = ValidateJobYaml(Job(c.yaml), kGoodDir);
    ASSERT_EQ(errors.size(), 1u) << c.yaml;
    EXPECT_EQ(errors[0].path, c.path) << c.yaml << errors[0].ToString();
  }
  EXPECT_TRUE(ValidateJobYaml(Job("  privacy: {secureAggregation: false}\n"), kGoodDir).empty());
}

}  // namespace
}  // namespace braid::spec
