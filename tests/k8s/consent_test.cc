// Tenant consent against a real control plane: a job naming a tenant that
// requires approval creates nothing until a TenantApproval appears in the
// tenant's own namespace; Kubernetes RBAC (the chart's
// braid-tenant-approver ClusterRole, bound per namespace) decides who may
// write one; refusing later stops that tenant's workers. The decisions reach
// the aggregator's audit log through the job's ConfigMap.
#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "braid/aggregator/admission_audit.h"
#include "braid/core/audit_log.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"

namespace braid::k8s {
namespace {

using nlohmann::json;

constexpr char kJobNs[] = "fl-consent";
constexpr char kJob[] = "needs-consent";

std::string JobYaml() { return TwoTenantJobYaml(kJobNs, kJob, "consent-a", "consent-b"); }

std::string ApprovalYaml(const std::string& ns, const std::string& tenant,
                         const std::string& decision) {
  return absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\n",
                      "metadata: {name: ", kJob, ", namespace: ", ns, "}\n",
                      "spec:\n  tenant: ", tenant, "\n  job: {namespace: ", kJobNs,
                      ", name: ", kJob, "}\n  decision: ", decision,
                      "\n  comment: checked by the test\n");
}

// kubectl create/apply as another user (the admin kubeconfig may impersonate).
// What the aggregator's audit log records from the job's ConfigMap as it
// stands now: admission.json copied to `dir` (where the pod would mount
// it) and polled into `dir`'s log by the aggregator's AdmissionAudit.
// Returns "kind tenant decision" per tenant entry, and "job_created".
std::vector<std::string> AuditedAdmission(const std::string& dir) {
  std::optional<json> cm = GetJson({"configmap", "-n", kJobNs, std::string(kJob) + "-job"});
  EXPECT_TRUE(cm.has_value()) << "no ConfigMap " << kJob << "-job";
  if (!cm.has_value()) return {};
  const std::string file = dir + "/admission.json";
  e2e::WriteFile(file, cm->value("/data/admission.json"_json_pointer, std::string()));
  auto log = audit::AuditLog::Open(dir + "/" + audit::kFileName);
  EXPECT_TRUE(log.ok()) << log.status();
  if (!log.ok()) return {};
  aggregator::AdmissionAudit admission(file, log->get(), std::string(kJobNs) + "/" + kJob);
  const absl::Status polled = admission.Poll();
  EXPECT_TRUE(polled.ok()) << polled;
  std::vector<std::string> out;
  auto detail = [](const audit::Entry& e, const char* key) {
    auto it = e.details.find(key);
    return it != e.details.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  absl::StatusOr<audit::AuditFile> file_read = audit::ReadAuditLog((*log)->path());
  EXPECT_TRUE(file_read.ok()) << file_read.status();
  if (!file_read.ok()) return {};
  for (const audit::Entry& e : file_read->entries) {
    out.push_back(e.details.contains("tenant")
                      ? absl::StrCat(e.kind, " ", detail(e, "tenant"), " ", detail(e, "decision"))
                      : e.kind);
  }
  return out;
}

CommandResult ApplyAs(const std::string& user, const std::string& yaml, const std::string& dir) {
  const std::string file = dir + "/as-" + user + ".yaml";
  e2e::WriteFile(file, yaml);
  return Kubectl({"apply", "--as=" + user, "-f", file});
}

json Job() { return GetJson({"federatedjob", "-n", kJobNs, kJob}).value_or(json()); }

json TenantStatus(const json& job, const std::string& name) {
  for (const json& t : job.value("/status/tenants"_json_pointer, json::array())) {
    if (t.value("name", "") == name) return t;
  }
  return json();
}

std::vector<json> Deployments(const std::string& uid) { return OwnedByJob("deployments", uid); }

int WorkerReplicas(const std::string& uid, const std::string& tenant) {
  int replicas = -1;
  for (const json& d : Deployments(uid)) {
    if (d.value("/metadata/labels/braid.dev~1tenant"_json_pointer, std::string()) == tenant) {
      replicas = d.value("/spec/replicas"_json_pointer, -1);
    }
  }
  return replicas;
}

// The aggregator container's args ("" entries when there is none).
std::vector<std::string> AggregatorArgs(const std::string& uid) {
  std::vector<std::string> out;
  for (const json& d : Deployments(uid)) {
    if (d.value("/metadata/labels/braid.dev~1role"_json_pointer, std::string()) != "aggregator") {
      continue;
    }
    for (const json& a :
         d.value("/spec/template/spec/containers/0/args"_json_pointer, json::array())) {
      out.push_back(a.get<std::string>());
    }
  }
  return out;
}

bool HasArgPrefix(const std::vector<std::string>& args, const std::string& prefix) {
  for (const std::string& a : args) {
    if (a.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(Consent, ApprovalByTheTenantsAdminAdmitsTheJobAndRefusalStopsItsWorkers) {
  InstallCrds();
  const std::string dir = e2e::FreshDir("consent");
  absl::StatusOr<Operator> op = StartOperator(Kubeconfig(), dir, {});
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_NO_FATAL_FAILURE(
      ResetConsentScenario(kJobNs, kJob, {"consent-a", "consent-b"}, "consent-a"));
  // Who may approve: the chart's ClusterRole, bound in each tenant's
  // namespace.
  absl::StatusOr<std::string> role = ApplyTenantApproverRole("consent");
  ASSERT_TRUE(role.ok()) << role.status();
  for (const char* t : {"consent-a", "consent-b"}) {
    Kubectl({"create", "rolebinding", "approvers", "-n", t, "--clusterrole=" + *role,
             std::string("--user=dpo-") + t});
  }

  ASSERT_EQ(Apply(JobYaml()).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [] {
    return Job().value("/status/phase"_json_pointer, std::string()) == "AwaitingApproval";
  })) << Job().dump(2);
  const std::string uid = Job().value("/metadata/uid"_json_pointer, std::string());
  json job = Job();
  EXPECT_EQ(job["status"]["reason"], "AwaitingApproval");
  EXPECT_NE(job["status"]["message"].get<std::string>().find("consent-a"), std::string::npos);
  EXPECT_EQ(JobCondition(job, "Admitted")["status"], "False");
  EXPECT_EQ(TenantStatus(job, "consent-a")["consent"], "Pending");
  EXPECT_EQ(TenantStatus(job, "consent-b")["consent"], "NotRequired");
  EXPECT_TRUE(Deployments(uid).empty()) << "nothing may run before consent";
  CommandResult printed = Kubectl({"get", "fedjobs", "-n", kJobNs});
  EXPECT_NE(printed.out.find("AwaitingApproval"), std::string::npos) << printed.out;

  // The other tenant's admin may not approve for consent-a ...
  CommandResult forbidden =
      ApplyAs("dpo-consent-b", ApprovalYaml("consent-a", "consent-a", "Approved"), dir);
  EXPECT_NE(forbidden.code, 0);
  EXPECT_NE(forbidden.err.find("forbidden"), std::string::npos) << forbidden.err;
  // ... and an approval for consent-a written in its own namespace is ignored.
  CommandResult forged =
      ApplyAs("dpo-consent-b", ApprovalYaml("consent-b", "consent-a", "Approved"), dir);
  ASSERT_EQ(forged.code, 0) << forged.err;
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(Job().value("/status/phase"_json_pointer, std::string()), "AwaitingApproval");
  EXPECT_TRUE(Deployments(uid).empty());

  // consent-a's own admin approves: the job's objects appear.
  CommandResult approved =
      ApplyAs("dpo-consent-a", ApprovalYaml("consent-a", "consent-a", "Approved"), dir);
  ASSERT_EQ(approved.code, 0) << approved.err;
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] { return Deployments(uid).size() == 3; }))
      << Job().dump(2);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [] {
    return JobCondition(Job(), "Admitted").value("status", "") == "True";
  })) << Job().dump(2);
  job = Job();
  EXPECT_NE(job["status"]["phase"], "AwaitingApproval");
  EXPECT_EQ(TenantStatus(job, "consent-a")["consent"], "Approved");
  EXPECT_EQ(WorkerReplicas(uid, "consent-a"), 1);
  const std::vector<std::string> aggregator_args = AggregatorArgs(uid);
  EXPECT_FALSE(HasArgPrefix(aggregator_args, "--expected-clients="))
      << "every tenant runs: the aggregator waits for all replicas by default";
  // The approval is on its way to the aggregator's audit log.
  EXPECT_EQ(AuditedAdmission(dir),
            (std::vector<std::string>{"job_created", "tenant_approved consent-a Approved"}));

  // Refusing later (revocation) stops consent-a's workers; the job goes on.
  CommandResult refused =
      ApplyAs("dpo-consent-a", ApprovalYaml("consent-a", "consent-a", "Refused"), dir);
  ASSERT_EQ(refused.code, 0) << refused.err;
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] { return WorkerReplicas(uid, "consent-a") == 0; }));
  EXPECT_EQ(WorkerReplicas(uid, "consent-b"), 1);
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [] {
    return TenantStatus(Job(), "consent-a").value("phase", "") == "Refused";
  })) << Job().dump(2);
  EXPECT_EQ(JobCondition(Job(), "Admitted")["status"], "True");
  EXPECT_NE(Job()["status"]["phase"], "Failed");
  EXPECT_EQ(AggregatorArgs(uid), aggregator_args)
      << "a revocation must not change (and so restart) the running aggregator";
  EXPECT_EQ(AuditedAdmission(dir),
            (std::vector<std::string>{"job_created", "tenant_approved consent-a Approved",
                                      "tenant_refused consent-a Refused"}));

  if (HasFailure()) std::cerr << "--- operator log ---\n" << e2e::ReadFile(op->log) << "\n";
  Kubectl({"delete", "fedjob", "-n", kJobNs, kJob, "--wait=true", "--timeout=60s"});
  Kubectl({"delete", "clusterrole", "consent-braid-tenant-approver", "--ignore-not-found"});
}

// A tenant that refused before the job started: the job runs without it,
// and its aggregator is told to expect only the other tenant's workers (as
// `braid run` tells its own), so rounds do not wait out the start grace for
// workers that never come.
TEST(Consent, ARefusalBeforeTheStartLeavesTheTenantOutOfTheExpectedWorkers) {
  InstallCrds();
  constexpr char kNs[] = "fl-consent-early";
  constexpr char kName[] = "refused-early";
  const std::string dir = e2e::FreshDir("consent-early");
  absl::StatusOr<Operator> op = StartOperator(Kubeconfig(), dir, {});
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_NO_FATAL_FAILURE(ResetConsentScenario(kNs, kName, {"early-a", "early-b"}, "early-a"));
  const std::string refusal = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\n", "metadata: {name: ", kName,
      ", namespace: early-a}\n", "spec:\n  tenant: early-a\n  job: {namespace: ", kNs,
      ", name: ", kName, "}\n  decision: Refused\n  comment: not our data\n");
  ASSERT_EQ(Apply(refusal).code, 0);
  ASSERT_EQ(Apply(TwoTenantJobYaml(kNs, kName, "early-a", "early-b")).code, 0);
  auto job = [&] { return GetJson({"federatedjob", "-n", kNs, kName}).value_or(json()); };
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    const json admitted = JobCondition(job(), "Admitted");  // null until the status has it
    return admitted.is_object() && admitted.value("status", "") == "True";
  })) << job().dump(2);
  const std::string uid = job().value("/metadata/uid"_json_pointer, std::string());
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] { return Deployments(uid).size() == 3; }))
      << job().dump(2);
  EXPECT_EQ(WorkerReplicas(uid, "early-a"), 0);
  EXPECT_EQ(WorkerReplicas(uid, "early-b"), 1);
  const std::vector<std::string> args = AggregatorArgs(uid);
  EXPECT_TRUE(std::find(args.begin(), args.end(), "--expected-clients=1") != args.end())
      << absl::StrJoin(args, " ");

  if (HasFailure()) std::cerr << "--- operator log ---\n" << e2e::ReadFile(op->log) << "\n";
  Kubectl({"delete", "fedjob", "-n", kNs, kName, "--wait=true", "--timeout=60s"});
}

}  // namespace
}  // namespace braid::k8s
