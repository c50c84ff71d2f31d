// The audit trail a user gets from `braid run`: a log that `braid audit
// verify` accepts, with the job's creation, one round_completed per round,
// its end and the exported model's hash; and a tampered copy it rejects.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "braid/core/audit_log.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;


TEST(AuditTrail, BraidRunLeavesAVerifyingLogWithEveryRound) {
  const std::string dir = FreshDir("audit");
  const std::string work = dir + "/work";
  std::string out;
  ASSERT_EQ(RunBraid(dir, "run", {"run", SourcePath("examples/tabular.yaml"), "--workdir", work},
                     &out),
            0)
      << out;
  const json summary = json::parse(ReadFile(work + "/summary.json"));
  const std::string log = work + "/checkpoint/audit.jsonl";
  ASSERT_EQ(RunBraid(dir, "verify", {"audit", "verify", log}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("chain verified"));

  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(log);
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<int> rounds;
  std::vector<std::string> kinds;
  for (const audit::Entry& e : file->entries) {
    kinds.push_back(e.kind);
    EXPECT_EQ(e.job, "default/tabular-demo");
    if (e.kind == audit::kRoundCompleted) {
      // What the log says of a round is what the run reported.
      rounds.push_back(e.details["round"]);
      const json& r = summary["rounds"][rounds.size() - 1];
      EXPECT_EQ(e.details["round"], r["round"]);
      EXPECT_EQ(e.details["participants"], r["participants"]);
      EXPECT_EQ(e.details["tenants"], r["tenants"]);
      EXPECT_EQ(e.details["eval_loss"], r["eval_loss"]);
    }
  }
  EXPECT_EQ(rounds, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(kinds.front(), audit::kJobCreated);
  ASSERT_GE(kinds.size(), 3u);
  const audit::Entry& finished = file->entries[kinds.size() - 2];
  EXPECT_EQ(finished.kind, audit::kJobFinished);
  EXPECT_EQ(finished.details["phase"], "Succeeded");
  const audit::Entry& exported = file->entries.back();
  ASSERT_EQ(exported.kind, audit::kModelExported);
  absl::StatusOr<std::string> sha = audit::FileSha256Hex(work + "/model.safetensors");
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(exported.details["sha256"], *sha);

  // `braid audit show --json` prints the same entries.
  ASSERT_EQ(RunBraid(dir, "show", {"audit", "show", log, "--json"}, &out), 0) << out;
  EXPECT_EQ(json::parse(out)["entries"].size(), file->entries.size());

  // A copy with one round's participants changed is named at that line.
  std::ifstream in(log);
  std::stringstream tampered;
  int line = 0, altered_line = 0;
  for (std::string l; std::getline(in, l);) {
    ++line;
    json j = json::parse(l);
    if (altered_line == 0 && j["kind"] == audit::kRoundCompleted) {
      j["details"]["participants"] = 2;
      l = j.dump();
      altered_line = line;
    }
    tampered << l << "\n";
  }
  const std::string copy = dir + "/tampered.jsonl";
  WriteFile(copy, tampered.str());
  EXPECT_EQ(RunBraid(dir, "verify-tampered", {"audit", "verify", copy}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(copy + ":" + std::to_string(altered_line) +
                             ": hash mismatch (entry altered)"));
}

}  // namespace
}  // namespace braid::e2e
