// Local paths in a job stay in the job's folder (issue 17, finding 9), and
// the job's size is bounded (finding 8).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "braid/core/job_footprint.h"
#include "braid/core/spec.h"

namespace braid::spec {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;
using testing::IsEmpty;
using testing::SizeIs;

// A job folder of its own under the test's temp dir, with data/a.csv, and
// an outside folder with secret.csv (as /etc/shadow would be).
class JobFolder : public testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(testing::TempDir()) /
            absl::StrCat("spec_paths_", testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    job_dir_ = root_ / "job";
    outside_ = root_ / "outside";
    fs::create_directories(job_dir_ / "data");
    fs::create_directories(outside_);
    Write(job_dir_ / "data" / "a.csv", "x0,label\n1,0\n");
    Write(outside_ / "secret.csv", "root:$6$secret:19000:0:99999:7:::\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  static void Write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

  static std::string Job(const std::string& data_path, const std::string& extra = "") {
    return "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: t}\n"
           "spec:\n  data: {features: [x0]}\n" +
           extra + "  tenants:\n  - {name: a, data: {path: \"" + data_path + "\"}}\n";
  }

  std::vector<FieldError> Validate(const std::string& yaml, const ParseOptions& options = {}) {
    return ValidateJobYaml(yaml, job_dir_.string(), options);
  }

  fs::path root_, job_dir_, outside_;
};

TEST_F(JobFolder, RelativePathInsideTheFolderIsAccepted) {
  EXPECT_THAT(Validate(Job("data/a.csv")), IsEmpty());
  EXPECT_THAT(Validate(Job("./data/../data/a.csv")), IsEmpty());
  EXPECT_THAT(Validate(Job((job_dir_ / "data" / "a.csv").string())), IsEmpty());
}

TEST_F(JobFolder, AbsolutePathElsewhereIsRefusedNamingTheField) {
  std::vector<FieldError> errors = Validate(Job("/etc/shadow"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.tenants[0].data.path");
  EXPECT_THAT(errors[0].message, HasSubstr("\"/etc/shadow\" is outside the job's folder " +
                                           job_dir_.string()));
  EXPECT_THAT(errors[0].message, HasSubstr("--allow-path"));
}

TEST_F(JobFolder, DotDotEscapeIsRefused) {
  std::vector<FieldError> errors = Validate(Job("../../etc/passwd"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.tenants[0].data.path");
  EXPECT_THAT(errors[0].message, HasSubstr("outside the job's folder"));
  // Even when the file exists: ../outside/secret.csv.
  EXPECT_THAT(Validate(Job("../outside/secret.csv")), SizeIs(1));
}

TEST_F(JobFolder, SymbolicLinkOutOfTheFolderIsRefused) {
  fs::create_symlink(outside_ / "secret.csv", job_dir_ / "data" / "link.csv");
  std::vector<FieldError> errors = Validate(Job("data/link.csv"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.tenants[0].data.path");
  EXPECT_THAT(errors[0].message, HasSubstr("symbolic link"));
  EXPECT_THAT(errors[0].message, testing::Not(HasSubstr("root:")));  // no content
  // A linked folder too.
  fs::create_directory_symlink(outside_, job_dir_ / "linked");
  EXPECT_THAT(Validate(Job("linked/secret.csv")), SizeIs(1));
}

TEST_F(JobFolder, AllowedFolderPermitsAPathOutside) {
  ParseOptions options;
  options.allowed_dirs = {outside_.string()};
  EXPECT_THAT(Validate(Job((outside_ / "secret.csv").string()), options), IsEmpty());
  EXPECT_THAT(Validate(Job("../outside/secret.csv"), options), IsEmpty());
  fs::create_symlink(outside_ / "secret.csv", job_dir_ / "data" / "link.csv");
  EXPECT_THAT(Validate(Job("data/link.csv"), options), IsEmpty());
  // Not a blanket permission: other folders stay refused.
  EXPECT_THAT(Validate(Job("/etc/hostname"), options), SizeIs(1));
}

TEST_F(JobFolder, PooledEvaluationAndModelBaseAreConfinedToo) {
  std::vector<FieldError> errors =
      Validate(Job("data/a.csv", "  evaluation: {pooled: {path: /etc/passwd}}\n"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.evaluation.pooled.path");

  const std::string llm =
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: t}\n"
      "spec:\n  model: {kind: llama, base: {path: /etc}}\n"
      "  tenants: [{name: a, data: {path: data/a.csv}}]\n";
  errors = Validate(llm);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.model.base.path");
}

TEST_F(JobFolder, AFileInTheModelFolderLinkedOutsideIsRefused) {
  fs::create_directories(job_dir_ / "model");
  Write(job_dir_ / "model" / "config.json", "{\"model_type\": \"llama\"}");
  const std::string llm =
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: t}\n"
      "spec:\n  model: {kind: llama, base: {path: model}}\n"
      "  tenants: [{name: a, data: {path: data/a.csv}}]\n";
  EXPECT_THAT(Validate(llm), IsEmpty());
  fs::create_symlink(outside_ / "secret.csv", job_dir_ / "model" / "tokenizer.json");
  std::vector<FieldError> errors = Validate(llm);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.model.base.path");
  EXPECT_THAT(errors[0].message, HasSubstr("tokenizer.json leads through a symbolic link"));
}

TEST_F(JobFolder, WithoutAFolderOnlyRelativePathsThatStayInsideAreAccepted) {
  // The operator parses in memory; a pod resolves against /etc/braid.
  ParseOptions options;
  options.check_files = false;
  EXPECT_THAT(ValidateJobYaml(Job("data/a.csv"), "", options), IsEmpty());
  std::vector<FieldError> errors = ValidateJobYaml(Job("/etc/shadow"), "", options);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.tenants[0].data.path");
  EXPECT_THAT(ValidateJobYaml(Job("a/../../x.csv"), "", options), SizeIs(1));
}

TEST_F(JobFolder, AProgramThatReadsNoPathsMaySkipTheConfinement) {
  ParseOptions options;
  options.check_files = false;
  options.confine_paths = false;
  EXPECT_THAT(Validate(Job("/etc/shadow"), options), IsEmpty());
}

// Finding 8: the job's size.

TEST(JobSizeTest, MlpParametersCountWeightsAndBiases) {
  EXPECT_EQ(MlpParameters(3, {4}, 2), 3 * 4 + 4 + 4 * 2 + 2);
  EXPECT_EQ(MlpParameters(3, {}, 2), 3 * 2 + 2);
  std::vector<int> huge(64, 65536);
  EXPECT_GT(MlpParameters(65536, huge, 100000), int64_t{275} * 1000 * 1000 * 1000);
}

TEST(JobSizeTest, AHugeMlpIsRefusedAtValidationWithItsSize) {
  std::string hidden = "[";
  for (int i = 0; i < 64; ++i) hidden += i ? ", 65536" : "65536";
  hidden += "]";
  const std::string yaml =
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: t}\n"
      "spec:\n  model: {mlp: {hidden: " + hidden + "}}\n  data: {features: [x0]}\n"
      "  tenants: [{name: a, data: {path: a.csv}}]\n";
  ParseOptions options;
  options.check_files = false;
  std::vector<FieldError> errors = ValidateJobYaml(yaml, "", options);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.model.mlp");
  EXPECT_THAT(errors[0].message, HasSubstr("270,587,330,562 parameters (1.1 TB of float32) "
                                           "exceeds the limit of 1,000,000,000 parameters"));
}

std::string Tenants(int tenants, int replicas) {
  std::string out = "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: t}\n"
                    "spec:\n  data: {features: [x0]}\n  tenants:\n";
  for (int i = 0; i < tenants; ++i) {
    out += absl::StrCat("  - {name: t", i, ", replicas: ", replicas, ", data: {path: a.csv}}\n");
  }
  return out;
}

TEST(JobSizeTest, AMillionWorkersIsRefusedAtValidation) {
  ParseOptions options;
  options.check_files = false;
  std::vector<FieldError> errors = ValidateJobYaml(Tenants(1000, 1000), "", options);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].ToString(),
            "spec.tenants: the replicas of 1000 tenants add up to 1000000 worker processes; a "
            "job runs at most 10000");
  EXPECT_THAT(ValidateJobYaml(Tenants(10, 1000), "", options), IsEmpty());
}

TEST(JobSizeTest, MachineLimitsNameBothValuesTheLimitAndTheFlag) {
  ParseOptions options;
  options.check_files = false;
  absl::StatusOr<JobSpec> job = ParseJobYaml(Tenants(3, 30), "", options);
  ASSERT_TRUE(job.ok()) << job.status();
  MachineLimits limits;
  limits.max_worker_processes = 64;
  limits.max_memory_bytes = 0;
  std::vector<FieldError> errors = CheckMachineLimits(*job, limits);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].ToString(),
            "spec.tenants: 3 tenants x 30 replicas = 90 worker processes; braid run allows at "
            "most 64 here (raise with --max-workers)");
  limits.max_worker_processes = 90;
  EXPECT_THAT(CheckMachineLimits(*job, limits), IsEmpty());
}

TEST(JobSizeTest, MemoryBeyondTheMachineIsRefused) {
  const std::string yaml =
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: t}\n"
      "spec:\n  model: {mlp: {hidden: [8192, 8192]}}\n  data: {features: [x0]}\n"
      "  tenants: [{name: a, replicas: 10, data: {path: a.csv}}]\n";
  ParseOptions options;
  options.check_files = false;
  absl::StatusOr<JobSpec> job = ParseJobYaml(yaml, "", options);
  ASSERT_TRUE(job.ok()) << job.status();
  const Footprint f = ComputeFootprint(*job);
  EXPECT_EQ(f.parameters, MlpParameters(1, {8192, 8192}, 2));
  EXPECT_EQ(f.processes, 11);
  MachineLimits limits;
  limits.max_memory_bytes = int64_t{1} << 30;
  std::vector<FieldError> errors = CheckMachineLimits(*job, limits);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "spec.model.mlp");
  EXPECT_THAT(errors[0].message, HasSubstr("67,149,826 parameters (268.6 MB of float32)"));
  EXPECT_THAT(errors[0].message, HasSubstr("--max-memory-mib"));
  limits.max_memory_bytes = int64_t{64} << 30;
  EXPECT_THAT(CheckMachineLimits(*job, limits), IsEmpty());
}

TEST(JobSizeTest, ALanguageModelIsSizedFromItsConfig) {
  // GPT-2 small: about 124M parameters.
  absl::StatusOr<int64_t> gpt2 = DecoderParameters(
      R"({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12,
          "n_head": 12, "n_positions": 1024})");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  EXPECT_NEAR(static_cast<double>(*gpt2), 124.4e6, 1e6);
  // SmolLM2-135M (tied Llama).
  absl::StatusOr<int64_t> smol = DecoderParameters(
      R"({"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
          "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
          "tie_word_embeddings": true})");
  ASSERT_TRUE(smol.ok()) << smol.status();
  EXPECT_NEAR(static_cast<double>(*smol), 134.5e6, 1e6);
  EXPECT_FALSE(DecoderParameters("{\"model_type\": \"llama\"}").ok());
  EXPECT_FALSE(DecoderParameters("not json").ok());
}

TEST(JobSizeTest, DefaultLimitsComeFromTheMachine) {
  const MachineLimits limits = DefaultMachineLimits();
  EXPECT_GE(limits.max_worker_processes, 64);
  EXPECT_GT(limits.max_memory_bytes, 0);
}

}  // namespace
}  // namespace braid::spec
