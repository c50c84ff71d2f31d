#include "braid/operator/coordinator_federation.h"

#include <set>
#include <utility>
#include <vector>

namespace braid::op {

CoordinatorFederation::CoordinatorFederation(SiteDirectory* directory,
                                             federation::InvitationBoard* board,
                                             std::string ca_pem)
    : directory_(directory), board_(board), ca_pem_(std::move(ca_pem)) {}

void CoordinatorFederation::Invite(const std::string& job_uid,
                                   const std::map<std::string, v1::Invitation>& by_site) {
  absl::MutexLock lock(&mu_);
  std::set<std::string> touched;
  auto old = jobs_.find(job_uid);
  if (old != jobs_.end()) {
    for (const auto& [site, invitation] : old->second) touched.insert(site);
  }
  for (const auto& [site, invitation] : by_site) touched.insert(site);
  if (by_site.empty()) {
    jobs_.erase(job_uid);
  } else {
    jobs_[job_uid] = by_site;
  }
  // The board ignores a set equal to the current one, so re-inviting the
  // same job every reconcile wakes no stream.
  for (const std::string& site : touched) {
    std::vector<v1::Invitation> set;
    for (const auto& [uid, sites] : jobs_) {  // ordered by job uid
      auto it = sites.find(site);
      if (it != sites.end()) set.push_back(it->second);
    }
    board_->Set(site, std::move(set));
  }
}

SiteJobView CoordinatorFederation::SiteJob(const std::string& site,
                                           const std::string& job_uid) const {
  return directory_->View(site, job_uid);
}

}  // namespace braid::op
