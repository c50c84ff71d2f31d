#include "braid/aggregator/admission_audit.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class AdmissionAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = (dir_ / "admission.json").string();
    log_path_ = (dir_ / audit::kFileName).string();
  }

  void Write(const json& doc) { std::ofstream(file_) << doc.dump(); }

  static json Admission(std::vector<json> tenants) {
    return json{{"job", {{"uid", "u-1"}, {"created", "2026-11-23T08:00:00Z"}}},
                {"tenants", tenants}};
  }
  static json T(const std::string& tenant, const std::string& consent,
                const std::string& comment = "") {
    return json{{"tenant", tenant},
                {"consent", consent},
                {"approval", consent == "Pending" || consent == "NotRequired"
                                 ? ""
                                 : "ns-" + tenant + "/fl.job"},
                {"comment", comment}};
  }

  // The kinds and (tenant, decision) of what the log holds, and that it verifies.
  std::vector<std::string> Logged() {
    absl::StatusOr<audit::AuditFile> file = audit::ReadAuditLog(log_path_);
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return {};
    EXPECT_TRUE(file->verification.ok) << file->verification.problem;
    std::vector<std::string> out;
    for (const audit::Entry& e : file->entries) {
      std::string s = e.kind;
      if (e.details.contains("tenant")) {
        s += " " + e.details["tenant"].get<std::string>() + " " +
             e.details["decision"].get<std::string>();
      }
      out.push_back(s);
    }
    return out;
  }

  fs::path dir_;
  std::string file_, log_path_;
};

TEST_F(AdmissionAuditTest, RecordsCreationDecisionsAndRevocationOnce) {
  auto log = audit::AuditLog::Open(log_path_);
  ASSERT_TRUE(log.ok()) << log.status();
  AdmissionAudit admission(file_, log->get(), "fl/job");
  // No file (no operator): nothing to record.
  ASSERT_TRUE(admission.Poll().ok());
  EXPECT_TRUE(Logged().empty());

  Write(Admission({T("a", "Approved", "ok by dpo"), T("b", "NotRequired")}));
  ASSERT_TRUE(admission.Poll().ok());
  ASSERT_TRUE(admission.Poll().ok());  // unchanged: nothing more
  EXPECT_THAT(Logged(), ElementsAre("job_created", "tenant_approved a Approved"));

  // Revocation by deleting the approval, then a fresh refusal.
  Write(Admission({T("a", "Pending"), T("b", "NotRequired")}));
  ASSERT_TRUE(admission.Poll().ok());
  Write(Admission({T("a", "Refused", "withdrawn"), T("b", "NotRequired")}));
  ASSERT_TRUE(admission.Poll().ok());
  ASSERT_TRUE(admission.Poll().ok());
  EXPECT_THAT(Logged(), ElementsAre("job_created", "tenant_approved a Approved",
                                    "tenant_refused a Revoked", "tenant_refused a Refused"));
}

TEST_F(AdmissionAuditTest, ARestartedAggregatorAppendsNothingTwice) {
  Write(Admission({T("a", "Approved"), T("b", "Refused")}));
  {
    auto log = audit::AuditLog::Open(log_path_);
    ASSERT_TRUE(log.ok());
    AdmissionAudit first(file_, log->get(), "fl/job");
    ASSERT_TRUE(first.Poll().ok());
  }
  auto log = audit::AuditLog::Open(log_path_);
  ASSERT_TRUE(log.ok());
  AdmissionAudit second(file_, log->get(), "fl/job");
  ASSERT_TRUE(second.Poll().ok());
  EXPECT_THAT(Logged(), ElementsAre("job_created", "tenant_approved a Approved",
                                    "tenant_refused b Refused"));
  // A later change is still seen.
  Write(Admission({T("a", "Approved"), T("b", "Approved")}));
  ASSERT_TRUE(second.Poll().ok());
  EXPECT_EQ(Logged().back(), "tenant_approved b Approved");
}

TEST_F(AdmissionAuditTest, AMalformedFileIsRefusedByNameAndAppendsNothing) {
  auto log = audit::AuditLog::Open(log_path_);
  ASSERT_TRUE(log.ok());
  AdmissionAudit admission(file_, log->get(), "fl/job");
  for (const std::string text : {"not json", "[1]", R"({"tenants": {}})",
                                 R"({"job": {"uid": "u"}, "tenants": [{"consent": "Approved"}]})"}) {
    std::ofstream(file_) << text;
    absl::Status s = admission.Poll();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << text << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(file_)) << text;
  }
  EXPECT_TRUE(Logged().empty());
}

}  // namespace
}  // namespace braid::aggregator
