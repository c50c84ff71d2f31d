// The coordinator's open Sync streams: at most one current stream per site,
// and one thread that ticks them when the invitation board changes and at
// least every half keepalive interval (asking the registry about each
// site first, outside any lock).
#ifndef BRAID_FEDERATION_SRC_SYNC_HUB_H_
#define BRAID_FEDERATION_SRC_SYNC_HUB_H_

#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/federation/coordinator_service.h"

namespace braid::federation {

class SyncStream;

class SyncHub final {
 public:
  SyncHub(const CoordinatorOptions* options, SiteRegistry* registry, InvitationBoard* board,
          Clock* clock);
  ~SyncHub();  // Shutdown() first
  SyncHub(const SyncHub&) = delete;
  SyncHub& operator=(const SyncHub&) = delete;

  // Counts a new stream as alive (until Release). False while shutting
  // down: the stream must then finish at once.
  bool Adopt();
  // Makes `stream` its site's current stream, ending the one before it
  // (ABORTED), and tells the registry the site connected.
  void MakeCurrent(SyncStream* stream);
  // From the stream's OnDone: no longer alive; if it was current, the site
  // is disconnected.
  void Release(SyncStream* stream);

  // Ends every stream (UNAVAILABLE), stops the thread. Idempotent.
  void Shutdown();
  // Blocks until every adopted stream was released or `deadline` passed.
  // True when none is left.
  bool AwaitIdle(absl::Time deadline);
  int open_streams() const;

 private:
  void Run();
  void TickAll(uint64_t* seen);
  absl::Duration TickInterval() const;

  const CoordinatorOptions* const options_;
  SiteRegistry* const registry_;
  InvitationBoard* const board_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int alive_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, SyncStream*> current_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_SYNC_HUB_H_
