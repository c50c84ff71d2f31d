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
#include <filesystem>
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
    // Namespaces the corpus names, so that only the schema decides.
    for (const char* ns : {"research"}) CreateNamespace(ns);
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

}  // namespace
}  // namespace braid::k8s
