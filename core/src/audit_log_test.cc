#include "braid/core/audit_log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::audit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using nlohmann::json;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("braid-audit-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    path_ = (dir_ / "audit.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A log of `n` entries as the aggregator writes them.
  void WriteLog(int n) {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_TRUE((*log)->Append(kJobStarted, "aggregator", "default/demo", json::object()).ok());
    for (int r = 1; r < n; ++r) {
      ASSERT_TRUE((*log)
                      ->Append(kRoundCompleted, "aggregator", "default/demo",
                               json{{"round", r}, {"participants", 3}, {"train_loss", 0.5 / r},
                                    {"tenants", {"a", "b", "c"}}})
                      .ok());
    }
  }
  std::vector<std::string> Lines() {
    std::ifstream in(path_);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  void Rewrite(const std::vector<std::string>& lines, bool final_newline = true) {
    std::ofstream out(path_, std::ios::trunc);
    for (size_t i = 0; i < lines.size(); ++i) {
      out << lines[i];
      if (i + 1 < lines.size() || final_newline) out << "\n";
    }
  }
  Verification Verify() {
    absl::StatusOr<AuditFile> f = ReadAuditLog(path_);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? f->verification : Verification{};
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(AuditLogTest, AppendedLogVerifiesAndChains) {
  WriteLog(5);
  absl::StatusOr<AuditFile> f = ReadAuditLog(path_);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->verification.ok) << f->verification.ToString(path_);
  ASSERT_EQ(f->entries.size(), 5u);
  EXPECT_EQ(f->entries[0].prev_hash, std::string(64, '0'));
  for (size_t i = 0; i < f->entries.size(); ++i) {
    EXPECT_EQ(f->entries[i].seq, static_cast<int64_t>(i) + 1);
    if (i > 0) EXPECT_EQ(f->entries[i].prev_hash, f->entries[i - 1].hash);
  }
  EXPECT_EQ(f->entries[2].details["round"], 2);
  EXPECT_THAT(f->verification.ToString(path_), HasSubstr("ok, 5 entries"));
}

TEST_F(AuditLogTest, HashIsSha256OfTheCanonicalFormWithoutHash) {
  WriteLog(2);
  const json j = json::parse(Lines()[1]);
  json without = j;
  without.erase("hash");
  // Known SHA-256 vector, then the entry's own.
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(j["hash"], Sha256Hex(without.dump()));
}

TEST_F(AuditLogTest, ReopenedLogContinuesTheChain) {
  WriteLog(3);
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok());
    absl::StatusOr<Entry> e = (*log)->Append(kJobFinished, "aggregator", "default/demo",
                                             json{{"phase", "Succeeded"}});
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->seq, 4);
  }
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify().entries, 4);
}

TEST_F(AuditLogTest, AlteredFieldIsAHashMismatch) {
  WriteLog(5);
  std::vector<std::string> lines = Lines();
  json j = json::parse(lines[2]);
  j["details"]["participants"] = 2;
  lines[2] = j.dump();
  Rewrite(lines);
  const Verification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.ToString("audit.jsonl"), "audit.jsonl:3: hash mismatch (entry altered)");
  EXPECT_EQ(v.entries, 2);
}

TEST_F(AuditLogTest, AlteredEntryWithRecomputedHashBreaksTheNextLink) {
  WriteLog(5);
  std::vector<std::string> lines = Lines();
  Entry e;
  json j = json::parse(lines[2]);
  e.seq = j["seq"];
  e.time = j["time"];
  e.kind = j["kind"];
  e.actor = j["actor"];
  e.job = j["job"];
  e.details = j["details"];
  e.details["participants"] = 1;
  e.prev_hash = j["prev_hash"];
  e.hash = EntryHash(e);
  lines[2] = e.ToJson().dump();
  Rewrite(lines);
  EXPECT_EQ(Verify().ToString("audit.jsonl"), "audit.jsonl:4: prev_hash does not match entry 3");
}

TEST_F(AuditLogTest, DeletedLineIsASeqGap) {
  WriteLog(5);
  std::vector<std::string> lines = Lines();
  lines.erase(lines.begin() + 1);
  Rewrite(lines);
  const Verification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.line, 2);
  EXPECT_THAT(v.problem, HasSubstr("seq gap (expected 2, found 3"));
}

TEST_F(AuditLogTest, DeletedFirstLineIsNamed) {
  WriteLog(3);
  std::vector<std::string> lines = Lines();
  lines.erase(lines.begin());
  Rewrite(lines);
  const Verification v = Verify();
  EXPECT_EQ(v.line, 1);
  EXPECT_THAT(v.problem, HasSubstr("seq gap (expected 1, found 2"));
}

TEST_F(AuditLogTest, ReorderedLinesAreNamed) {
  WriteLog(5);
  std::vector<std::string> lines = Lines();
  std::swap(lines[3], lines[4]);
  Rewrite(lines);
  const Verification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.line, 4);
  EXPECT_THAT(v.problem, HasSubstr("expected 4, found 5"));
}

TEST_F(AuditLogTest, TruncatedTailIsReported) {
  WriteLog(4);
  std::vector<std::string> lines = Lines();
  lines.back() = lines.back().substr(0, lines.back().size() / 2);
  Rewrite(lines, /*final_newline=*/false);
  const Verification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.line, 4);
  EXPECT_THAT(v.problem, HasSubstr("torn last line"));
  EXPECT_EQ(v.entries, 3);
}

TEST_F(AuditLogTest, CompleteLineWithoutNewlineIsReported) {
  // The writer's fsync covers the newline: a file without one is not as the
  // writer left it, whatever its last line holds.
  WriteLog(2);
  Rewrite(Lines(), /*final_newline=*/false);
  const Verification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.line, 2);
  EXPECT_THAT(v.problem, HasSubstr("last entry without its newline"));
  EXPECT_EQ(v.entries, 2);  // whole and chained: an anchor naming it still holds
}

TEST_F(AuditLogTest, AppendedGarbageIsReported) {
  WriteLog(3);
  std::ofstream(path_, std::ios::app) << "rm -rf the evidence\n";
  EXPECT_EQ(Verify().ToString("f"), "f:4: not a JSON object (garbage in the log)");
}

TEST_F(AuditLogTest, AppendedForeignJsonIsReported) {
  WriteLog(3);
  std::ofstream(path_, std::ios::app) << R"({"seq": 4, "kind": "round_completed"})" << "\n";
  EXPECT_THAT(Verify().problem, HasSubstr("missing or mistyped field 'time'"));
}

TEST_F(AuditLogTest, AppendAfterATornLineRecordsTheRecovery) {
  WriteLog(3);
  std::ofstream(path_, std::ios::app) << R"({"seq":4,"kind":"round_comp)";
  {
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok());
    absl::StatusOr<Entry> e =
        (*log)->Append(kJobFinished, "aggregator", "default/demo", json{{"phase", "Failed"}});
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->seq, 5);
  }
  absl::StatusOr<AuditFile> f = ReadAuditLog(path_);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->verification.ok) << f->verification.ToString(path_);
  ASSERT_EQ(f->entries.size(), 5u);
  EXPECT_EQ(f->entries[3].kind, kLogRecovered);
  EXPECT_EQ(f->entries[3].details["dropped_bytes"], 27);
  EXPECT_EQ(f->entries[4].kind, kJobFinished);
}

TEST_F(AuditLogTest, AppendAfterATornLineKeepsEveryCompleteEntry) {
  WriteLog(4);
  const std::vector<std::string> before = Lines();
  // The torn write: the first half of what would have been entry 5.
  std::ofstream(path_, std::ios::app) << before.back().substr(0, before.back().size() / 2);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(kJobFinished, "aggregator", "default/demo", json::object()).ok());
  const std::vector<std::string> after = Lines();
  ASSERT_EQ(after.size(), 6u);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i]) << "line " << i + 1;
  const json recovered = json::parse(after[4]);
  EXPECT_EQ(recovered["kind"], kLogRecovered);
  EXPECT_EQ(recovered["details"]["dropped_text"],
            before.back().substr(0, before.back().size() / 2));
  EXPECT_TRUE(Verify().ok);
}

TEST_F(AuditLogTest, AppendKeepsAWholeEntryThatLostItsNewline) {
  // A crash between the entry and its newline, or an editor that strips the
  // final newline: the next append must not cut a whole entry away.
  WriteLog(4);
  const std::vector<std::string> before = Lines();
  Rewrite(before, /*final_newline=*/false);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  absl::StatusOr<Entry> e = (*log)->Append(kJobFinished, "aggregator", "default/demo", json::object());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->seq, 5);
  const std::vector<std::string> after = Lines();
  ASSERT_EQ(after.size(), 5u);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i]) << "line " << i + 1;
  EXPECT_EQ(json::parse(after[4])["kind"], kJobFinished);
  EXPECT_TRUE(Verify().ok) << Verify().ToString(path_);
}

TEST_F(AuditLogTest, AppendRefusesUnterminatedTextThatNoCrashLeaves) {
  // Neither the next entry nor a prefix of one: cutting it could hide an
  // edited entry, so the append stops and the file is left as it is.
  for (const std::string& tail :
       {std::string("garbage"), std::string(R"({"seq": 4, "kind": "round_completed"})"),
        std::string(R"({"a": 1} trailing)")}) {
    fs::remove_all(dir_);
    WriteLog(3);
    std::ofstream(path_, std::ios::app) << tail;
    const std::vector<std::string> before = Lines();
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok());
    absl::StatusOr<Entry> e = (*log)->Append(kJobFinished, "x", "default/demo", json::object());
    EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss) << tail;
    EXPECT_THAT(e.status().message(), HasSubstr("no newline"));
    EXPECT_EQ(Lines(), before) << tail;
  }
}

TEST_F(AuditLogTest, AppendRefusesAWholeEntryThatDoesNotChain) {
  WriteLog(4);
  std::vector<std::string> lines = Lines();
  json j = json::parse(lines.back());
  j["details"]["participants"] = 1;  // the hash no longer matches
  lines.back() = j.dump();
  Rewrite(lines, /*final_newline=*/false);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->Append(kJobFinished, "x", "default/demo", json::object()).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(Lines(), lines);
}

TEST_F(AuditLogTest, OnAppendSeesEachEntryInOrder) {
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  std::vector<Anchor> seen;
  (*log)->OnAppend([&](const Entry& e) { seen.push_back({e.seq, e.hash}); });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*log)->Append(kJobStarted, "aggregator", "default/demo", json::object()).ok());
  }
  absl::StatusOr<AuditFile> f = ReadAuditLog(path_);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(seen[i], (Anchor{f->entries[i].seq, f->entries[i].hash}));
}

// The anchor of the log as it is now.
Anchor HeadOf(const std::string& path) {
  absl::StatusOr<AuditFile> f = ReadAuditLog(path);
  EXPECT_TRUE(f.ok() && f->verification.ok);
  if (!f.ok() || f->entries.empty()) return {};
  return {f->entries.back().seq, f->entries.back().hash};
}

AnchorCheck Check(const std::string& path, const Anchor& anchor) {
  absl::StatusOr<AuditFile> f = ReadAuditLog(path);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? CheckAnchor(*f, anchor) : AnchorCheck{};
}

TEST_F(AuditLogTest, AnchorCatchesTheLastEntryCut) {
  WriteLog(5);
  const Anchor anchor = HeadOf(path_);
  EXPECT_TRUE(Check(path_, anchor).ok);
  std::vector<std::string> lines = Lines();
  lines.pop_back();
  Rewrite(lines);
  EXPECT_TRUE(Verify().ok);  // the chain alone cannot tell
  const AnchorCheck c = Check(path_, anchor);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.missing, 1);
  EXPECT_THAT(c.problem, HasSubstr("1 entry missing: the anchor says 5 entries (head " +
                                   anchor.head + "), the log has 4 (its tail was cut)"));
}

TEST_F(AuditLogTest, AnchorCatchesSeveralEntriesCut) {
  WriteLog(6);
  const Anchor anchor = HeadOf(path_);
  std::vector<std::string> lines = Lines();
  lines.resize(2);
  Rewrite(lines);
  const AnchorCheck c = Check(path_, anchor);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.missing, 4);
  EXPECT_THAT(c.problem, HasSubstr("4 entries missing: the anchor says 6 entries"));
  // All of it gone: the file is empty.
  Rewrite({}, false);
  EXPECT_EQ(Check(path_, anchor).missing, 6);
}

TEST_F(AuditLogTest, AnchorCatchesACutTailThatWasWrittenOver) {
  // Cut two entries, then let appends continue the chain: the count is back
  // to the anchor's, the hash is not.
  WriteLog(5);
  const Anchor anchor = HeadOf(path_);
  std::vector<std::string> lines = Lines();
  lines.resize(3);
  Rewrite(lines);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*log)->Append(kJobStarted, "aggregator", "default/demo", json::object()).ok());
  }
  const AnchorCheck c = Check(path_, anchor);
  EXPECT_FALSE(c.ok);
  EXPECT_THAT(c.problem, HasSubstr("entry 5 has hash"));
  EXPECT_THAT(c.problem, HasSubstr("the log was rewritten"));
}

TEST_F(AuditLogTest, AnchorAcceptsEntriesAppendedAfterIt) {
  WriteLog(3);
  const Anchor anchor = HeadOf(path_);
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(kModelExported, "braid run", "default/demo", json::object()).ok());
  ASSERT_TRUE((*log)->Append(kModelExported, "braid run", "default/demo", json::object()).ok());
  const AnchorCheck c = Check(path_, anchor);
  EXPECT_TRUE(c.ok) << c.problem;
  EXPECT_EQ(c.after, 2);
  EXPECT_TRUE(Check(path_, Anchor{}).ok);  // the empty anchor holds for any log
}

TEST_F(AuditLogTest, AnchorFromJsonChecksEachField) {
  const std::string head(64, 'a');
  absl::StatusOr<Anchor> a = AnchorFromJson(json{{"entries", 3}, {"head", head}}, "s.audit");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (Anchor{3, head}));
  EXPECT_EQ(a->ToJson(), (json{{"entries", 3}, {"head", head}}));
  EXPECT_TRUE(AnchorFromJson(json{{"entries", 0}, {"head", ""}}, "s.audit").ok());
  const std::vector<std::pair<json, std::string>> bad = {
      {json::array(), "s.audit: not an object"},
      {json{{"head", head}}, "s.audit.entries"},
      {json{{"entries", -1}, {"head", head}}, "s.audit.entries"},
      {json{{"entries", "3"}, {"head", head}}, "s.audit.entries"},
      {json{{"entries", 3}}, "s.audit.head: missing"},
      {json{{"entries", 3}, {"head", std::string(64, 'A')}}, "64 lowercase hex"},
      {json{{"entries", 3}, {"head", "abc"}}, "64 lowercase hex"},
      {json{{"entries", 0}, {"head", head}}, "0 entries"},
  };
  for (const auto& [j, want] : bad) {
    absl::StatusOr<Anchor> r = AnchorFromJson(j, "s.audit");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << j;
    EXPECT_THAT(r.status().message(), HasSubstr(want)) << j;
  }
}

TEST_F(AuditLogTest, AppendRefusesToContinueAfterGarbage) {
  WriteLog(2);
  std::ofstream(path_, std::ios::app) << "garbage\n";
  auto log = AuditLog::Open(path_);
  ASSERT_TRUE(log.ok());
  absl::StatusOr<Entry> e = (*log)->Append(kJobFinished, "x", "default/demo", json::object());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(e.status().message(), HasSubstr("braid audit verify"));
}

TEST_F(AuditLogTest, TwoAppendersInterleaveIntoOneChain) {
  auto a = AuditLog::Open(path_);
  auto b = AuditLog::Open(path_);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*(i % 2 ? a : b))->Append(kJobStarted, "p", "default/demo", json::object()).ok());
  }
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify().entries, 10);
}

TEST_F(AuditLogTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadAuditLog(path_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuditLogTest, FileSha256MatchesBytes) {
  fs::create_directories(dir_);
  const std::string p = (dir_ / "model.bin").string();
  std::ofstream(p) << "hello model";
  absl::StatusOr<std::string> h = FileSha256Hex(p);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, Sha256Hex("hello model"));
  EXPECT_EQ(FileSha256Hex(p + ".missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace braid::audit
