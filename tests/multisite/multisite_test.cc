// Multi-site federation on three real control planes (multisite_fixture.h):
// a coordinator and two sites, each with its own braid-operator in its role.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"
#include "tests/multisite/multisite_fixture.h"

namespace braid::multisite {
namespace {

namespace fs = std::filesystem;
using k8s::WaitUntil;
using nlohmann::json;

std::string ProcFile(int pid, const char* name) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", name), std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class MultiSiteTest : public MultiSiteFixture {
 protected:
  MultiSiteTest() : MultiSiteFixture("fl-consortium", "multisite") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MultiSiteFixture::SetUp());
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  }
};

TEST_F(MultiSiteTest, TwoSitesApproveAndRunAJobToSucceeded) {
  const json require_approval = {{"requireApproval", true}};
  for (Site& s : sites_) ASSERT_NO_FATAL_FAILURE(EnrollSite(s, require_approval));
  for (const Site& s : sites_) {
    EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase(s.name) == "Connected"; }))
        << s.name << " never connected; its log:\n" << e2e::ReadFile(s.op->log);
    // The token was spent: its Secret is gone, the Site says when.
    EXPECT_TRUE(coordinator_.SecretValue("braid-system", "braid-enrollment-" + s.name, "token").empty());
    EXPECT_FALSE(coordinator_.Get({"site", s.name})
                     .value_or(json())
                     .value("/status/enrolledAt"_json_pointer, std::string())
                     .empty());
  }
  // The coordinator process holds no credential for any site's cluster.
  for (const std::string& file : {std::string("cmdline"), std::string("environ")}) {
    const std::string text = ProcFile(coordinator_op_->proc.pid(), file.c_str());
    for (const Site& s : sites_) {
      EXPECT_FALSE(absl::StrContains(text, s.cluster.kubeconfig)) << file;
      EXPECT_FALSE(absl::StrContains(text, fs::path(s.cluster.kubeconfig).parent_path().string()))
          << file;
    }
  }

  ASSERT_EQ(coordinator_.Apply(JobYaml("two-sites", JobShape{})).code, 0);
  const std::string uid = Job("two-sites").value("/metadata/uid"_json_pointer, std::string());
  ASSERT_FALSE(uid.empty());
  // Each site shows what the job asks for and waits for its own approval.
  for (const Site& s : sites_) {
    json inv;
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      inv = Invitation(s, "two-sites");
      return inv.value("/status/phase"_json_pointer, std::string()) == "AwaitingApproval";
    })) << s.name << ": " << inv.dump() << "\n" << e2e::ReadFile(s.op->log);
    EXPECT_EQ(inv["spec"]["jobUid"], uid);
    EXPECT_EQ(inv["spec"]["model"]["kind"], "mlp");
    EXPECT_EQ(inv["spec"]["rounds"], 3);
    EXPECT_EQ(inv["spec"]["dataset"], "records");
    EXPECT_TRUE(s.cluster.Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid})
                    .value_or(json())
                    .value("items", json::array())
                    .empty())
        << "workers before approval at " << s.name;
  }
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return TenantStatus(Job("two-sites"), "charite").value("phase", "") == "AwaitingApproval";
  })) << Job("two-sites")["status"].dump();

  for (const Site& s : sites_) ASSERT_NO_FATAL_FAILURE(Decide(s, "two-sites", "Approved"));
  for (const Site& s : sites_) {
    ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      return Invitation(s, "two-sites").value("/status/phase"_json_pointer, std::string()) == "Running";
    })) << s.name << ": " << Invitation(s, "two-sites").dump() << "\n" << e2e::ReadFile(s.op->log);
    // The workers mount the claim the site's Tenant maps the dataset to;
    // the coordinator never named it.
    std::optional<json> d = s.cluster.Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid});
    ASSERT_TRUE(d.has_value() && (*d)["items"].size() == 1u);
    bool claim = false;
    for (const json& v : (*d)["items"][0]["spec"]["template"]["spec"]["volumes"]) {
      claim |= v.value("/persistentVolumeClaim/claimName"_json_pointer, std::string()) == "data";
    }
    EXPECT_TRUE(claim);
  }
  EXPECT_FALSE(absl::StrContains(Job("two-sites").dump(), "claimName"));

  ASSERT_NO_FATAL_FAILURE(StartAggregator("two-sites", dir_));
  for (Site& s : sites_) ASSERT_NO_FATAL_FAILURE(StartWorkers(s, uid, dir_));
  ASSERT_TRUE(WaitUntil(absl::Seconds(120), [&] {
    return Job("two-sites").value("/status/phase"_json_pointer, std::string()) == "Succeeded";
  })) << Job("two-sites")["status"].dump() << "\naggregator:\n" << e2e::ReadFile(dir_ + "/aggregator.log");
  const json job = Job("two-sites");
  EXPECT_EQ(job["status"]["round"], 3);
  for (const Site& s : sites_) {
    const json t = TenantStatus(job, s.name);
    EXPECT_EQ(t.value("site", ""), s.name) << t;
    EXPECT_EQ(t.value("lastRound", -1), 3) << t;  // both sites took part in every round
  }
  // The job ended: the sites withdraw their workers.
  for (const Site& s : sites_) {
    EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
      return Invitation(s, "two-sites").value("/status/phase"_json_pointer, std::string()) == "Withdrawn" &&
             s.cluster.Get({"deployments", "-n", s.ns, "-l", "braid.dev/job-uid=" + uid})
                 .value_or(json())
                 .value("items", json::array())
                 .empty();
    })) << s.name << ": " << Invitation(s, "two-sites").dump();
  }
}

TEST_F(MultiSiteTest, ASitesOwnPolicyRefusesWhatTheCoordinatorAccepted) {
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[0], json::object()));
  // charite allows only llama: the MLP job is refused there, by charite.
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[1], {{"allowedModels", {"llama"}}}));
  ASSERT_EQ(coordinator_.Apply(JobYaml("policy", JobShape{})).code, 0);
  json inv;
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    inv = Invitation(sites_[1], "policy");
    return inv.value("/status/phase"_json_pointer, std::string()) == "Refused";
  })) << inv.dump() << "\n" << e2e::ReadFile(sites_[1].op->log);
  EXPECT_EQ(inv["status"]["reason"], "ModelNotAllowed");
  EXPECT_TRUE(absl::StrContains(inv["status"].value("message", ""), "spec.model.kind"))
      << inv["status"];
  // The coordinator sees charite's refusal; st-mary (no approval needed) runs.
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    const json job = Job("policy");
    return TenantStatus(job, "charite").value("phase", "") == "Refused" &&
           Invitation(sites_[0], "policy").value("/status/phase"_json_pointer, std::string()) == "Running";
  })) << Job("policy")["status"].dump();
  EXPECT_TRUE(sites_[1].cluster.Get({"deployments", "-n", sites_[1].ns})
                  .value_or(json())
                  .value("items", json::array())
                  .empty());
}

TEST_F(MultiSiteTest, ARevokedSiteIsRefusedAtItsNextCall) {
  ASSERT_NO_FATAL_FAILURE(EnrollSite(sites_[0], json::object()));
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase("st-mary") == "Connected"; }))
      << e2e::ReadFile(sites_[0].op->log);
  CommandResult r = coordinator_.Kubectl(
      {"patch", "site", "st-mary", "--type=merge", "-p", R"({"spec":{"revoked":true}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase("st-mary") == "Revoked"; }));
  // Its stream ends and it cannot come back: the site's log says why.
  EXPECT_TRUE(WaitUntil(absl::Seconds(90), [&] {
    return absl::StrContains(e2e::ReadFile(sites_[0].op->log), "PERMISSION_DENIED") ||
           absl::StrContains(e2e::ReadFile(sites_[0].op->log), "not a member");
  })) << e2e::ReadFile(sites_[0].op->log);
  // A job naming it is refused at the coordinator.
  ASSERT_EQ(coordinator_.Apply(JobYaml("revoked", JobShape{})).code, 0);
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return k8s::JobCondition(Job("revoked"), "TenantsReady").value("reason", "") == "SiteRevoked";
  })) << Job("revoked")["status"].dump();
}

// With --site-aggregator-gateway, the coordinator attaches each job's
// aggregator to the Gateway with a TLSRoute (the Gateway API's CRD, as a
// cluster with a Gateway controller has it; no controller runs here, so
// this checks what the API server stores, not traffic), gone with the job.
class MultiSiteGatewayTest : public MultiSiteFixture {
 protected:
  MultiSiteGatewayTest() : MultiSiteFixture("fl-gateway", "multisite-gateway") {}
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MultiSiteFixture::SetUp());
    // scripts/gateway-api-crds.sh fetched it (make test's k8s-tools step).
    ASSERT_TRUE(fs::exists(BRAID_GATEWAY_API_TLSROUTE_CRD))
        << BRAID_GATEWAY_API_TLSROUTE_CRD << " is missing: run make k8s-tools";
    CommandResult r = coordinator_.Kubectl(
        {"apply", "--server-side", "--force-conflicts", "-f", BRAID_GATEWAY_API_TLSROUTE_CRD});
    ASSERT_EQ(r.code, 0) << r.err;
    r = coordinator_.Kubectl({"wait", "--for=condition=Established", "--timeout=60s",
                              "crd/tlsroutes.gateway.networking.k8s.io"});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_NO_FATAL_FAILURE(
        StartCoordinator("", {"--site-aggregator-gateway=braid-system/federation/aggregators"}));
  }
};

TEST_F(MultiSiteGatewayTest, EachJobsAggregatorGetsATlsRouteGoneWithTheJob) {
  for (Site& s : sites_) ASSERT_NO_FATAL_FAILURE(EnrollSite(s, json::object()));
  ASSERT_EQ(coordinator_.Apply(JobYaml("routed", JobShape{})).code, 0);
  std::optional<json> route;
  ASSERT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    route = coordinator_.Get({"tlsroute", "-n", job_ns_, "routed-aggregator"});
    return route.has_value();
  })) << Job("routed")["status"].dump() << "\n" << e2e::ReadFile(coordinator_op_->log);
  EXPECT_EQ((*route)["spec"]["hostnames"], json::array({"routed-aggregator." + job_ns_ + ".svc"}));
  EXPECT_EQ((*route)["spec"]["parentRefs"][0]["name"], "federation");
  EXPECT_EQ((*route)["spec"]["parentRefs"][0]["namespace"], "braid-system");
  EXPECT_EQ((*route)["spec"]["parentRefs"][0]["sectionName"], "aggregators");
  EXPECT_EQ((*route)["spec"]["rules"][0]["backendRefs"][0]["name"], "routed-aggregator");
  EXPECT_EQ((*route)["spec"]["rules"][0]["backendRefs"][0]["port"], 7070);

  CommandResult r = coordinator_.Kubectl({"delete", "fedjob", "-n", job_ns_, "routed", "--wait=true"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    return !coordinator_.Get({"tlsroute", "-n", job_ns_, "routed-aggregator"}).has_value();
  }));
}

// A Site deleted and made again under the same name is a new Site: the
// certificate the institution holds from the old one is refused (it names
// the old Site's uid), and the new Site's token enrolls it afresh.
TEST_F(MultiSiteTest, ASiteMadeAgainRefusesTheOldSitesCertificate) {
  Site& s = sites_[0];
  ASSERT_NO_FATAL_FAILURE(EnrollSite(s, json::object()));
  const std::string old_uid = SiteObject(s.name).value("/metadata/uid"_json_pointer, std::string());
  CommandResult r = coordinator_.Kubectl({"delete", "site", s.name, "--wait=true"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(coordinator_.Apply(absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: Site\n"
                                            "metadata: {name: ", s.name, "}\n"))
                .code,
            0);
  ASSERT_NE(SiteObject(s.name).value("/metadata/uid"_json_pointer, std::string()), old_uid);
  std::string token;
  ASSERT_TRUE(WaitUntil(absl::Seconds(30), [&] {
    token = coordinator_.SecretValue("braid-system", "braid-enrollment-" + s.name, "token");
    return !token.empty();
  })) << "the new Site got no token\n" << e2e::ReadFile(coordinator_op_->log);
  // The site's operator, still holding the old certificate, is refused.
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] {
    return absl::StrContains(e2e::ReadFile(s.op->log), "was made again after this certificate");
  })) << e2e::ReadFile(s.op->log);
  EXPECT_EQ(SitePhase(s.name), "Pending");

  // Its platform team installs the new token in place of the old identity.
  s.op->proc.Terminate();
  r = s.cluster.Kubectl({"delete", "secret", "-n", "braid-system", "braid-site-identity"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> flags = s.flags;
  flags.push_back("--enrollment-token-file=" + WriteText(s.dir + "/new-token", token));
  fs::create_directories(s.dir + "/again");
  absl::StatusOr<k8s::Operator> op = k8s::StartOperator(s.cluster.kubeconfig, s.dir + "/again", flags);
  ASSERT_TRUE(op.ok()) << op.status();
  s.op = std::make_unique<k8s::Operator>(*std::move(op));
  EXPECT_TRUE(WaitUntil(absl::Seconds(60), [&] { return SitePhase(s.name) == "Connected"; }))
      << e2e::ReadFile(s.op->log);
}

}  // namespace
}  // namespace braid::multisite
