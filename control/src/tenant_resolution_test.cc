#include "braid/control/tenant_resolution.h"

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "braid/core/spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::control {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A job in "lab" with tenants alpha (2 replicas) and beta; `tenants` is the
// YAML of spec.tenants' items, `extra` more spec fields.
spec::JobSpec Job(const std::string& tenants, const std::string& extra = "") {
  const std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\n"
      "metadata: {name: train, namespace: lab}\n"
      "spec:\n"
      "  data: {features: [x0, x1]}\n",
      extra, "  tenants:\n", tenants);
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(yaml, "", options);
  EXPECT_TRUE(job.ok()) << job.status() << "\n" << yaml;
  return job.ok() ? *job : spec::JobSpec();
}

constexpr char kAlpha[] =
    "  - name: alpha\n"
    "    replicas: 2\n"
    "    data: {persistentVolumeClaim: {claimName: alpha-data, subPath: train/alpha.csv}}\n";
constexpr char kBeta[] =
    "  - name: beta\n"
    "    data: {persistentVolumeClaim: {claimName: beta-data, subPath: beta.csv}}\n";

json Tenant(const std::string& name, const std::string& ns, const std::string& claim,
            json policy = json()) {
  json t = {{"apiVersion", "braid.dev/v1alpha1"},
            {"kind", "Tenant"},
            {"metadata", {{"name", name}, {"uid", "uid-" + name}}},
            {"spec",
             {{"namespace", ns},
              {"dataSources", {{{"claimName", "scratch"}}, {{"claimName", claim}}}}}}};
  if (!policy.is_null()) t["spec"]["policy"] = policy;
  return t;
}

std::map<std::string, json> BothTenants() {
  return {{"alpha", Tenant("alpha", "tenant-a", "alpha-data")},
          {"beta", Tenant("beta", "lab", "beta-data")}};
}

TEST(ResolveTenants, AllowedTenantsResolveToTheirNamespaces) {
  const TenantResolution r = ResolveTenants(Job(std::string(kAlpha) + kBeta), BothTenants());
  EXPECT_THAT(r.problems, IsEmpty());
  EXPECT_EQ(r.namespaces,
            (std::map<std::string, std::string>{{"alpha", "tenant-a"}, {"beta", "lab"}}));
}

TEST(ResolveTenants, JobNamingTheTenantsNamespaceIsFine) {
  const TenantResolution r = ResolveTenants(
      Job("  - name: alpha\n"
          "    namespace: tenant-a\n"
          "    data: {persistentVolumeClaim: {claimName: alpha-data, subPath: a.csv}}\n"),
      BothTenants());
  EXPECT_THAT(r.problems, IsEmpty());
  EXPECT_EQ(r.namespaces.at("alpha"), "tenant-a");
}

TEST(ResolveTenants, MissingTenantIsNotFoundAtItsName) {
  std::map<std::string, json> tenants = BothTenants();
  tenants.erase("beta");
  const TenantResolution r = ResolveTenants(Job(std::string(kAlpha) + kBeta), tenants);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[1].name");
  EXPECT_EQ(r.problems[0].reason, "TenantNotFound");
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"beta\""));
  // The other tenant still resolves; the missing one has no namespace.
  EXPECT_EQ(r.namespaces, (std::map<std::string, std::string>{{"alpha", "tenant-a"}}));
}

TEST(ResolveTenants, NamespaceOtherThanTheTenantsIsRefused) {
  const TenantResolution r = ResolveTenants(
      Job(std::string(kAlpha) +
          "  - name: beta\n"
          "    namespace: somewhere-else\n"
          "    data: {persistentVolumeClaim: {claimName: beta-data, subPath: beta.csv}}\n"),
      BothTenants());
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[1].namespace");
  EXPECT_EQ(r.problems[0].reason, "NamespaceMismatch");
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"lab\""));
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"somewhere-else\""));
  EXPECT_EQ(r.namespaces.count("beta"), 0u);
}

TEST(ResolveTenants, LocalPathDataNeedsAClaim) {
  const TenantResolution r =
      ResolveTenants(Job(std::string(kAlpha) + "  - {name: beta, data: {path: data/beta.csv}}\n"),
                     BothTenants());
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[1].data");
  EXPECT_EQ(r.problems[0].reason, "NeedsClaim");
  EXPECT_THAT(r.problems[0].message, HasSubstr("persistentVolumeClaim"));
  EXPECT_EQ(r.namespaces.count("beta"), 0u);
}

TEST(ResolveTenants, ClaimWithoutSubPathNeedsTheFileNamed) {
  const TenantResolution r = ResolveTenants(
      Job("  - name: alpha\n"
          "    data: {persistentVolumeClaim: {claimName: alpha-data}}\n"),
      BothTenants());
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[0].data.persistentVolumeClaim.subPath");
  EXPECT_EQ(r.problems[0].reason, "NeedsClaim");
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"alpha-data\""));
  EXPECT_THAT(r.namespaces, IsEmpty());
}

TEST(ResolveTenants, ClaimTheTenantDoesNotListIsNotAllowed) {
  // Beta's claim exists in beta's Tenant, not alpha's: a job may not point
  // one tenant at data another tenant offers.
  const TenantResolution r = ResolveTenants(
      Job("  - name: alpha\n"
          "    data: {persistentVolumeClaim: {claimName: beta-data, subPath: beta.csv}}\n" +
          std::string(kBeta)),
      BothTenants());
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[0].data.persistentVolumeClaim.claimName");
  EXPECT_EQ(r.problems[0].reason, "ClaimNotAllowed");
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"beta-data\""));
  EXPECT_EQ(r.namespaces, (std::map<std::string, std::string>{{"beta", "lab"}}));
}

TEST(ResolveTenants, AllowedModelsPolicy) {
  std::map<std::string, json> tenants = BothTenants();
  tenants["alpha"] = Tenant("alpha", "tenant-a", "alpha-data", {{"allowedModels", {"gpt2"}}});
  TenantResolution r = ResolveTenants(Job(std::string(kAlpha) + kBeta), tenants);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.model.kind");
  EXPECT_EQ(r.problems[0].reason, "ModelNotAllowed");
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"mlp\""));
  EXPECT_EQ(r.namespaces.count("alpha"), 0u);

  tenants["alpha"] =
      Tenant("alpha", "tenant-a", "alpha-data", {{"allowedModels", {"gpt2", "mlp"}}});
  r = ResolveTenants(Job(std::string(kAlpha) + kBeta), tenants);
  EXPECT_THAT(r.problems, IsEmpty());
}

TEST(ResolveTenants, MaxRoundsPolicy) {
  std::map<std::string, json> tenants = BothTenants();
  tenants["beta"] = Tenant("beta", "lab", "beta-data", {{"maxRounds", 20}});
  TenantResolution r =
      ResolveTenants(Job(std::string(kAlpha) + kBeta, "  strategy: {rounds: 21}\n"), tenants);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.strategy.rounds");
  EXPECT_EQ(r.problems[0].reason, "TooManyRounds");
  EXPECT_THAT(r.problems[0].message, HasSubstr("20"));
  EXPECT_THAT(r.problems[0].message, HasSubstr("21"));
  EXPECT_EQ(r.namespaces.count("beta"), 0u);

  r = ResolveTenants(Job(std::string(kAlpha) + kBeta, "  strategy: {rounds: 20}\n"), tenants);
  EXPECT_THAT(r.problems, IsEmpty());
}

TEST(ResolveTenants, MaxEpsilonPolicyNeedsDifferentialPrivacyWithinTheBudget) {
  std::map<std::string, json> tenants = BothTenants();
  tenants["beta"] = Tenant("beta", "lab", "beta-data", {{"maxEpsilon", 4.0}});
  // No differential privacy at all.
  TenantResolution r = ResolveTenants(Job(std::string(kAlpha) + kBeta), tenants);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.privacy.differentialPrivacy");
  EXPECT_EQ(r.problems[0].reason, "PrivacyRequired");
  EXPECT_THAT(r.problems[0].message, HasSubstr("\"beta\""));
  EXPECT_EQ(r.namespaces.count("beta"), 0u);
  // A budget larger than the tenant grants.
  const auto with_budget = [](double eps) {
    return absl::StrCat("  privacy: {differentialPrivacy: {maxEpsilon: ", eps, "}}\n");
  };
  r = ResolveTenants(Job(std::string(kAlpha) + kBeta, with_budget(8)), tenants);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.privacy.differentialPrivacy.maxEpsilon");
  EXPECT_EQ(r.problems[0].reason, "PrivacyBudgetTooLarge");
  EXPECT_THAT(r.problems[0].message, HasSubstr("at most epsilon 4"));
  EXPECT_THAT(r.problems[0].message, HasSubstr("maxEpsilon 8"));
  // Within the budget (and exactly at it).
  for (double eps : {1.5, 4.0}) {
    r = ResolveTenants(Job(std::string(kAlpha) + kBeta, with_budget(eps)), tenants);
    EXPECT_THAT(r.problems, IsEmpty()) << eps;
  }
}

TEST(ResolveTenants, EveryTenantsProblemsAreReportedInOrder) {
  std::map<std::string, json> tenants = BothTenants();
  tenants.erase("alpha");
  tenants["beta"] = Tenant("beta", "lab", "other-data");
  const TenantResolution r = ResolveTenants(Job(std::string(kAlpha) + kBeta), tenants);
  ASSERT_THAT(r.problems, SizeIs(2));
  EXPECT_EQ(r.problems[0].reason, "TenantNotFound");
  EXPECT_EQ(r.problems[1].reason, "ClaimNotAllowed");
  EXPECT_TRUE(absl::StartsWith(r.problems[1].path, "spec.tenants[1]"));
  EXPECT_THAT(r.namespaces, IsEmpty());
}

// A site tenant (multi-site) is resolved by its site; the coordinator
// checks only that the Site admits it.
constexpr char kSiteTenant[] = "  - {name: st-mary, site: st-mary-london, dataset: notes}\n";

json Site(const std::string& name, bool revoked) {
  return {{"metadata", {{"name", name}}}, {"spec", {{"revoked", revoked}}}};
}

TEST(ResolveTenants, ASiteTenantNeedsOnlyAnUnrevokedSiteAtTheCoordinator) {
  const std::map<std::string, json> sites = {{"st-mary-london", Site("st-mary-london", false)}};
  // No Tenant "st-mary" exists in the coordinator cluster, and none is needed.
  const TenantResolution r = ResolveTenants(Job(std::string(kAlpha) + kSiteTenant),
                                            BothTenants(), &sites);
  EXPECT_THAT(r.problems, IsEmpty());
  EXPECT_EQ(r.namespaces, (std::map<std::string, std::string>{{"alpha", "tenant-a"}}))
      << "a site tenant's workers are placed by its site";
}

TEST(ResolveTenants, AMissingOrRevokedSiteIsRefusedAtTheSiteField) {
  const spec::JobSpec job = Job(std::string(kAlpha) + kSiteTenant);
  const std::map<std::string, json> none;
  TenantResolution r = ResolveTenants(job, BothTenants(), &none);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[1].site");
  EXPECT_EQ(r.problems[0].reason, "SiteNotFound");
  EXPECT_THAT(r.problems[0].message, HasSubstr("no Site \"st-mary-london\""));

  const std::map<std::string, json> revoked = {{"st-mary-london", Site("st-mary-london", true)}};
  r = ResolveTenants(job, BothTenants(), &revoked);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[1].site");
  EXPECT_EQ(r.problems[0].reason, "SiteRevoked");
  // A Tenant of the site's tenant's name in the coordinator cluster changes
  // nothing: the coordinator's objects never stand in for a site.
  std::map<std::string, json> tenants = BothTenants();
  tenants["st-mary"] = Tenant("st-mary", "lab", "alpha-data");
  r = ResolveTenants(job, tenants, &revoked);
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].reason, "SiteRevoked");
  EXPECT_EQ(r.namespaces.count("st-mary"), 0u);
}

TEST(ResolveTenants, ASiteRevokedOrDeletedAfterAdmissionLeavesTheJobWithoutFailingIt) {
  const spec::JobSpec job = Job(std::string(kAlpha) + kSiteTenant);
  const std::map<std::string, json> revoked = {{"st-mary-london", Site("st-mary-london", true)}};
  const std::map<std::string, json> none;
  for (const auto* sites : {&revoked, &none}) {
    const TenantResolution r = ResolveTenants(job, BothTenants(), sites, /*admitted=*/true);
    EXPECT_THAT(r.problems, SizeIs(0));
    ASSERT_THAT(r.departed, SizeIs(1));
    EXPECT_EQ(r.departed[0].path, "spec.tenants[1].site");
    EXPECT_EQ(r.departed[0].reason, sites == &revoked ? "SiteRevoked" : "SiteNotFound");
    EXPECT_THAT(r.departed[0].message, HasSubstr("goes on without tenant \"st-mary\""));
  }
}

TEST(ResolveTenants, AnOperatorThatIsNoCoordinatorRefusesSiteTenants) {
  const TenantResolution r =
      ResolveTenants(Job(std::string(kAlpha) + kSiteTenant), BothTenants());
  ASSERT_THAT(r.problems, SizeIs(1));
  EXPECT_EQ(r.problems[0].path, "spec.tenants[1].site");
  EXPECT_EQ(r.problems[0].reason, "SitesNeedCoordinator");
  EXPECT_THAT(r.problems[0].message, HasSubstr("--role coordinator"));
}

}  // namespace
}  // namespace braid::control
