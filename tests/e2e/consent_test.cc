// Tenant consent on one machine, with real processes: `braid run --tenants`
// refuses a job a tenant's policy forbids, holds a job until the tenant
// approves with `braid approve`, runs without a refusing tenant's workers,
// and stops a tenant's workers when it revokes during the run.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/core/audit_log.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Tenant(const std::string& name, const std::string& policy) {
  return absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: Tenant\nmetadata: {name: ", name,
                      "}\nspec:\n  namespace: tenant-", name, "\n  policy: ", policy, "\n---\n");
}


// Waits until `path` contains `text`; false after `timeout`.
bool AwaitText(const std::string& path, const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (ReadFile(path).find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

std::vector<std::string> AuditKinds(const std::string& work) {
  std::vector<std::string> kinds;
  auto log = audit::ReadAuditLog(work + "/checkpoint/audit.jsonl");
  EXPECT_TRUE(log.ok()) << log.status();
  if (!log.ok()) return kinds;
  EXPECT_TRUE(log->verification.ok) << log->verification.problem;
  for (const audit::Entry& e : log->entries) kinds.push_back(e.kind);
  return kinds;
}

TEST(LocalConsent, PolicyViolationStopsTheRunBeforeAnythingStarts) {
  const std::string dir = FreshDir("consent-policy");
  const std::string job = WriteTabularJob(dir, "{name: fedavg, rounds: 10, minClients: 2}");
  WriteFile(dir + "/tenants.yaml", Tenant("charite", "{maxRounds: 4}"));
  std::string out;
  EXPECT_EQ(RunBraid(dir, "run",
                  {"run", job, "--workdir", dir + "/work", "--tenants", dir + "/tenants.yaml"},
                  &out),
            1);
  EXPECT_THAT(out, HasSubstr("Failed (TooManyRounds) spec.strategy.rounds: Tenant \"charite\" "
                             "allows at most 4 rounds; the job asks for 10"));
  EXPECT_FALSE(fs::exists(dir + "/work/logs/aggregator.log"));

  WriteFile(dir + "/tenants.yaml", Tenant("charite", "{allowedModels: [llama]}"));
  EXPECT_EQ(RunBraid(dir, "run",
                  {"run", job, "--workdir", dir + "/work", "--tenants", dir + "/tenants.yaml"},
                  &out),
            1);
  EXPECT_THAT(out, HasSubstr("Failed (ModelNotAllowed) spec.model.kind: Tenant \"charite\" "
                             "allows only models [\"llama\"], not \"mlp\""));

  WriteFile(dir + "/tenants.yaml", "kind: Tenant\nmetadata: {name: x}\nspec: {policy: 3}\n");
  EXPECT_EQ(RunBraid(dir, "run",
                  {"run", job, "--workdir", dir + "/work", "--tenants", dir + "/tenants.yaml"},
                  &out),
            2);
  EXPECT_THAT(out, HasSubstr("tenants.yaml: document at line 1: spec.policy must be a map"));
}

TEST(LocalConsent, AJobWaitsForApprovalThenRuns) {
  const std::string dir = FreshDir("consent-approve");
  const std::string job = WriteTabularJob(dir, "{name: fedavg, rounds: 3, minClients: 3}");
  const std::string work = dir + "/work";
  WriteFile(dir + "/tenants.yaml", Tenant("charite", "{requireApproval: true}") +
                                       Tenant("karolinska", "{requireApproval: true}"));
  const std::string out_path = dir + "/run.out";
  auto run = cli::Subprocess::Start(
      {Binary("braid"), "run", job, "--workdir", work, "--tenants", dir + "/tenants.yaml"},
      out_path, out_path);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(AwaitText(out_path, "AwaitingApproval: waiting for charite, karolinska to approve",
                        absl::Seconds(60)))
      << ReadFile(out_path);
  // Nothing touches a tenant's data before approval: no aggregator, no worker.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_FALSE(fs::exists(work + "/logs/aggregator.log"));
  EXPECT_FALSE(fs::exists(work + "/logs/worker-charite-0.log"));

  std::string out;
  ASSERT_EQ(RunBraid(dir, "approve1",
                  {"approve", "--workdir", work, "--tenant", "charite", "--comment", "DPO ok"},
                  &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("tenant charite: Approved for job default/tabular-demo"));
  ASSERT_TRUE(AwaitText(out_path, "waiting for karolinska to approve", absl::Seconds(30)))
      << ReadFile(out_path);
  EXPECT_FALSE(fs::exists(work + "/logs/aggregator.log"));
  // A tenant the job does not name cannot decide.
  EXPECT_EQ(
      RunBraid(dir, "approve-x", {"approve", "--workdir", work, "--tenant", "st-mary"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("tenant \"st-mary\" has no Tenant object in this run"));

  ASSERT_EQ(RunBraid(dir, "approve2", {"approve", "--workdir", work, "--tenant", "karolinska"},
                     &out),
            0)
      << out;
  EXPECT_EQ(run->Wait(absl::Minutes(5)), 0) << ReadFile(out_path);
  const json s = json::parse(ReadFile(work + "/summary.json"));
  EXPECT_EQ(s["phase"], "Succeeded");
  for (const json& r : s["rounds"]) EXPECT_EQ(r["participants"], 3);

  const std::vector<std::string> kinds = AuditKinds(work);
  ASSERT_GE(kinds.size(), 4u);
  EXPECT_EQ(kinds[0], audit::kJobCreated);
  EXPECT_EQ(kinds[1], audit::kTenantApproved);
  EXPECT_EQ(kinds[2], audit::kTenantApproved);
  EXPECT_EQ(kinds[3], audit::kJobStarted);  // the aggregator starts after both decisions
  const json approval = json::parse(ReadFile(work + "/approvals/charite.json"));
  EXPECT_EQ(approval["spec"]["decision"], "Approved");
  EXPECT_THAT(approval["spec"]["comment"].get<std::string>(), HasSubstr("DPO ok"));
}

TEST(LocalConsent, RefusalExcludesTheTenantOrStopsTheJob) {
  const std::string dir = FreshDir("consent-refuse");
  const std::string work = dir + "/work";
  WriteFile(dir + "/tenants.yaml", Tenant("charite", "{requireApproval: true}"));
  std::string out;

  // minClients 3 cannot be met without charite: TenantRefused.
  std::string job = WriteTabularJob(dir, "{name: fedavg, rounds: 3, minClients: 3}");
  auto run = cli::Subprocess::Start(
      {Binary("braid"), "run", job, "--workdir", work, "--tenants", dir + "/tenants.yaml"},
      dir + "/run1.out", dir + "/run1.out");
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(AwaitText(dir + "/run1.out", "AwaitingApproval", absl::Seconds(60)));
  ASSERT_EQ(RunBraid(dir, "refuse1",
                     {"approve", "--workdir", work, "--tenant", "charite", "--refuse"}, &out),
            0)
      << out;
  EXPECT_EQ(run->Wait(absl::Minutes(2)), 1);
  EXPECT_THAT(ReadFile(dir + "/run1.out"),
              HasSubstr("Failed (TenantRefused) refused by charite; the other tenants have 2 "
                        "replicas, fewer than strategy.minClients (3)"));
  EXPECT_FALSE(fs::exists(work + "/logs/aggregator.log"));

  // With minClients 2 the others run without charite. The refusal stands
  // for the same job file, so the run starts at once.
  job = WriteTabularJob(dir + "/v2", "{name: fedavg, rounds: 3, minClients: 2}");
  const std::string work2 = dir + "/work2";
  run = cli::Subprocess::Start(
      {Binary("braid"), "run", job, "--workdir", work2, "--tenants", dir + "/tenants.yaml"},
      dir + "/run2.out", dir + "/run2.out");
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(AwaitText(dir + "/run2.out", "AwaitingApproval", absl::Seconds(60)));
  ASSERT_EQ(RunBraid(dir, "refuse2",
                  {"approve", "--workdir", work2, "--tenant", "charite", "--refuse"}, &out),
            0);
  EXPECT_EQ(run->Wait(absl::Minutes(5)), 0) << ReadFile(dir + "/run2.out");
  EXPECT_THAT(ReadFile(dir + "/run2.out"), HasSubstr("tenant charite refused: its workers are not started"));
  EXPECT_FALSE(fs::exists(work2 + "/logs/worker-charite-0.log"));
  const json s = json::parse(ReadFile(work2 + "/summary.json"));
  EXPECT_EQ(s["phase"], "Succeeded");
  for (const json& r : s["rounds"]) {
    EXPECT_EQ(r["tenants"], json::array({"karolinska", "st-mary"})) << r.dump();
  }
}

TEST(LocalConsent, RevocationDuringTheRunStopsThatTenantsWorkers) {
  const std::string dir = FreshDir("consent-revoke");
  const std::string work = dir + "/work";
  const std::string job =
      // Enough rounds (~0.1 s each here) that the revocation lands mid-run.
      WriteTabularJob(dir, "{name: fedavg, rounds: 40, minClients: 2, roundTimeout: 60s}");
  WriteFile(dir + "/tenants.yaml", Tenant("charite", "{requireApproval: true}"));
  const std::string out_path = dir + "/run.out";
  auto run = cli::Subprocess::Start(
      {Binary("braid"), "run", job, "--workdir", work, "--tenants", dir + "/tenants.yaml"},
      out_path, out_path);
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(AwaitText(out_path, "AwaitingApproval", absl::Seconds(60)));
  std::string out;
  ASSERT_EQ(
      RunBraid(dir, "approve", {"approve", "--workdir", work, "--tenant", "charite"}, &out), 0);
  ASSERT_TRUE(AwaitText(out_path, "round 2/40", absl::Seconds(120))) << ReadFile(out_path);
  ASSERT_EQ(RunBraid(dir, "revoke",
                  {"approve", "--workdir", work, "--tenant", "charite", "--refuse", "--comment",
                   "consent withdrawn"},
                  &out),
            0);
  ASSERT_TRUE(AwaitText(out_path, "tenant charite: consent revoked; its workers stopped",
                        absl::Seconds(10)))
      << ReadFile(out_path);
  EXPECT_EQ(run->Wait(absl::Minutes(10)), 0) << ReadFile(out_path);
  const json s = json::parse(ReadFile(work + "/summary.json"));
  ASSERT_EQ(s["rounds"].size(), 40u);
  EXPECT_EQ(s["phase"], "Succeeded");
  // charite took part before; the last rounds ran without it.
  EXPECT_THAT(s["rounds"][0]["tenants"].dump(), HasSubstr("charite"));
  EXPECT_THAT(s["rounds"].back()["tenants"].dump(), Not(HasSubstr("charite")));
  const std::vector<std::string> kinds = AuditKinds(work);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), audit::kTenantRefused), kinds.end());
}

}  // namespace
}  // namespace braid::e2e
