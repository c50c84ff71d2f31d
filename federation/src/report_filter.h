// What of a site's report the coordinator believes: a report is the site's
// claim about its own invitations, so entries about jobs not invited to it
// are dropped, each job counts once, and every field is bounded.
#ifndef BRAID_FEDERATION_SRC_REPORT_FILTER_H_
#define BRAID_FEDERATION_SRC_REPORT_FILTER_H_

#include <set>
#include <string>

#include "braid/v1/sites.pb.h"

namespace braid::federation {

inline constexpr size_t kMaxReasonBytes = 64;
inline constexpr size_t kMaxReportMessageBytes = 1024;
inline constexpr int kMaxWorkersReady = 10000;

struct FilteredReport {
  v1::SiteReport report;
  int dropped = 0;  // entries left out (uninvited, repeated, unknown state)
};

// The entries of `report` whose job_uid is in `invited`, the last of each
// uid, in the order of their first appearance; an entry with a state other
// than Invited, AwaitingApproval, Running, Refused, Succeeded, Failed is
// dropped; a reason that is not CamelCase ([A-Za-z0-9], at most 64 bytes)
// is cleared; a message is cut to 1 KiB (at a UTF-8 character boundary);
// workers_ready is clamped to [0, 10000].
FilteredReport FilterReport(const v1::SiteReport& report, const std::set<std::string>& invited);

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_REPORT_FILTER_H_
