// Finding 7 of "Hostile participants": the audit trail's tail could be cut
// unnoticed (a log cut after entry N is a valid chain of N entries). Its
// head is now anchored outside the log: the aggregator's state.json and
// GetStatus, `braid run`'s summary.json; `braid audit verify` compares the
// log with them, and a restarted aggregator records a log that no longer
// holds its anchor.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "braid/cli/subprocess.h"
#include "braid/core/audit_log.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;


std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// Writes `lines` minus the last `cut` to `path`.
void WriteCut(const std::string& path, std::vector<std::string> lines, size_t cut) {
  lines.resize(lines.size() - cut);
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  WriteFile(path, text);
}

TEST(HostileAudit, CuttingTheTailOfABraidRunLogFailsVerification) {
  const std::string dir = FreshDir("hostile-audit-run");
  const std::string job = WriteTabularJob(dir, "{name: fedavg, rounds: 2, minClients: 2, "
                                               "fractionFit: 1.0, roundTimeout: 2m}");
  const std::string work = dir + "/work";
  std::string out;
  ASSERT_EQ(RunBraid(dir, "run", {"run", job, "--workdir", work}, &out), 0) << out;

  // The summary anchors the whole log: braid run's own model_exported last.
  const std::string log = work + "/checkpoint/audit.jsonl";
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(log);
  ASSERT_TRUE(file.ok() && file->verification.ok);
  const audit::Entry& last = file->entries.back();
  ASSERT_EQ(last.kind, audit::kModelExported);
  const json summary = json::parse(ReadFile(work + "/summary.json"));
  ASSERT_TRUE(summary.contains("audit")) << summary.dump(2);
  EXPECT_EQ(summary["audit"]["entries"], last.seq);
  EXPECT_EQ(summary["audit"]["head"], last.hash);
  EXPECT_EQ(summary["audit"]["log"], log);
  // state.json holds the head after the aggregator's last append (its
  // job_finished: braid run appended after it stopped).
  const json state = json::parse(ReadFile(work + "/checkpoint/state.json"));
  const audit::Entry& finished = file->entries[file->entries.size() - 2];
  ASSERT_EQ(finished.kind, audit::kJobFinished);
  EXPECT_EQ(state.value("audit", json()), (json{{"entries", finished.seq}, {"head", finished.hash}}));

  // Untouched: passes, holding both anchors found beside it.
  ASSERT_EQ(RunBraid(dir, "verify", {"audit", "verify", log}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("holds the anchor of " + work + "/checkpoint/state.json"));
  EXPECT_THAT(out, HasSubstr("holds the anchor of " + work + "/summary.json"));
  EXPECT_THAT(out, Not(HasSubstr("no anchor")));

  const std::vector<std::string> lines = Lines(log);
  ASSERT_EQ(lines.size(), static_cast<size_t>(last.seq));
  const std::string entries = std::to_string(last.seq);
  const std::string head = last.hash;

  // The last line cut (the model's export): the summary's anchor says so.
  WriteCut(log, lines, 1);
  EXPECT_EQ(RunBraid(dir, "verify-cut1", {"audit", "verify", log}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("1 entry missing: the anchor says " + entries + " entries (head " +
                             head + "), the log has " + std::to_string(last.seq - 1) +
                             " (its tail was cut); anchor from " + work + "/summary.json"));

  // Three lines cut: both anchors say so, and so do the job status's
  // figures given by hand and the summary given explicitly (a copy of the
  // log elsewhere, the way an auditor receives it).
  WriteCut(log, lines, 3);
  EXPECT_EQ(RunBraid(dir, "verify-cut3", {"audit", "verify", log}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("3 entries missing"));
  EXPECT_THAT(out, HasSubstr("anchor from " + work + "/checkpoint/state.json"));
  const std::string copy = dir + "/copy.jsonl";
  WriteCut(copy, lines, 3);
  EXPECT_EQ(RunBraid(dir, "verify-copy", {"audit", "verify", copy}, &out), 0) << out;  // no anchor
  EXPECT_THAT(out, HasSubstr("no anchor found"));
  EXPECT_EQ(RunBraid(dir, "verify-expect",
                  {"audit", "verify", copy, "--expect-entries", entries, "--expect-head", head},
                  &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("3 entries missing: the anchor says " + entries));
  EXPECT_EQ(RunBraid(dir, "verify-summary",
                  {"audit", "verify", copy, "--summary", work + "/summary.json"}, &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("3 entries missing"));

  // Restored: passes again.
  WriteCut(log, lines, 0);
  EXPECT_EQ(RunBraid(dir, "verify-restored", {"audit", "verify", log}, &out), 0) << out;
}

// The aggregator anchors each append in state.json and reports it in
// GetStatus; restarted on a log cut while it was down, it says so in the
// chain and `braid audit verify` fails from then on.
TEST(HostileAudit, RestartedAggregatorRecordsALogCutWhileItWasDown) {
  const std::string dir = FreshDir("hostile-audit-restart");
  const std::string job = WriteTabularJob(dir, "{name: fedavg, rounds: 2, minClients: 3, "
                                               "fractionFit: 1.0, roundTimeout: 2m}");
  auto init = cli::RunForOutput({Binary("braid-worker"), "init", "--job", job, "--out",
                                dir + "/init.safetensors"},
                               dir + "/init.log", absl::Seconds(60));
  ASSERT_TRUE(init.ok()) << init.status();
  const std::string log = dir + "/checkpoint/audit.jsonl";

  // Three starts: job_started x3, each anchored.
  for (int start = 1; start <= 3; ++start) {
    auto agg = StartAggregator(job, dir, start == 1 ? dir + "/init.safetensors" : "", 0);
    ASSERT_TRUE(agg.ok()) << agg.status();
    auto s = WaitForStatus(agg->address(), absl::Seconds(30),
                           [&](const v1::JobStatus& st) { return st.audit().entries() >= start; });
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(log);
    ASSERT_TRUE(file.ok() && file->verification.ok);
    ASSERT_EQ(file->entries.size(), static_cast<size_t>(start));
    EXPECT_EQ(s->audit().entries(), start);
    EXPECT_EQ(s->audit().head(), file->entries.back().hash);
    agg->proc.Signal(SIGTERM);
    agg->proc.Wait(absl::Seconds(10));
  }
  const std::vector<std::string> lines = Lines(log);
  const std::string anchored_head = json::parse(lines.back())["hash"];

  // While it is down, the last two entries are cut.
  WriteCut(log, lines, 2);
  std::string out;
  EXPECT_EQ(RunBraid(dir, "verify-down", {"audit", "verify", log}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("2 entries missing: the anchor says 3 entries (head " +
                             anchored_head + "), the log has 1"));

  auto agg = StartAggregator(job, dir, "", 0);
  ASSERT_TRUE(agg.ok()) << agg.status();
  auto s = WaitForStatus(agg->address(), absl::Seconds(30),
                         [](const v1::JobStatus& st) { return st.audit().entries() >= 3; });
  ASSERT_TRUE(s.ok()) << s.status();
  agg->proc.Signal(SIGTERM);
  agg->proc.Wait(absl::Seconds(10));
  absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(log);
  ASSERT_TRUE(file.ok() && file->verification.ok) << file->verification.ToString(log);
  ASSERT_EQ(file->entries.size(), 3u);
  EXPECT_EQ(file->entries[1].kind, audit::kAnchorMismatch);
  EXPECT_EQ(file->entries[1].details["anchor_entries"], 3);
  EXPECT_EQ(file->entries[1].details["anchor_head"], anchored_head);
  EXPECT_EQ(file->entries[2].kind, audit::kJobStarted);
  EXPECT_THAT(ReadFile(dir + "/aggregator.log"), HasSubstr("does not match the anchor"));
  // The chain is whole again, but the cut stays on record.
  EXPECT_EQ(RunBraid(dir, "verify-after", {"audit", "verify", log}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(log + ":2: the aggregator found this log cut or rewritten"));
}

}  // namespace
}  // namespace braid::e2e
