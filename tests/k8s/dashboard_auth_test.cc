// The operator's dashboard against a real control plane: every API call
// needs a bearer token the API server vouches for (TokenReview), and an
// approval is allowed only to someone who may create TenantApprovals in the
// tenant's namespace (SubjectAccessReview). Tokens are real ServiceAccount
// tokens from `kubectl create token`.
#include <httplib.h>

#include <cstdlib>
#include <iostream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"

namespace braid::k8s {
namespace {

using nlohmann::json;

constexpr char kJobNs[] = "fl-dash";
constexpr char kJob[] = "dash-job";

std::string JobYaml() { return TwoTenantJobYaml(kJobNs, kJob, "dash-a", "dash-b"); }

std::string Token(const std::string& ns, const std::string& sa) {
  CommandResult r = Kubectl({"create", "token", sa, "-n", ns, "--duration=1h"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::string t = r.out;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

// The dashboard's port, from the operator's log line "dashboard on http://HOST:PORT/".
int DashboardPort(const std::string& log) {
  int port = 0;
  WaitUntil(absl::Seconds(30), [&] {
    std::smatch m;
    const std::string text = e2e::ReadFile(log);
    if (!std::regex_search(text, m, std::regex(R"(dashboard on http://[^:]+:(\d+)/)"))) return false;
    port = std::stoi(m[1]);
    return true;
  });
  return port;
}

json Job() { return GetJson({"federatedjob", "-n", kJobNs, kJob}).value_or(json()); }

std::optional<json> Approval(const std::string& ns) {
  return GetJson({"tenantapproval", "-n", ns, absl::StrCat(kJobNs, ".", kJob)});
}

std::string SourceDir() { return e2e::SourcePath(""); }

TEST(DashboardAuth, OnlyTheTenantsAdminMayApproveThroughTheDashboard) {
  InstallCrds();
  const std::string dir = e2e::FreshDir("dash-auth");
  absl::StatusOr<Operator> op =
      StartOperator(Kubeconfig(), dir, {"--dashboard-listen=127.0.0.1:0"});
  ASSERT_TRUE(op.ok()) << op.status();
  const int port = DashboardPort(op->log);
  ASSERT_GT(port, 0) << e2e::ReadFile(op->log);

  ASSERT_NO_FATAL_FAILURE(ResetConsentScenario(kJobNs, kJob, {"dash-a", "dash-b"}, "dash-a"));
  // The browser test lets admin-a read jobs; here nobody may.
  Kubectl({"delete", "rolebinding", "job-readers", "-n", kJobNs, "--ignore-not-found"});
  absl::StatusOr<std::string> role = ApplyTenantApproverRole("dashauth");
  ASSERT_TRUE(role.ok()) << role.status();
  // admin-a administers tenant dash-a; admin-b only dash-b.
  for (const char* t : {"dash-a", "dash-b"}) {
    const std::string sa = std::string("admin-") + (t + 5);
    Kubectl({"create", "serviceaccount", sa, "-n", t});
    Kubectl({"create", "rolebinding", "approvers", "-n", t, "--clusterrole=" + *role,
             absl::StrCat("--serviceaccount=", t, ":", sa)});
  }
  ASSERT_EQ(Apply(JobYaml()).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [] {
    return Job().value("/status/phase"_json_pointer, std::string()) == "AwaitingApproval";
  })) << Job().dump(2);
  const std::string uid = Job().value("/metadata/uid"_json_pointer, std::string());
  const std::string token_a = Token("dash-a", "admin-a");
  const std::string token_b = Token("dash-b", "admin-b");

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  const std::string approve = absl::StrCat("/api/jobs/", kJobNs, "/", kJob, "/tenants/dash-a/approve");
  auto bearer = [](const std::string& t) { return httplib::Headers{{"Authorization", "Bearer " + t}}; };

  // No token, or a made-up one: 401.
  auto res = client.Get("/api/jobs");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;
  res = client.Post(approve, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = client.Post(approve, bearer("not-a-token"), "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;

  // Tenant B's admin may not decide for tenant A: 403, nothing created.
  res = client.Post(approve, bearer(token_b), R"({"comment": "not mine to give"})",
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << res->body;
  EXPECT_NE(res->body.find("system:serviceaccount:dash-b:admin-b may not create tenantapprovals "
                           "in namespace dash-a"),
            std::string::npos)
      << res->body;
  EXPECT_FALSE(Approval("dash-a").has_value());
  EXPECT_EQ(Job().value("/status/phase"_json_pointer, std::string()), "AwaitingApproval");

  // Neither may read the job list without get on federatedjobs in fl-dash.
  res = client.Get("/api/jobs", bearer(token_a));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["jobs"], json::array()) << res->body;

  // Tenant A's admin may: the operator creates the TenantApproval for them.
  res = client.Post(approve, bearer(token_a), R"({"comment": "DPO agreed"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  std::optional<json> approval = Approval("dash-a");
  ASSERT_TRUE(approval.has_value());
  EXPECT_EQ((*approval)["spec"]["decision"], "Approved");
  EXPECT_EQ((*approval)["spec"]["tenant"], "dash-a");
  EXPECT_EQ((*approval)["spec"]["job"]["uid"], uid);
  EXPECT_NE((*approval)["spec"]["comment"].get<std::string>().find(
                "DPO agreed (by system:serviceaccount:dash-a:admin-a"),
            std::string::npos)
      << approval->dump(2);
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [] {
    const std::string phase = Job().value("/status/phase"_json_pointer, std::string());
    return phase == "Pending" || phase == "Running";
  })) << Job().dump(2);

  Kubectl({"delete", "fedjob", "-n", kJobNs, kJob, "--wait=true", "--timeout=60s"});
}

// The same flow by a person in the browser (tests/browser/operator_approve.mjs):
// sign in with the token, see the job AwaitingApproval, click Approve, see
// it admitted.
TEST(DashboardAuth, ApprovalClickedInTheBrowserAdmitsTheJob) {
  InstallCrds();
  const std::string dir = e2e::FreshDir("dash-browser");
  absl::StatusOr<Operator> op =
      StartOperator(Kubeconfig(), dir, {"--dashboard-listen=127.0.0.1:0"});
  ASSERT_TRUE(op.ok()) << op.status();
  const int port = DashboardPort(op->log);
  ASSERT_GT(port, 0) << e2e::ReadFile(op->log);
  ASSERT_EQ(e2e::ReadFile(op->log).find("serving the dashboard API only"), std::string::npos)
      << "the web app is not built: cmake --build build --target braid_web";

  ASSERT_NO_FATAL_FAILURE(ResetConsentScenario(kJobNs, kJob, {"dash-a", "dash-b"}, "dash-a"));
  absl::StatusOr<std::string> role = ApplyTenantApproverRole("dashauth");
  ASSERT_TRUE(role.ok()) << role.status();
  Kubectl({"create", "serviceaccount", "admin-a", "-n", "dash-a"});
  Kubectl({"create", "rolebinding", "approvers", "-n", "dash-a", "--clusterrole=" + *role,
           "--serviceaccount=dash-a:admin-a"});
  // To see the job in the list, the admin may read jobs in its namespace.
  Kubectl({"create", "role", "job-reader", "-n", kJobNs, "--verb=get,list,watch",
           "--resource=federatedjobs.braid.dev"});
  Kubectl({"create", "rolebinding", "job-readers", "-n", kJobNs, "--role=job-reader",
           "--serviceaccount=dash-a:admin-a"});
  ASSERT_EQ(Apply(JobYaml()).code, 0);
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [] {
    return Job().value("/status/phase"_json_pointer, std::string()) == "AwaitingApproval";
  })) << Job().dump(2);

  const char* build_dir = std::getenv("BRAID_BUILD_DIR");
  const std::string build = build_dir != nullptr ? build_dir : BRAID_BUILD_DIR_DEFAULT;
  CommandResult browser = RunCommand(
      {"/usr/bin/env", absl::StrCat("BRAID_DASHBOARD_URL=http://127.0.0.1:", port, "/"),
       "BRAID_TOKEN=" + Token("dash-a", "admin-a"), absl::StrCat("BRAID_JOB=", kJobNs, "/", kJob),
       "BRAID_TENANT=dash-a", "BRAID_SOURCE_DIR=" + SourceDir(), "BRAID_BUILD_DIR=" + build, "node",
       e2e::SourcePath("tests/browser/operator_approve.mjs")},
      absl::Minutes(3));
  EXPECT_EQ(browser.code, 0) << browser.out << browser.err;
  std::cout << browser.out;
  std::optional<json> approval = Approval("dash-a");
  ASSERT_TRUE(approval.has_value());
  EXPECT_NE((*approval)["spec"]["comment"].get<std::string>().find(
                "approved in the browser test (by system:serviceaccount:dash-a:admin-a"),
            std::string::npos);
  Kubectl({"delete", "fedjob", "-n", kJobNs, kJob, "--wait=true", "--timeout=60s"});
  Kubectl({"delete", "rolebinding", "job-readers", "-n", kJobNs, "--ignore-not-found"});
}

}  // namespace
}  // namespace braid::k8s
