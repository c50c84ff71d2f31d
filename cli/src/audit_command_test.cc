// `braid audit verify` against the anchors of a log's head.
#include "braid/cli/audit_command.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "braid/core/audit_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

// A `braid run` workdir: <root>/checkpoint/{audit.jsonl,state.json}, and
// <root>/summary.json.
class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("braid-audit-verify-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "checkpoint");
    log_ = (root_ / "checkpoint" / audit::kFileName).string();
  }
  void TearDown() override { fs::remove_all(root_); }

  // Appends `n` entries and returns the head after them.
  audit::Anchor Append(int n, const std::string& kind = audit::kRoundCompleted) {
    auto log = audit::AuditLog::Open(log_);
    EXPECT_TRUE(log.ok());
    audit::Anchor head;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<audit::Entry> e = (*log)->Append(kind, "aggregator", "default/demo",
                                                      json{{"round", i}});
      EXPECT_TRUE(e.ok());
      head = {e->seq, e->hash};
    }
    return head;
  }
  void WriteState(const audit::Anchor& a) {
    std::ofstream(root_ / "checkpoint" / "state.json")
        << json{{"job", "demo"}, {"phase", "Succeeded"}, {"audit", a.ToJson()}}.dump();
  }
  void WriteSummary(const audit::Anchor& a, const std::string& log) {
    json audit = a.ToJson();
    audit["log"] = log;
    std::ofstream(root_ / "summary.json") << json{{"job", "demo"}, {"audit", audit}}.dump();
  }
  void CutLastLines(int n) {
    std::vector<std::string> lines;
    {
      std::ifstream in(log_);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
    }
    lines.resize(lines.size() - n);
    std::ofstream out(log_, std::ios::trunc);
    for (const std::string& l : lines) out << l << "\n";
  }
  int Verify(const AuditVerifyOptions& options = {}) {
    out_.str("");
    err_.str("");
    return AuditVerify(log_, options, out_, err_);
  }

  fs::path root_;
  std::string log_;
  std::ostringstream out_, err_;
};

TEST_F(AuditVerifyTest, FindsTheAnchorInStateJsonBesideTheLog) {
  const audit::Anchor head = Append(5);
  WriteState(head);
  EXPECT_EQ(Verify(), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("ok, 5 entries, chain verified; holds the anchor of"));
  EXPECT_THAT(out_.str(), HasSubstr("state.json"));

  CutLastLines(1);
  EXPECT_EQ(Verify(), 1);
  EXPECT_THAT(err_.str(), HasSubstr("1 entry missing: the anchor says 5 entries (head " +
                                    head.head + "), the log has 4 (its tail was cut)"));
  EXPECT_THAT(err_.str(), HasSubstr("anchor from " + (root_ / "checkpoint" / "state.json").string()));
}

TEST_F(AuditVerifyTest, AcceptsEntriesAppendedAfterTheAnchor) {
  WriteState(Append(3));
  Append(2, audit::kModelExported);  // e.g. braid run's, after the aggregator stopped
  EXPECT_EQ(Verify(), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("2 after it"));
}

TEST_F(AuditVerifyTest, ExpectFlagsAndSummary) {
  const audit::Anchor head = Append(6);
  CutLastLines(3);
  AuditVerifyOptions expect;
  expect.expect_entries = head.entries;
  expect.expect_head = head.head;
  EXPECT_EQ(Verify(expect), 1);
  EXPECT_THAT(err_.str(), HasSubstr("3 entries missing: the anchor says 6 entries"));
  EXPECT_THAT(err_.str(), HasSubstr("anchor from --expect-entries/--expect-head"));

  WriteSummary(head, "/elsewhere/audit.jsonl");  // --summary is taken whatever log it names
  AuditVerifyOptions summary;
  summary.summary = (root_ / "summary.json").string();
  EXPECT_EQ(Verify(summary), 1);
  EXPECT_THAT(err_.str(), HasSubstr("3 entries missing"));

  AuditVerifyOptions half;
  half.expect_entries = 3;
  EXPECT_EQ(Verify(half), 2);
  EXPECT_THAT(err_.str(), HasSubstr("go together"));
  half.expect_head = "nothex";
  EXPECT_EQ(Verify(half), 2);
  EXPECT_THAT(err_.str(), HasSubstr("64 lowercase hex"));
}

TEST_F(AuditVerifyTest, FindsTheRunSummaryOnlyWhenItNamesThisLog) {
  const audit::Anchor head = Append(4);
  CutLastLines(1);
  WriteSummary(head, "/some/other/run/audit.jsonl");  // an earlier run's: not this log's anchor
  EXPECT_EQ(Verify(), 0);
  EXPECT_THAT(err_.str(), HasSubstr("no anchor found"));
  WriteSummary(head, log_);
  EXPECT_EQ(Verify(), 1);
  EXPECT_THAT(err_.str(), HasSubstr("1 entry missing"));
  EXPECT_THAT(err_.str(), HasSubstr("summary.json"));
}

TEST_F(AuditVerifyTest, AnAnchorMismatchEntryFailsVerification) {
  Append(2);
  auto log = audit::AuditLog::Open(log_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(audit::kAnchorMismatch, "aggregator", "default/demo",
                             json{{"problem", "2 entries missing"}})
                  .ok());
  EXPECT_EQ(Verify(), 1);
  EXPECT_THAT(err_.str(), HasSubstr(":3: the aggregator found this log cut or rewritten"));
}

TEST_F(AuditVerifyTest, NoAnchorWarnsAndChecksTheChain) {
  Append(3);
  EXPECT_EQ(Verify(), 0);
  EXPECT_THAT(out_.str(), HasSubstr("ok, 3 entries, chain verified"));
  EXPECT_THAT(err_.str(), HasSubstr("entries cut from its end cannot be detected"));
}

}  // namespace
}  // namespace braid::cli
