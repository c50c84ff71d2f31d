#include "report_filter.h"

#include "gtest/gtest.h"

namespace braid::federation {
namespace {

v1::InvitationState Job(const std::string& uid, const std::string& state) {
  v1::InvitationState j;
  j.set_job_uid(uid);
  j.set_state(state);
  return j;
}

TEST(ReportFilterTest, OnlyInvitedJobsOnceEachWithBoundedFields) {
  v1::SiteReport report;
  *report.add_jobs() = Job("mine", "Invited");
  *report.add_jobs() = Job("someone-elses", "Running");  // not invited here
  *report.add_jobs() = Job("other", "Pwned");           // not a state
  v1::InvitationState last = Job("mine", "Refused");     // the later one wins
  last.set_reason("ModelNotAllowed");
  last.set_message(std::string(2000, 'x') + "\xc3\xa9");
  last.set_workers_ready(-4);
  *report.add_jobs() = last;
  v1::InvitationState odd = Job("other", "Running");
  odd.set_reason("<script>");
  odd.set_workers_ready(1 << 30);
  *report.add_jobs() = odd;

  FilteredReport f = FilterReport(report, {"mine", "other"});
  EXPECT_EQ(f.dropped, 3);
  ASSERT_EQ(f.report.jobs_size(), 2);
  EXPECT_EQ(f.report.jobs(0).job_uid(), "mine");
  EXPECT_EQ(f.report.jobs(0).state(), "Refused");
  EXPECT_EQ(f.report.jobs(0).reason(), "ModelNotAllowed");
  EXPECT_EQ(f.report.jobs(0).message().size(), kMaxReportMessageBytes);
  EXPECT_EQ(f.report.jobs(0).workers_ready(), 0);
  EXPECT_EQ(f.report.jobs(1).job_uid(), "other");
  EXPECT_EQ(f.report.jobs(1).reason(), "") << "not CamelCase: cleared";
  EXPECT_EQ(f.report.jobs(1).workers_ready(), kMaxWorkersReady);
}

TEST(ReportFilterTest, MessagesAreCutAtACharacterBoundary) {
  v1::SiteReport report;
  v1::InvitationState j = Job("mine", "Running");
  j.set_message(std::string(kMaxReportMessageBytes - 1, 'x') + "\xc3\xa9");  // é straddles
  *report.add_jobs() = j;
  FilteredReport f = FilterReport(report, {"mine"});
  ASSERT_EQ(f.report.jobs_size(), 1);
  EXPECT_EQ(f.report.jobs(0).message(), std::string(kMaxReportMessageBytes - 1, 'x'));
}

}  // namespace
}  // namespace braid::federation
