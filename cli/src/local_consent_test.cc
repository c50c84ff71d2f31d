#include "braid/cli/local_consent.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "braid/core/audit_log.h"
#include "braid/cli/local_runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

spec::JobSpec Job(int rounds = 3, int min_clients = 2) {
  const std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
      "metadata: {name: train, namespace: lab}\n"
      "spec:\n"
      "  data: {features: [x0, x1]}\n"
      "  strategy: {rounds: ", rounds, ", minClients: ", min_clients, "}\n",
      "  tenants:\n"
      "  - {name: alpha, data: {path: a.csv}}\n"
      "  - {name: beta, data: {path: b.csv}}\n"
      "  - {name: gamma, data: {path: c.csv}}\n");
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(yaml, "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

class LocalConsentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("braid-consent-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

constexpr char kTenants[] = R"(apiVersion: braid.dev/v1alpha1
kind: Tenant
metadata: {name: alpha}
spec:
  namespace: tenant-alpha
  policy: {requireApproval: true, maxRounds: 5, allowedModels: [mlp]}
---
apiVersion: braid.dev/v1alpha1
kind: Tenant
metadata: {name: beta}
spec:
  namespace: tenant-beta
  policy: {requireApproval: false}
)";

TEST_F(LocalConsentTest, ReadsTenantsAsTheApiServerWouldServeThem) {
  auto tenants = ReadTenantsFile(Write("t.yaml", kTenants));
  ASSERT_TRUE(tenants.ok()) << tenants.status();
  ASSERT_EQ(tenants->size(), 2u);
  EXPECT_EQ(tenants->at("alpha")["spec"]["policy"],
            (json{{"requireApproval", true}, {"maxRounds", 5}, {"allowedModels", {"mlp"}}}));
  EXPECT_EQ(tenants->at("beta")["spec"]["namespace"], "tenant-beta");

  // A List works as well.
  auto list = ReadTenantsFile(Write("l.yaml",
                                    "kind: List\nitems:\n- kind: Tenant\n  metadata: {name: x}\n"));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->count("x"), 1u);
}

TEST_F(LocalConsentTest, BadTenantFilesAreNamed) {
  struct Case {
    std::string text, expected;
  } cases[] = {
      {"kind: Tenant\nmetadata: {name: [\n", "not valid YAML (line"},
      {"kind: FederatedJob\nmetadata: {name: a}\n", "document at line 1: not a Tenant"},
      {"kind: Tenant\nmetadata: {}\n", "metadata.name is missing"},
      {"kind: Tenant\nmetadata: {name: a}\n---\nkind: Tenant\nmetadata: {name: a}\n",
       "document at line 4: Tenant \"a\" is given twice"},
      {"kind: Tenant\nmetadata: {name: a}\nspec: {policy: {requireApproval: \"yes\"}}\n",
       "requireApproval must be true or false"},
      {"kind: Tenant\nmetadata: {name: a}\nspec: {policy: {maxRounds: many}}\n",
       "maxRounds must be an integer"},
  };
  for (const Case& c : cases) {
    const std::string path = Write("bad.yaml", c.text);
    auto t = ReadTenantsFile(path);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(t.status().message(), HasSubstr(path)) << c.text;
    EXPECT_THAT(t.status().message(), HasSubstr(c.expected)) << c.text;
  }
  EXPECT_FALSE(ReadTenantsFile((dir_ / "missing.yaml").string()).ok());
}

TEST_F(LocalConsentTest, PolicyProblemsMatchTheOperators) {
  auto tenants = ReadTenantsFile(Write("t.yaml", kTenants));
  ASSERT_TRUE(tenants.ok());
  const spec::JobSpec job = Job(/*rounds=*/9);
  const std::vector<control::TenantProblem> local = LocalPolicyProblems(job, *tenants);
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(local[0].reason, "TooManyRounds");
  EXPECT_EQ(local[0].path, "spec.strategy.rounds");
  // The same words as the operator's condition.
  const std::vector<control::TenantProblem> op = control::PolicyProblems(job, "alpha", tenants->at("alpha"));
  ASSERT_EQ(op.size(), 1u);
  EXPECT_EQ(local[0].message, op[0].message);
  EXPECT_THAT(local[0].message, HasSubstr("allows at most 5 rounds; the job asks for 9"));
  EXPECT_TRUE(LocalPolicyProblems(Job(5), *tenants).empty());
  EXPECT_TRUE(LocalPolicyProblems(job, {}).empty());
}

TEST_F(LocalConsentTest, DecisionsAreFilesTheRulesRead) {
  auto tenants = ReadTenantsFile(Write("t.yaml", kTenants));
  ASSERT_TRUE(tenants.ok());
  const spec::JobSpec job = Job();
  const std::string work = (dir_ / "work").string();
  const control::JobRef ref{"lab", "train", "sha-of-the-job-file"};

  // Before braid run wrote consent.json there is nothing to decide on.
  EXPECT_EQ(RecordDecision(work, {"alpha", true, "", "test"}).status().code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(WriteConsentFile(work, ref, *tenants).ok());
  auto consent = LocalConsent(job, ref, *tenants, work);
  ASSERT_EQ(consent.size(), 3u);
  EXPECT_EQ(consent[0].consent, control::Consent::kPending);
  EXPECT_EQ(consent[1].consent, control::Consent::kNotRequired);
  EXPECT_EQ(consent[2].consent, control::Consent::kNotRequired);  // no Tenant object: no policy
  EXPECT_EQ(control::DecideAdmission(job, consent).reason, "AwaitingApproval");

  EXPECT_EQ(RecordDecision(work, {"gamma", true, "", "test"}).status().code(),
            absl::StatusCode::kNotFound);

  auto approval = RecordDecision(work, {"alpha", true, "checked by the DPO", "user alice"});
  ASSERT_TRUE(approval.ok()) << approval.status();
  EXPECT_EQ((*approval)["kind"], "TenantApproval");
  EXPECT_EQ((*approval)["metadata"]["namespace"], "tenant-alpha");
  EXPECT_EQ((*approval)["spec"]["job"]["uid"], "sha-of-the-job-file");
  EXPECT_TRUE(fs::exists(fs::path(ApprovalsDir(work)) / "alpha.json"));
  consent = LocalConsent(job, ref, *tenants, work);
  EXPECT_EQ(consent[0].consent, control::Consent::kApproved);
  EXPECT_THAT(consent[0].comment, HasSubstr("checked by the DPO"));
  EXPECT_TRUE(control::DecideAdmission(job, consent).admit);

  // An approval for another version of the job file does not count.
  EXPECT_EQ(LocalConsent(job, control::JobRef{"lab", "train", "edited"}, *tenants, work)[0].consent,
            control::Consent::kPending);

  // Revoking replaces the decision.
  ASSERT_TRUE(RecordDecision(work, {"alpha", false, "", "user alice"}).ok());
  consent = LocalConsent(job, ref, *tenants, work);
  EXPECT_EQ(consent[0].consent, control::Consent::kRefused);
  EXPECT_TRUE(control::DecideAdmission(job, consent).admit);  // beta and gamma still meet minClients 2
  EXPECT_EQ(control::DecideAdmission(Job(3, 3), consent).reason, "TenantRefused");

  // Both decisions are in the audit log, and the chain verifies.
  auto log = audit::ReadAuditLog(LocalAuditLogPath(work));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(log->verification.ok) << log->verification.problem;
  std::vector<std::string> kinds;
  for (const audit::Entry& e : log->entries) {
    kinds.push_back(e.kind);
    EXPECT_EQ(e.job, "lab/train");
    EXPECT_EQ(e.details["tenant"], "alpha");
    EXPECT_EQ(e.actor, "user alice");
  }
  EXPECT_THAT(kinds, ElementsAre(audit::kTenantApproved, audit::kTenantRefused));
}

}  // namespace
}  // namespace braid::cli
