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

TEST_F(AuditLogTest, CompleteLineWithoutNewlineIsStillTorn) {
  // The writer's fsync covers the newline; a line without one was not
  // acknowledged, whatever it holds.
  WriteLog(2);
  Rewrite(Lines(), /*final_newline=*/false);
  EXPECT_THAT(Verify().problem, HasSubstr("torn last line"));
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
