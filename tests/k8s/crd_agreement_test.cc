// The FederatedJob CRD's schema (crds/) and core/spec (what `braid run`,
// the aggregator, the workers and the operator parse) must agree: a job that
// `kubectl apply` admits is one every component accepts, and the other way
// round. Every file of core/testdata/spec is sent to the real API server as a
// server-side dry run (strict field validation, as kubectl does by default)
// and parsed by core/spec; their verdicts must match.
//
// Some corpus files are about the file's YAML text, not the object: kubectl
// turns the text into JSON before the API server sees it. They are listed in
// kNotAnObject with the reason, and core must still refuse them.
//
// Multi-site: the names a job gives sites and datasets must be names the
// Site and Tenant (spec.datasets) CRDs admit, and the other way round; the
// Site, FederatedInvitation and Tenant datasets schemas refuse what the
// site's operator could not use.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "braid/core/spec.h"
#include "tests/e2e/harness.h"
#include "tests/k8s/k8s_harness.h"

namespace braid::k8s {
namespace {

namespace fs = std::filesystem;

// Corpus files whose problem the API server cannot see the way core does.
const std::map<std::string, std::string> kNotAnObject = {
    {"two_documents.yaml", "a job file holds one document; kubectl applies each document"},
    {"duplicate_field.yaml",
     "kubectl's YAML reader keeps the last of two equal keys and sends JSON; core refuses the "
     "ambiguity in the file"},
    {"merge_key.yaml",
     "kubectl expands YAML merge keys (<<) before sending; core refuses them in the file"},
    {"kubectl_output.yaml",
     "carries server-written metadata (uid, resourceVersion), which core ignores and the API "
     "server refuses on create by design"},
};

// Corpus files the schema admits although core refuses them, because the
// check costs more than the API server allows a CEL rule; the operator (which
// parses every job with core/spec) refuses them with a condition. Asserted
// both ways, so that the day the schema can check it this list shrinks.
const std::map<std::string, std::string> kOperatorChecks = {
    {"site_duplicate.yaml",
     "a site named by two tenants: comparing up to 1000 tenants pairwise exceeds the CEL "
     "cost budget"},
};

struct Verdict {
  bool accepted = false;
  std::string detail;
};

Verdict Core(const std::string& file) {
  spec::ParseOptions options;
  options.check_files = false;  // the operator's view: data lives in claims
  const std::string text = e2e::ReadFile(file);
  std::vector<spec::FieldError> errors =
      spec::ValidateJobYaml(text, fs::path(file).parent_path().string(), options);
  Verdict v{errors.empty(), ""};
  for (const spec::FieldError& e : errors) v.detail += e.ToString() + "\n";
  return v;
}

Verdict ApiServer(const std::string& file) {
  CommandResult r = Kubectl({"create", "--dry-run=server", "--validate=strict", "-o", "name",
                             "-f", file});
  return {r.code == 0, r.out + r.err};
}

class CrdAgreementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    InstallCrds();
    // InstallCrds waits for the jobs' and tenants' CRDs; these tests use
    // the multi-site ones too.
    CommandResult r = Kubectl({"wait", "--for=condition=Established", "--timeout=60s",
                               "crd/sites.braid.dev", "crd/federatedinvitations.braid.dev"});
    ASSERT_EQ(r.code, 0) << r.err;
    // Namespaces the corpus names, so that only the schema decides; and no
    // Site left by the multisite tests (same cluster) under a name the
    // dry-run creates would then collide with.
    for (const char* ns : {"research"}) CreateNamespace(ns);
    r = Kubectl({"delete", "sites", "--all"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
};

TEST_F(CrdAgreementTest, SchemaAndCoreSpecAcceptAndRejectTheSameCorpus) {
  int compared = 0;
  for (const char* kind : {"good", "bad"}) {
    const fs::path dir = e2e::SourcePath(std::string("core/testdata/spec/") + kind);
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (entry.path().extension() != ".yaml") continue;
      const Verdict core = Core(entry.path().string());
      if (kNotAnObject.count(name) > 0) {
        EXPECT_EQ(core.accepted, std::string(kind) == "good") << name;
        continue;
      }
      const Verdict api = ApiServer(entry.path().string());
      if (kOperatorChecks.count(name) > 0) {
        EXPECT_FALSE(core.accepted) << name;
        EXPECT_TRUE(api.accepted) << name << " (" << kOperatorChecks.at(name)
                                  << "): the schema refuses it now; move it out of "
                                     "kOperatorChecks\n"
                                  << api.detail;
        continue;
      }
      ++compared;
      EXPECT_EQ(core.accepted, api.accepted)
          << kind << "/" << name << ": core/spec " << (core.accepted ? "accepts" : "refuses")
          << ", the API server " << (api.accepted ? "admits" : "refuses") << "\ncore/spec:\n"
          << core.detail << "API server:\n"
          << api.detail;
    }
  }
  EXPECT_GE(compared, 60) << "the corpus shrank";
}

// kubectl create --dry-run=server of `yaml`: whether the API server admits it.
Verdict DryRun(const std::string& yaml) {
  static int n = 0;
  const std::string file =
      (fs::path(::testing::TempDir()) / absl::StrCat("crd-agreement-", ::getpid(), "-", n++, ".yaml"))
          .string();
  { std::ofstream(file) << yaml; }
  return ApiServer(file);
}

// A job whose one tenant names `site` and `dataset`, as core/spec reads it
// at the coordinator.
bool CoreAcceptsSiteTenant(const std::string& site, const std::string& dataset) {
  spec::ParseOptions options;
  options.check_files = false;
  return spec::ValidateJobYaml(absl::StrCat("apiVersion: braid.dev/v1alpha1\n"
                                            "kind: FederatedJob\n"
                                            "metadata: {name: j}\n"
                                            "spec:\n"
                                            "  data: {features: [x0]}\n"
                                            "  tenants:\n"
                                            "  - {name: t, site: '", site, "', dataset: '",
                                            dataset, "'}\n"),
                               "", options)
      .empty();
}

std::string TenantYaml(const std::string& name, const std::string& datasets) {
  return absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: Tenant\nmetadata: {name: ", name,
                      "}\nspec:\n  namespace: tenant-", name, "\n  datasets:\n", datasets);
}

std::string SiteYaml(const std::string& name, const std::string& spec) {
  return absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: Site\nmetadata: {name: '", name,
                      "'}\nspec: ", spec, "\n");
}

// A valid FederatedInvitation in namespace `ns`, its spec fields replaced
// (or added) by `overrides` (field -> YAML value).
std::string InvitationYaml(const std::string& ns, const std::string& name,
                           const std::map<std::string, std::string>& overrides = {}) {
  std::map<std::string, std::string> spec = {
      {"jobUid", "6f1c2a9e-0d4b-4a57-9a51-5b1f0c8e2d11"},
      {"coordinator", "research-network"},
      {"job", "{namespace: consortium, name: notes-lora}"},
      {"tenant", "st-mary"},
      {"dataset", "notes.v2"},
      {"model", "{kind: llama, base: models/smollm2-135m}"},
      {"rounds", "12"},
      {"privacy", "{enabled: true, maxEpsilon: 8, delta: 1.0e-6, secureAggregation: true}"},
      {"workerImage", "registry.example/braid-worker@sha256:0123"},
      {"aggregatorAddress", "agg.research.example:443"},
  };
  for (const auto& [field, value] : overrides) spec[field] = value;
  std::string yaml = absl::StrCat("apiVersion: braid.dev/v1alpha1\nkind: FederatedInvitation\n",
                                  "metadata: {name: ", name, ", namespace: ", ns, "}\nspec:\n");
  for (const auto& [field, value] : spec) absl::StrAppend(&yaml, "  ", field, ": ", value, "\n");
  return yaml;
}

TEST_F(CrdAgreementTest, SiteAndDatasetNamesAreOnesTheSiteAndTenantCrdsAdmit) {
  // Site names (a Site's metadata.name) and dataset names (a Tenant's
  // spec.datasets[].name), valid and not: core/spec's verdict on a job naming
  // them equals the API server's on the objects that define them.
  const std::string label63(63, 's');
  const std::string subdomain253 =
      absl::StrCat(std::string(63, 'd'), ".", std::string(63, 'd'), ".", std::string(63, 'd'),
                   ".", std::string(61, 'd'));
  ASSERT_EQ(subdomain253.size(), 253u);
  int i = 0;
  for (const std::string& site :
       {std::string("st-mary"), std::string("a"), label63, std::string("St-Mary"),
        std::string("st.mary"), std::string("-a"), label63 + "s", std::string("st_mary")}) {
    const bool core = CoreAcceptsSiteTenant(site, "notes");
    const Verdict api = DryRun(SiteYaml(site, "{}"));
    EXPECT_EQ(core, api.accepted) << "site '" << site << "': core/spec "
                                  << (core ? "accepts" : "refuses") << ", the Site CRD "
                                  << (api.accepted ? "admits" : "refuses") << "\n"
                                  << api.detail;
  }
  for (const std::string& dataset :
       {std::string("notes"), std::string("notes.v2"), std::string("2024"), subdomain253,
        std::string("Notes"), std::string("../notes"), std::string("notes_v2"),
        std::string("-notes"), std::string("notes."), subdomain253 + "d"}) {
    const bool core = CoreAcceptsSiteTenant("st-mary", dataset);
    const Verdict api = DryRun(TenantYaml(
        absl::StrCat("ds-", i++),
        absl::StrCat("  - {name: '", dataset, "', claimName: data, subPath: notes.csv}\n")));
    EXPECT_EQ(core, api.accepted) << "dataset '" << dataset.substr(0, 70) << "': core/spec "
                                  << (core ? "accepts" : "refuses") << ", the Tenant CRD "
                                  << (api.accepted ? "admits" : "refuses") << "\n"
                                  << api.detail;
  }
}

TEST_F(CrdAgreementTest, TenantDatasetsMapANameToAClaimAndASafeFile) {
  const Verdict good = DryRun(TenantYaml(
      "st-mary", "  - {name: notes, claimName: records, subPath: notes/train.csv, "
                 "description: discharge notes}\n"
                 "  - {name: notes.v2, claimName: records, subPath: v2.jsonl}\n"));
  EXPECT_TRUE(good.accepted) << good.detail;
  // What the site's operator could not mount safely, or could not tell apart.
  const std::map<std::string, std::string> bad = {
      {"a file outside the claim", "  - {name: n, claimName: c, subPath: ../etc/passwd}\n"},
      {"an absolute path", "  - {name: n, claimName: c, subPath: /etc/passwd}\n"},
      {"a '..' inside", "  - {name: n, claimName: c, subPath: a/../../b}\n"},
      {"no file", "  - {name: n, claimName: c}\n"},
      {"an empty file", "  - {name: n, claimName: c, subPath: ''}\n"},
      {"no claim", "  - {name: n, subPath: a.csv}\n"},
      {"a claim that is no object name", "  - {name: n, claimName: My_Claim, subPath: a.csv}\n"},
      {"a name twice",
       "  - {name: n, claimName: c, subPath: a.csv}\n  - {name: n, claimName: d, subPath: b.csv}\n"},
      {"an unknown field", "  - {name: n, claimName: c, subPath: a.csv, path: /data}\n"},
  };
  int i = 0;
  for (const auto& [why, datasets] : bad) {
    const Verdict v = DryRun(TenantYaml(absl::StrCat("bad-", i++), datasets));
    EXPECT_FALSE(v.accepted) << "the Tenant CRD admits a dataset with " << why;
  }
}

TEST_F(CrdAgreementTest, ARevokedSiteStaysRevoked) {
  Kubectl({"delete", "site", "crd-agreement-site", "--ignore-not-found", "--wait=true"});
  CommandResult r = Apply(SiteYaml("crd-agreement-site", "{description: Test hospital}"));
  ASSERT_EQ(r.code, 0) << r.err;
  r = Kubectl({"patch", "site", "crd-agreement-site", "--type=merge", "-p",
               R"({"spec":{"revoked":true}})"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* patch : {R"({"spec":{"revoked":false}})", R"({"spec":{"revoked":null}})"}) {
    r = Kubectl({"patch", "site", "crd-agreement-site", "--type=merge", "-p", patch});
    EXPECT_NE(r.code, 0) << "un-revoking with " << patch << " was admitted";
    EXPECT_NE(r.err.find("stays revoked"), std::string::npos) << r.err;
  }
  std::optional<nlohmann::json> site = GetJson({"site", "crd-agreement-site"});
  ASSERT_TRUE(site.has_value());
  EXPECT_EQ((*site)["spec"].value("revoked", false), true);
  // Status (the operator's): phases outside the list are refused.
  r = Kubectl({"patch", "site", "crd-agreement-site", "--subresource=status", "--type=merge",
               "-p", R"({"status":{"phase":"Online"}})"});
  EXPECT_NE(r.code, 0) << "phase Online admitted";
  r = Kubectl({"patch", "site", "crd-agreement-site", "--subresource=status", "--type=merge",
               "-p", R"({"status":{"phase":"Revoked","enrollmentSecret":"site-token-x"}})"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(DryRun(SiteYaml("x", absl::StrCat("{description: '", std::string(1025, 'x'),
                                                 "'}")))
                   .accepted);
  Kubectl({"delete", "site", "crd-agreement-site", "--ignore-not-found"});
}

TEST_F(CrdAgreementTest, AnInvitationShowsWhatTheJobAsksForAndRefusesNonsense) {
  const std::string ns = "crd-agreement-site";
  CreateNamespace(ns);
  Kubectl({"delete", "fedinv", "notes-lora", "-n", ns, "--ignore-not-found", "--wait=true"});
  CommandResult r = Apply(InvitationYaml(ns, "notes-lora"));
  ASSERT_EQ(r.code, 0) << r.err;
  // A site admin's view: the job, model, rounds, budget and phase in columns.
  r = Kubectl({"get", "fedinv", "-n", ns});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* column : {"JOB", "MODEL", "ROUNDS", "EPSILON", "PHASE"}) {
    EXPECT_NE(r.out.find(column), std::string::npos) << column << " missing:\n" << r.out;
  }
  for (const char* value : {"notes-lora", "llama", "12", "8"}) {
    EXPECT_NE(r.out.find(value), std::string::npos) << value << " missing:\n" << r.out;
  }
  // The uid is the invitation's identity.
  r = Kubectl({"patch", "fedinv", "notes-lora", "-n", ns, "--type=merge", "-p",
               R"({"spec":{"jobUid":"another"}})"});
  EXPECT_NE(r.code, 0) << "jobUid changed";
  r = Kubectl({"patch", "fedinv", "notes-lora", "-n", ns, "--subresource=status", "--type=merge",
               "-p", R"({"status":{"phase":"AwaitingApproval","workersReady":0}})"});
  EXPECT_EQ(r.code, 0) << r.err;

  const std::map<std::string, std::pair<std::string, std::string>> bad = {
      {"an unknown model", {"model", "{kind: bert}"}},
      {"zero rounds", {"rounds", "0"}},
      {"a zero privacy budget", {"privacy", "{enabled: true, maxEpsilon: 0}"}},
      {"a dataset path", {"dataset", "../notes"}},
      {"a tenant that is no label", {"tenant", "St_Mary"}},
      {"no job uid", {"jobUid", "''"}},
      {"an unknown field", {"claimName", "records"}},
  };
  int i = 0;
  for (const auto& [why, field] : bad) {
    const Verdict v =
        DryRun(InvitationYaml(ns, absl::StrCat("bad-", i++), {{field.first, field.second}}));
    EXPECT_FALSE(v.accepted) << "the FederatedInvitation CRD admits " << why;
  }
  EXPECT_TRUE(DryRun(InvitationYaml(ns, "also-good")).accepted);
  Kubectl({"delete", "fedinv", "notes-lora", "-n", ns, "--ignore-not-found"});
}

}  // namespace
}  // namespace braid::k8s
