// Tenant consent against a real control plane: a job naming a tenant that
// requires approval creates nothing until a TenantApproval appears in the
// tenant's own namespace; Kubernetes RBAC (the chart's
// braid-tenant-approver ClusterRole, bound per namespace) decides who may
// write one; refusing later stops that tenant's workers.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"

namespace braid::k8s {
namespace {

using nlohmann::json;

constexpr char kJobNs[] = "fl-consent";
constexpr char kJob[] = "needs-consent";

std::string JobYaml() {
  return absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n", "metadata: {name: ", kJob,
      ", namespace: ", kJobNs, "}\n",
      "spec:\n"
      "  model: {kind: mlp, mlp: {hidden: [8], numClasses: 4}}\n"
      "  data: {features: [x0, x1], label: label}\n"
      "  strategy: {rounds: 3, minClients: 1, roundTimeout: 1m}\n"
      "  tenants:\n"
      "  - {name: consent-a, data: {persistentVolumeClaim: {claimName: data, subPath: a.csv}}}\n"
      "  - {name: consent-b, data: {persistentVolumeClaim: {claimName: data, subPath: b.csv}}}\n");
}

std::string ApprovalYaml(const std::string& ns, const std::string& tenant,
                         const std::string& decision) {
  return absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: TenantApproval\n",
                      "metadata: {name: ", kJob, ", namespace: ", ns, "}\n",
                      "spec:\n  tenant: ", tenant, "\n  job: {namespace: ", kJobNs,
                      ", name: ", kJob, "}\n  decision: ", decision,
                      "\n  comment: checked by the test\n");
}

// kubectl create/apply as another user (the admin kubeconfig may impersonate).
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

TEST(Consent, ApprovalByTheTenantsAdminAdmitsTheJobAndRefusalStopsItsWorkers) {
  InstallCrds();
  const std::string dir = e2e::FreshDir("consent");
  absl::StatusOr<Operator> op = StartOperator(Kubeconfig(), dir, {});
  ASSERT_TRUE(op.ok()) << op.status();
  CreateNamespace(kJobNs);
  CreateTenant("consent-a", "consent-a", "data");
  CreateTenant("consent-b", "consent-b", "data");
  // Re-runnable on the same cluster: no decisions or job left from before.
  Kubectl({"delete", "fedjob", "-n", kJobNs, kJob, "--ignore-not-found", "--wait=true"});
  for (const char* t : {"consent-a", "consent-b"}) {
    Kubectl({"delete", "tenantapprovals", "--all", "-n", t, "--ignore-not-found"});
    Kubectl({"delete", "rolebinding", "approvers", "-n", t, "--ignore-not-found"});
  }
  ASSERT_EQ(Kubectl({"patch", "tenant", "consent-a", "--type=merge", "-p",
                     R"({"spec":{"policy":{"requireApproval":true}}})"})
                .code,
            0);
  // Who may approve: the chart's ClusterRole, bound in each tenant's
  // namespace. Rendered for a release of its own ("consent"), so it does not
  // collide with the chart the helm install test installs into this cluster.
  CommandResult role = RunCommand({Tool("helm"), "template", "consent", e2e::SourcePath("charts/braid"),
                                   "--show-only", "templates/tenant-approver-clusterrole.yaml"});
  ASSERT_EQ(role.code, 0) << role.err;
  ASSERT_NE(role.out.find("name: consent-braid-tenant-approver"), std::string::npos) << role.out;
  ASSERT_EQ(Apply(role.out).code, 0);
  for (const char* t : {"consent-a", "consent-b"}) {
    Kubectl({"create", "rolebinding", "approvers", "-n", t,
             "--clusterrole=consent-braid-tenant-approver", std::string("--user=dpo-") + t});
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

  if (HasFailure()) std::cerr << "--- operator log ---\n" << e2e::ReadFile(op->log) << "\n";
  Kubectl({"delete", "fedjob", "-n", kJobNs, kJob, "--wait=true", "--timeout=60s"});
  Kubectl({"delete", "clusterrole", "consent-braid-tenant-approver", "--ignore-not-found"});
}

}  // namespace
}  // namespace braid::k8s
