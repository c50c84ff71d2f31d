#include "report_filter.h"

#include <algorithm>
#include <map>
#include <vector>

namespace braid::federation {
namespace {

bool KnownState(const std::string& s) {
  static const char* const kStates[] = {"Invited",  "AwaitingApproval", "Running",
                                        "Refused",  "Succeeded",        "Failed"};
  for (const char* k : kStates) {
    if (s == k) return true;
  }
  return false;
}

bool CamelCase(const std::string& s) {
  if (s.size() > kMaxReasonBytes) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

// `s` cut to at most `max` bytes without splitting a UTF-8 character.
void CutUtf8(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  s.resize(end);
}

}  // namespace

FilteredReport FilterReport(const v1::SiteReport& report, const std::set<std::string>& invited) {
  FilteredReport out;
  std::vector<std::string> order;
  std::map<std::string, v1::InvitationState> last;
  for (const v1::InvitationState& job : report.jobs()) {
    if (invited.count(job.job_uid()) == 0 || !KnownState(job.state())) {
      ++out.dropped;
      continue;
    }
    auto [it, inserted] = last.emplace(job.job_uid(), job);
    if (inserted) {
      order.push_back(job.job_uid());
    } else {
      it->second = job;
      ++out.dropped;
    }
  }
  for (const std::string& uid : order) {
    v1::InvitationState& job = last[uid];
    if (!CamelCase(job.reason())) job.clear_reason();
    CutUtf8(*job.mutable_message(), kMaxReportMessageBytes);
    job.set_workers_ready(std::clamp(job.workers_ready(), 0, kMaxWorkersReady));
    *out.report.add_jobs() = std::move(job);
  }
  return out;
}

}  // namespace braid::federation
