#include "braid/operator/site_role.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "braid/kube/testing/fake_api_server.h"
#include "braid/operator/job_objects.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::op {
namespace {

using nlohmann::json;

constexpr char kJob[] = R"(apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: notes, namespace: consortium}
spec:
  model: {kind: mlp}
  data: {features: [x0, x1]}
  strategy: {rounds: 5, minClients: 2}
  tenants:
  - {name: st-mary, site: st-mary, dataset: records}
  - {name: charite, site: charite, dataset: records}
)";

class SiteReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override { SetTenant(json::object()); }

  void SetTenant(const json& policy) {
    json tenant = {{"apiVersion", "braid.dev/v1alpha1"},
                   {"kind", "Tenant"},
                   {"metadata", {{"name", "st-mary"}}},
                   {"spec",
                    {{"namespace", "tenant-st-mary"},
                     {"datasets",
                      {{{"name", "records"}, {"claimName", "data"}, {"subPath", "notes.csv"}}}}}}};
    if (!policy.empty()) tenant["spec"]["policy"] = policy;
    server_.Upsert(kube::kTenant, tenant);
  }

  static v1::Invitation Invite(const std::string& uid = "uid-1") {
    v1::Invitation inv;
    inv.set_job_uid(uid);
    inv.set_job_namespace("consortium");
    inv.set_job_name("notes");
    inv.set_tenant("st-mary");
    inv.set_dataset("records");
    inv.set_job_yaml(kJob);
    inv.set_aggregator_address("fl.example.org:443");
    inv.set_aggregator_server_name("notes-aggregator.consortium.svc");
    inv.set_aggregator_ca_pem("CA");
    inv.set_coordinator("research-network");
    inv.set_worker_image("evil/image:latest");
    return inv;
  }

  v1::SiteReport Reconcile(const std::vector<v1::Invitation>& invitations) {
    absl::StatusOr<v1::SiteReport> report = reconciler_.Reconcile(invitations, identity_);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.value_or(v1::SiteReport());
  }

  std::vector<json> Items(const kube::ResourceRef& ref) {
    absl::StatusOr<json> list = client_->List(ref, "tenant-st-mary");
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? (*list)["items"].get<std::vector<json>>() : std::vector<json>{};
  }
  std::vector<json> Deployments() { return Items(kube::kDeployment); }

  // The site's admin decides on the job, in the Tenant's namespace.
  void Decide(const std::string& decision) {
    server_.Upsert(kube::kTenantApproval,
                   {{"apiVersion", "braid.dev/v1alpha1"},
                    {"kind", "TenantApproval"},
                    {"metadata", {{"name", "notes"}, {"namespace", "tenant-st-mary"}}},
                    {"spec",
                     {{"tenant", "st-mary"},
                      {"job", {{"namespace", "consortium"}, {"name", "notes"}}},
                      {"decision", decision}}}});
  }

  kube::FakeApiServer server_;
  std::unique_ptr<kube::Client> client_ = kube::NewClient(server_.NewTransport());
  SiteReconciler reconciler_{client_.get(),
                             SiteRoleOptions{"st-mary", "st-mary", "site/worker:1", "Never"}};
  federation::SiteIdentity identity_{"KEY", "CERT", "FEDCA"};
};

TEST_F(SiteReconcilerTest, AnInvitationBecomesWorkersOnTheSitesOwnClaimAndImage) {
  const v1::SiteReport report = Reconcile({Invite()});
  ASSERT_EQ(report.jobs_size(), 1);
  EXPECT_EQ(report.jobs(0).state(), "Running");
  const std::vector<json> deployments = Deployments();
  ASSERT_EQ(deployments.size(), 1u);
  const json pod = deployments[0]["spec"]["template"]["spec"];
  // The site's image, not the one the coordinator named.
  EXPECT_EQ(pod["containers"][0]["image"], "site/worker:1");
  bool claim = false;
  for (const json& v : pod["volumes"]) {
    claim |= v.value("/persistentVolumeClaim/claimName"_json_pointer, std::string()) == "data";
  }
  EXPECT_TRUE(claim);
  // The workers' Secret: the aggregator's CA and the site's own certificate.
  const std::vector<json> secrets = Items(kube::kSecret);
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0]["metadata"]["ownerReferences"][0]["kind"], "FederatedInvitation");
  const json invitation = Items(kFederatedInvitation).at(0);
  EXPECT_EQ(invitation["status"]["phase"], "Running");
  EXPECT_EQ(invitation["spec"]["jobUid"], "uid-1");
}

TEST_F(SiteReconcilerTest, TheSitesPolicyRefusesNamingTheFieldAndRunsNothing) {
  SetTenant({{"allowedModels", {"llama"}}});
  const v1::SiteReport report = Reconcile({Invite()});
  ASSERT_EQ(report.jobs_size(), 1);
  EXPECT_EQ(report.jobs(0).state(), "Refused");
  EXPECT_EQ(report.jobs(0).reason(), "ModelNotAllowed");
  EXPECT_TRUE(absl::StrContains(report.jobs(0).message(), "spec.model.kind"));
  EXPECT_TRUE(Deployments().empty());
}

TEST_F(SiteReconcilerTest, ApprovalIsAwaitedAndARefusalStopsRunningWorkers) {
  SetTenant({{"requireApproval", true}});
  EXPECT_EQ(Reconcile({Invite()}).jobs(0).state(), "AwaitingApproval");
  EXPECT_TRUE(Deployments().empty());
  Decide("Approved");
  EXPECT_EQ(Reconcile({Invite()}).jobs(0).state(), "Running");
  EXPECT_EQ(Deployments().size(), 1u);
  Decide("Refused");
  const v1::SiteReport report = Reconcile({Invite()});
  EXPECT_EQ(report.jobs(0).state(), "Refused");
  EXPECT_EQ(report.jobs(0).reason(), "RefusedByTenant");
  EXPECT_TRUE(Deployments().empty()) << "revoking must stop the workers at once";
  EXPECT_TRUE(Items(kube::kSecret).empty());
}

TEST_F(SiteReconcilerTest, AWithdrawnInvitationLosesItsWorkers) {
  Reconcile({Invite()});
  ASSERT_EQ(Deployments().size(), 1u);
  EXPECT_EQ(Reconcile({}).jobs_size(), 0);
  EXPECT_TRUE(Deployments().empty());
  EXPECT_EQ(Items(kFederatedInvitation).at(0)["status"]["phase"],
            "Withdrawn");
}

TEST_F(SiteReconcilerTest, HostileInvitationsAreRefusedWithoutBlockingTheOthers) {
  v1::Invitation other_site = Invite("uid-2");
  other_site.set_tenant("charite");  // a tenant of the job that is another site's
  v1::Invitation bad_name = Invite("uid-3");
  bad_name.set_job_name("Not_A_Label");
  v1::Invitation bad_uid = Invite("uid/../4");
  v1::Invitation lying_job = Invite("uid-5");
  lying_job.set_job_name("other");  // the job file names "notes"
  const v1::SiteReport report = Reconcile({other_site, bad_name, bad_uid, lying_job, Invite()});
  std::map<std::string, std::string> reason;
  for (const v1::InvitationState& s : report.jobs()) reason[s.job_uid()] = s.reason();
  EXPECT_EQ(reason["uid-2"], "SiteMismatch");
  EXPECT_EQ(reason["uid-3"], "InvalidInvitation");
  EXPECT_EQ(reason.count("uid/../4"), 0u);  // not trackable: not even reported
  EXPECT_EQ(reason["uid-5"], "InvalidJob");
  EXPECT_EQ(reason["uid-1"], "WorkersCreated");  // the honest one runs
  EXPECT_EQ(Deployments().size(), 1u);
}

TEST_F(SiteReconcilerTest, ACoordinatorCannotFloodTheSite) {
  std::vector<v1::Invitation> many;
  for (int i = 0; i < 100; ++i) many.push_back(Invite(absl::StrCat("uid-", i)));
  const v1::SiteReport report = Reconcile(many);
  int refused = 0;
  for (const v1::InvitationState& s : report.jobs()) refused += s.reason() == "TooManyInvitations";
  EXPECT_EQ(refused, 100 - 64);
  EXPECT_LE(Items(kFederatedInvitation).size(), 64u);
}

}  // namespace
}  // namespace braid::op

namespace braid::op {
namespace {

// The site's agent reconciles every few seconds: what did not change is
// not written again, and a re-approval after a refusal recreates the workers.
TEST_F(SiteReconcilerTest, AnUnchangedInvitationWritesNothingAgain) {
  ASSERT_EQ(Reconcile({Invite()}).jobs(0).state(), "Running");
  server_.clear_requests();
  ASSERT_EQ(Reconcile({Invite()}).jobs(0).state(), "Running");
  std::vector<std::string> writes;
  for (const kube::HttpRequest& r : server_.requests()) {
    if (r.method != "GET") writes.push_back(r.method + " " + r.path);
  }
  EXPECT_TRUE(writes.empty()) << ::testing::PrintToString(writes);
}

TEST_F(SiteReconcilerTest, AReApprovalAfterARefusalRecreatesTheWorkers) {
  SetTenant({{"requireApproval", true}});
  Decide("Approved");
  ASSERT_EQ(Reconcile({Invite()}).jobs(0).state(), "Running");
  Decide("Refused");
  ASSERT_EQ(Reconcile({Invite()}).jobs(0).state(), "Refused");
  EXPECT_EQ(Reconcile({Invite()}).jobs(0).state(), "Refused");
  ASSERT_TRUE(Deployments().empty());
  Decide("Approved");
  ASSERT_EQ(Reconcile({Invite()}).jobs(0).state(), "Running");
  EXPECT_EQ(Deployments().size(), 1u);
}

}  // namespace
}  // namespace braid::op
