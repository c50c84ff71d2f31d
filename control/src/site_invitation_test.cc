#include "braid/control/site_invitation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "braid/core/spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::control {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The job as the coordinator sends it: a tenant of the coordinator's own
// cluster (local) and two site tenants, st-mary (site st-mary-london,
// dataset notes) and charite (site charite, dataset notes.v2). `extra`:
// more spec fields.
spec::JobSpec Job(const std::string& extra = "") {
  const std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
      "metadata: {name: notes, namespace: consortium}\n"
      "spec:\n"
      "  data: {features: [x0, x1]}\n",
      extra,
      "  tenants:\n"
      "  - {name: local, data: {persistentVolumeClaim: {claimName: d, subPath: a.csv}}}\n"
      "  - {name: st-mary, site: st-mary-london, dataset: notes, replicas: 2}\n"
      "  - {name: charite, site: charite, dataset: notes.v2}\n");
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(yaml, "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

// The site's own Tenant: namespace tenant-st-mary, datasets notes (claim
// records, file notes/train.csv) and scratch; `policy` when given.
json SiteTenant(json policy = json()) {
  json t = {{"apiVersion", "braid.dev/v1alpha1"},
            {"kind", "Tenant"},
            {"metadata", {{"name", "st-mary"}}},
            {"spec",
             {{"namespace", "tenant-st-mary"},
              {"datasets",
               {{{"name", "scratch"}, {"claimName", "tmp"}, {"subPath", "x.csv"}},
                {{"name", "notes"},
                 {"claimName", "records"},
                 {"subPath", "notes/train.csv"},
                 {"description", "discharge notes 2019-2024"}}}}}}};
  if (!policy.is_null()) t["spec"]["policy"] = policy;
  return t;
}

auto Problem(const std::string& path, const std::string& reason) {
  return AllOf(Field(&TenantProblem::path, path), Field(&TenantProblem::reason, reason));
}

TEST(ResolveSiteInvitation, TheDatasetMapsToTheSitesOwnClaimAndFile) {
  const SiteInvitationView v =
      ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", SiteTenant());
  EXPECT_THAT(v.problems, IsEmpty());
  EXPECT_EQ(v.namespace_, "tenant-st-mary");
  EXPECT_EQ(v.claim_name, "records");
  EXPECT_EQ(v.sub_path, "notes/train.csv");
}

TEST(ResolveSiteInvitation, AnUnknownDatasetIsRefusedNamingTheTenantsDatasets) {
  json tenant = SiteTenant();
  tenant["spec"]["datasets"].erase(1);  // only scratch remains
  const SiteInvitationView v = ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", tenant);
  ASSERT_THAT(v.problems, ElementsAre(Problem("spec.tenants[1].dataset", "DatasetNotFound")));
  EXPECT_THAT(v.problems[0].message, AllOf(HasSubstr("\"notes\""), HasSubstr("spec.datasets")));
  // The refusal travels back to the coordinator: it names none of the
  // site's claims, files or other datasets.
  EXPECT_THAT(v.problems[0].message,
              AllOf(Not(HasSubstr("scratch")), Not(HasSubstr("tmp")), Not(HasSubstr("x.csv"))));
  EXPECT_EQ(v.claim_name, "");
  EXPECT_EQ(v.namespace_, "");
}

TEST(ResolveSiteInvitation, ATenantWithoutDatasetsRefusesEveryDataset) {
  json tenant = SiteTenant();
  tenant["spec"].erase("datasets");
  EXPECT_THAT(ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", tenant).problems,
              ElementsAre(Problem("spec.tenants[1].dataset", "DatasetNotFound")));
}

TEST(ResolveSiteInvitation, ADatasetEntryWrittenAroundTheSchemaIsNotMounted) {
  for (const char* sub_path : {"../etc/passwd", "/etc/passwd", "a/../../b", ""}) {
    json tenant = SiteTenant();
    tenant["spec"]["datasets"][1]["subPath"] = sub_path;
    const SiteInvitationView v =
        ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", tenant);
    EXPECT_THAT(v.problems, ElementsAre(Problem("spec.tenants[1].dataset", "DatasetNotFound")))
        << sub_path;
    EXPECT_EQ(v.sub_path, "") << sub_path;
  }
  json tenant = SiteTenant();
  tenant["spec"]["datasets"][1]["claimName"] = 7;  // not a string
  EXPECT_THAT(ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", tenant).problems,
              ElementsAre(Problem("spec.tenants[1].dataset", "DatasetNotFound")));
}

TEST(ResolveSiteInvitation, TheSitesPolicyRefusesNamingTheJobsField) {
  const json policy = {{"allowedModels", {"llama"}}, {"maxRounds", 5}, {"maxEpsilon", 4.0}};
  const SiteInvitationView v =
      ResolveSiteInvitation(Job("  strategy: {rounds: 10}\n"), "st-mary-london", "st-mary",
                            SiteTenant(policy));
  EXPECT_THAT(v.problems, ElementsAre(Problem("spec.model.kind", "ModelNotAllowed"),
                                      Problem("spec.strategy.rounds", "TooManyRounds"),
                                      Problem("spec.privacy.differentialPrivacy",
                                              "PrivacyRequired")));
  EXPECT_EQ(v.claim_name, "") << "nothing is mounted for a refused invitation";
}

TEST(ResolveSiteInvitation, APrivacyBudgetAboveTheSitesIsRefused) {
  const SiteInvitationView v = ResolveSiteInvitation(
      Job("  privacy: {differentialPrivacy: {maxEpsilon: 8}}\n"), "st-mary-london", "st-mary",
      SiteTenant({{"maxEpsilon", 4.0}}));
  EXPECT_THAT(v.problems, ElementsAre(Problem("spec.privacy.differentialPrivacy.maxEpsilon",
                                              "PrivacyBudgetTooLarge")));
  const SiteInvitationView ok = ResolveSiteInvitation(
      Job("  privacy: {differentialPrivacy: {maxEpsilon: 4}}\n"), "st-mary-london", "st-mary",
      SiteTenant({{"maxEpsilon", 4.0}}));
  EXPECT_THAT(ok.problems, IsEmpty());
  EXPECT_EQ(ok.claim_name, "records");
}

TEST(ResolveSiteInvitation, ADatasetProblemAndAPolicyProblemAreBothReported) {
  json tenant = SiteTenant({{"maxRounds", 1}});
  tenant["spec"]["datasets"] = json::array();
  EXPECT_THAT(ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", tenant).problems,
              ElementsAre(Problem("spec.tenants[1].dataset", "DatasetNotFound"),
                          Problem("spec.strategy.rounds", "TooManyRounds")));
}

TEST(ResolveSiteInvitation, AnInvitationForAnotherSitesTenantIsRefused) {
  // A coordinator (compromised or wrong) asks st-mary-london to run
  // charite's tenant: the site would then train on its data under another
  // site's name.
  EXPECT_THAT(ResolveSiteInvitation(Job(), "st-mary-london", "charite", SiteTenant()).problems,
              ElementsAre(Problem("spec.tenants[2].site", "SiteMismatch")));
  EXPECT_THAT(ResolveSiteInvitation(Job(), "st-mary-london", "local", SiteTenant()).problems,
              ElementsAre(Problem("spec.tenants[0].site", "NotASiteTenant")));
  EXPECT_THAT(ResolveSiteInvitation(Job(), "st-mary-london", "nobody", SiteTenant()).problems,
              ElementsAre(Problem("spec.tenants", "TenantNotFound")));
}

TEST(ResolveSiteInvitation, ATenantWithoutANamespaceIsNotReady) {
  json tenant = SiteTenant();
  tenant["spec"].erase("namespace");
  const SiteInvitationView v = ResolveSiteInvitation(Job(), "st-mary-london", "st-mary", tenant);
  EXPECT_THAT(v.problems, ElementsAre(Problem("spec.tenants[1].site", "TenantNotReady")));
  EXPECT_EQ(v.claim_name, "");
}

}  // namespace
}  // namespace braid::control
