#include "braid/control/tenant_approval.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/core/spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::control {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Job "lab/train" with tenants alpha (2 replicas) and beta (1), and
// minClients `min_clients`.
// min_tenants 0: not given (the default, min(2, tenants)).
spec::JobSpec Job(int min_clients = 1, int min_tenants = 0) {
  const std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
      "metadata: {name: train, namespace: lab}\n"
      "spec:\n"
      "  data: {features: [x0, x1]}\n"
      "  strategy: {minClients: ",
      min_clients, min_tenants > 0 ? absl::StrCat(", minTenants: ", min_tenants) : "",
      "}\n"
      "  tenants:\n"
      "  - {name: alpha, replicas: 2, data: {persistentVolumeClaim: {claimName: a, subPath: a.csv}}}\n"
      "  - {name: beta, data: {persistentVolumeClaim: {claimName: b, subPath: b.csv}}}\n");
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(yaml, "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

const JobRef kRef{"lab", "train", "uid-1"};

json Tenant(const std::string& name, const std::string& ns, bool require) {
  return {{"metadata", {{"name", name}}},
          {"spec", {{"namespace", ns}, {"policy", {{"requireApproval", require}}}}}};
}

json Approval(const std::string& ns, const std::string& name, const std::string& tenant,
              const std::string& decision, const std::string& uid = "",
              const std::string& job = "train") {
  json a = {{"metadata", {{"namespace", ns}, {"name", name}}},
            {"spec",
             {{"tenant", tenant},
              {"job", {{"namespace", "lab"}, {"name", job}}},
              {"decision", decision},
              {"comment", "reviewed"}}}};
  if (!uid.empty()) a["spec"]["job"]["uid"] = uid;
  return a;
}

std::map<std::string, json> AlphaRequires() {
  return {{"alpha", Tenant("alpha", "tenant-a", true)},
          {"beta", Tenant("beta", "tenant-b", false)}};
}

TEST(ResolveConsent, TenantsWithoutRequireApprovalNeedNothing) {
  const std::map<std::string, json> tenants = {{"alpha", Tenant("alpha", "tenant-a", false)},
                                               {"beta", Tenant("beta", "tenant-b", false)}};
  const auto consent = ResolveConsent(Job(), kRef, tenants, {});
  ASSERT_EQ(consent.size(), 2u);
  EXPECT_EQ(consent[0].consent, Consent::kNotRequired);
  EXPECT_EQ(consent[1].consent, Consent::kNotRequired);
  EXPECT_TRUE(DecideAdmission(Job(), consent).admit);
}

TEST(ResolveConsent, RequiredApprovalIsPendingUntilGiven) {
  const auto pending = ResolveConsent(Job(), kRef, AlphaRequires(), {});
  EXPECT_EQ(pending[0].consent, Consent::kPending);
  const Admission waiting = DecideAdmission(Job(), pending);
  EXPECT_FALSE(waiting.admit);
  EXPECT_EQ(waiting.reason, "AwaitingApproval");
  EXPECT_THAT(waiting.message, HasSubstr("alpha"));

  const auto approved = ResolveConsent(
      Job(), kRef, AlphaRequires(), {Approval("tenant-a", "ok", "alpha", "Approved")});
  EXPECT_EQ(approved[0].consent, Consent::kApproved);
  EXPECT_EQ(approved[0].approval, "tenant-a/ok");
  EXPECT_EQ(approved[0].comment, "reviewed");
  EXPECT_TRUE(DecideAdmission(Job(), approved).admit);
}

TEST(AdmissionJson, CarriesTheJobsCreationAndEachTenantsDecisionForTheAuditLog) {
  const auto consent = ResolveConsent(Job(), kRef, AlphaRequires(),
                                      {Approval("tenant-a", "ok", "alpha", "Approved")});
  const json job{{"metadata", {{"uid", "u-7"}, {"creationTimestamp", "2026-11-23T08:00:00Z"}}}};
  const std::string text = AdmissionJson(job, consent);
  EXPECT_EQ(text, AdmissionJson(job, consent));  // deterministic: no ConfigMap churn
  const json a = json::parse(text);
  EXPECT_EQ(a["job"], json({{"uid", "u-7"}, {"created", "2026-11-23T08:00:00Z"}}));
  ASSERT_EQ(a["tenants"].size(), 2u);
  EXPECT_EQ(a["tenants"][0], json({{"tenant", "alpha"},
                                   {"consent", "Approved"},
                                   {"approval", "tenant-a/ok"},
                                   {"comment", "reviewed"}}));
  EXPECT_EQ(a["tenants"][1]["consent"], "NotRequired");
}

TEST(ResolveConsent, OnlyAnApprovalInTheTenantsOwnNamespaceCounts) {
  // Whoever may write in "lab" (the job's namespace) must not approve for alpha.
  const auto consent = ResolveConsent(
      Job(), kRef, AlphaRequires(), {Approval("lab", "forged", "alpha", "Approved"),
                                     Approval("tenant-b", "forged", "alpha", "Approved")});
  EXPECT_EQ(consent[0].consent, Consent::kPending);
}

TEST(ResolveConsent, ApprovalMustNameThisJobAndTenant) {
  const auto consent = ResolveConsent(
      Job(), kRef, AlphaRequires(), {Approval("tenant-a", "other-job", "alpha", "Approved", "", "other"),
                                     Approval("tenant-a", "other-tenant", "beta", "Approved")});
  EXPECT_EQ(consent[0].consent, Consent::kPending);
}

TEST(ResolveConsent, ApprovalPinnedToAnotherUidDoesNotCarryOver) {
  const auto stale = ResolveConsent(Job(), kRef, AlphaRequires(),
                                    {Approval("tenant-a", "old", "alpha", "Approved", "uid-0")});
  EXPECT_EQ(stale[0].consent, Consent::kPending);
  const auto pinned = ResolveConsent(Job(), kRef, AlphaRequires(),
                                     {Approval("tenant-a", "new", "alpha", "Approved", "uid-1")});
  EXPECT_EQ(pinned[0].consent, Consent::kApproved);
}

TEST(ResolveConsent, RefusalWinsOverApproval) {
  const auto consent = ResolveConsent(Job(), kRef, AlphaRequires(),
                                      {Approval("tenant-a", "yes", "alpha", "Approved"),
                                       Approval("tenant-a", "no", "alpha", "Refused")});
  EXPECT_EQ(consent[0].consent, Consent::kRefused);
  EXPECT_EQ(consent[0].approval, "tenant-a/no");
}

TEST(DecideAdmission, RefusalLeavesTheOthersWhenMinClientsAllows) {
  const std::map<std::string, json> tenants = {{"alpha", Tenant("alpha", "tenant-a", false)},
                                               {"beta", Tenant("beta", "tenant-b", true)}};
  const auto consent =
      ResolveConsent(Job(2), kRef, tenants, {Approval("tenant-b", "no", "beta", "Refused")});
  EXPECT_EQ(consent[1].consent, Consent::kRefused);
  EXPECT_TRUE(DecideAdmission(Job(2, 1), consent).admit)
      << "alpha's 2 replicas meet minClients 2 and minTenants 1";
  // By default a round needs two tenants: alpha alone is no federation.
  const Admission alone = DecideAdmission(Job(2), consent);
  EXPECT_FALSE(alone.admit);
  EXPECT_EQ(alone.reason, "TenantRefused");
  EXPECT_THAT(alone.message, HasSubstr("fewer than strategy.minTenants (2)"));
  const Admission refused = DecideAdmission(Job(3, 1), consent);
  EXPECT_FALSE(refused.admit);
  EXPECT_EQ(refused.reason, "TenantRefused");
  EXPECT_THAT(refused.message, HasSubstr("beta"));
  EXPECT_THAT(refused.message, HasSubstr("minClients (3)"));
}

// Multi-site: a job with local tenant alpha and site tenant st-mary (site
// st-mary-london).
spec::JobSpec SiteJob() {
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
      "metadata: {name: train, namespace: lab}\n"
      "spec:\n"
      "  data: {features: [x0, x1]}\n"
      "  tenants:\n"
      "  - {name: alpha, data: {persistentVolumeClaim: {claimName: a, subPath: a.csv}}}\n"
      "  - {name: st-mary, site: st-mary-london, dataset: notes}\n",
      "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

TEST(ResolveConsent, ASiteTenantIsPendingUntilItsSiteReportsItRuns) {
  const std::map<std::string, json> tenants = {{"alpha", Tenant("alpha", "tenant-a", false)}};
  std::vector<TenantConsent> c = ResolveConsent(SiteJob(), kRef, tenants, {});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].consent, Consent::kNotRequired);
  EXPECT_EQ(c[1].consent, Consent::kPending);
  EXPECT_EQ(c[1].approval, "site:st-mary-london");
  const Admission waiting = DecideAdmission(SiteJob(), c);
  EXPECT_FALSE(waiting.admit);
  EXPECT_EQ(waiting.reason, "AwaitingApproval");
  EXPECT_THAT(waiting.message, AllOf(HasSubstr("st-mary"), HasSubstr("the site's cluster")));

  for (const char* state : {"Invited", "AwaitingApproval", "Bogus"}) {
    c = ResolveConsent(SiteJob(), kRef, tenants, {}, {{"st-mary", {state, "", ""}}});
    EXPECT_EQ(c[1].consent, Consent::kPending) << state;
  }
  for (const char* state : {"Running", "Succeeded", "Failed"}) {
    c = ResolveConsent(SiteJob(), kRef, tenants, {}, {{"st-mary", {state, "", ""}}});
    EXPECT_EQ(c[1].consent, Consent::kApproved) << state;
  }
  EXPECT_TRUE(DecideAdmission(SiteJob(), c).admit);
}

TEST(ResolveConsent, ASitesRefusalCarriesItsReasonBounded) {
  std::vector<TenantConsent> c = ResolveConsent(
      SiteJob(), kRef, {}, {},
      {{"st-mary", {"Refused", "ModelNotAllowed", "spec.model.kind: only llama"}}});
  EXPECT_EQ(c[1].consent, Consent::kRefused);
  EXPECT_EQ(c[1].comment, "ModelNotAllowed: spec.model.kind: only llama");
  // A site's message is a claim from another party: it cannot flood the
  // job's status or the audit trail.
  c = ResolveConsent(SiteJob(), kRef, {}, {},
                     {{"st-mary", {"Refused", "X", std::string(1 << 20, 'y')}}});
  EXPECT_LE(c[1].comment.size(), 1100u);
}

TEST(ResolveConsent, TheCoordinatorsOwnApprovalsCannotConsentForASite) {
  // A Tenant and an Approved TenantApproval named like the site's tenant in
  // the coordinator cluster: ignored, only the site decides.
  const std::map<std::string, json> tenants = {{"st-mary", Tenant("st-mary", "lab", true)}};
  const std::vector<TenantConsent> c = ResolveConsent(
      SiteJob(), kRef, tenants, {Approval("lab", "yes", "st-mary", "Approved")});
  EXPECT_EQ(c[1].consent, Consent::kPending);
}

TEST(ResolveSiteConsent, TheSitesTenantAndApprovalsDecideAtTheSite) {
  // At the site: its own Tenant requires approval, in tenant-st-mary.
  const json tenant = Tenant("st-mary", "tenant-st-mary", true);
  EXPECT_EQ(ResolveSiteConsent(SiteJob(), kRef, "st-mary", tenant, {}).consent,
            Consent::kPending);
  const json approved = Approval("tenant-st-mary", "ok", "st-mary", "Approved", "uid-1");
  TenantConsent c = ResolveSiteConsent(SiteJob(), kRef, "st-mary", tenant, {approved});
  EXPECT_EQ(c.consent, Consent::kApproved);
  EXPECT_EQ(c.approval, "tenant-st-mary/ok");
  // Pinned to another job uid (a new job of the same name): not carried over.
  EXPECT_EQ(ResolveSiteConsent(SiteJob(), JobRef{"lab", "train", "uid-2"}, "st-mary", tenant,
                               {approved})
                .consent,
            Consent::kPending);
  // In another namespace of the site's cluster: does not count.
  EXPECT_EQ(ResolveSiteConsent(SiteJob(), kRef, "st-mary", tenant,
                               {Approval("default", "ok", "st-mary", "Approved")})
                .consent,
            Consent::kPending);
  c = ResolveSiteConsent(SiteJob(), kRef, "st-mary", tenant,
                         {approved, Approval("tenant-st-mary", "no", "st-mary", "Refused")});
  EXPECT_EQ(c.consent, Consent::kRefused);
  EXPECT_EQ(ResolveSiteConsent(SiteJob(), kRef, "st-mary", Tenant("st-mary", "t", false), {})
                .consent,
            Consent::kNotRequired);
  EXPECT_EQ(ResolveSiteConsent(SiteJob(), kRef, "nobody", tenant, {approved}).consent,
            Consent::kPending);
}

}  // namespace
}  // namespace braid::control
