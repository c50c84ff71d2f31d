// The coordinator's current invitations per site: its reconciler writes
// each site's whole set; the SiteFederation service's Sync streams read the
// sets and wait for changes.
#ifndef BRAID_FEDERATION_INVITATION_BOARD_H_
#define BRAID_FEDERATION_INVITATION_BOARD_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/v1/sites.pb.h"

namespace braid::federation {

// Thread-safe. Versions are one counter for the whole board, starting at 0
// and growing by one with every change (and every Wake); a site's version
// is the board's version at its set's last change (0: never set).
class InvitationBoard final {
 public:
  struct Snapshot {
    uint64_t version = 0;
    std::vector<v1::Invitation> invitations;
  };

  InvitationBoard() = default;
  InvitationBoard(const InvitationBoard&) = delete;
  InvitationBoard& operator=(const InvitationBoard&) = delete;

  // Replaces `site`'s set. A set equal to the current one (same invitations
  // in the same order) changes nothing: no new version, nobody woken. An
  // empty set withdraws every invitation of the site.
  void Set(const std::string& site, std::vector<v1::Invitation> invitations);

  // `site`'s set and version ({0, {}} for a site never set).
  Snapshot Get(const std::string& site) const;

  // The board's version now.
  uint64_t version() const;

  // Blocks until the board's version is above `after`, `deadline` passes
  // or the board is shut down, and returns the version then.
  uint64_t WaitForChange(uint64_t after, absl::Time deadline) const;

  // Advances the board's version without changing any site's set, so that
  // every waiter (and one about to wait with an older version) returns:
  // for a waiter whose owner wants it to look at its own state, e.g. to stop.
  void Wake();

  // Wakes every waiter now and makes every later WaitForChange return at
  // once. Set still works. Idempotent.
  void Shutdown();
  bool shut_down() const;

 private:
  mutable absl::Mutex mu_;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Snapshot> sites_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_INVITATION_BOARD_H_
