#include "braid/federation/invitation_board.h"

#include <google/protobuf/util/message_differencer.h>

namespace braid::federation {
namespace {

bool SameSet(const std::vector<v1::Invitation>& a, const std::vector<v1::Invitation>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!google::protobuf::util::MessageDifferencer::Equals(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

void InvitationBoard::Set(const std::string& site, std::vector<v1::Invitation> invitations) {
  absl::MutexLock lock(&mu_);
  Snapshot& current = sites_[site];
  if (current.version != 0 && SameSet(current.invitations, invitations)) return;
  if (current.version == 0 && invitations.empty()) {
    // Never set and still empty: what Get already says. Nothing to wake for.
    sites_.erase(site);
    return;
  }
  current.invitations = std::move(invitations);
  current.version = ++version_;
}

InvitationBoard::Snapshot InvitationBoard::Get(const std::string& site) const {
  absl::MutexLock lock(&mu_);
  auto it = sites_.find(site);
  if (it == sites_.end()) return Snapshot{};
  return it->second;
}

uint64_t InvitationBoard::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

uint64_t InvitationBoard::WaitForChange(uint64_t after, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto changed = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return version_ > after || shut_down_;
  };
  mu_.AwaitWithDeadline(absl::Condition(&changed), deadline);
  return version_;
}

void InvitationBoard::Wake() {
  absl::MutexLock lock(&mu_);
  ++version_;
}

void InvitationBoard::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

bool InvitationBoard::shut_down() const {
  absl::MutexLock lock(&mu_);
  return shut_down_;
}

}  // namespace braid::federation
