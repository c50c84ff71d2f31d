// Leader election on a coordination.k8s.io/v1 Lease, after client-go's
// leaderelection package: one holder at a time; others take over once the
// holder stops renewing for a lease duration.
#ifndef BRAID_KUBE_LEADER_ELECTION_H_
#define BRAID_KUBE_LEADER_ELECTION_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/cancel.h"
#include "braid/kube/client.h"
#include "braid/core/clock.h"

namespace braid::kube {

struct LeaderElectionConfig {
  std::string lease_namespace;  // required
  std::string lease_name;       // required
  std::string identity;         // required, unique per candidate (pod name)
  // How long others wait, after last seeing the lease change, before taking
  // it over. Whole seconds (the Lease stores seconds).
  absl::Duration lease_duration = absl::Seconds(15);
  // The leader gives up if it could not renew for this long. < lease_duration.
  absl::Duration renew_deadline = absl::Seconds(10);
  // Pause between attempts (acquire or renew). < renew_deadline.
  absl::Duration retry_period = absl::Seconds(2);
  // On a cancelled Run(), hand the lease back (holder "", duration 1 s) so
  // another candidate takes over at once.
  bool release_on_cancel = true;
  // Called on Run()'s thread; must return promptly (start work elsewhere).
  std::function<void()> on_started_leading;
  // Called once after on_started_leading when leadership ends (lost,
  // renew deadline passed, or cancelled). Stop leader-only work now.
  std::function<void()> on_stopped_leading;
  // Called when the observed holder changes (including to this identity).
  std::function<void(const std::string& holder)> on_new_leader;
  // Each failed API call, for logging; the elector retries anyway.
  std::function<void(const absl::Status& error)> on_error;
};

// One candidate. Run() on one thread; IsLeader()/Holder() from any thread.
class LeaderElector {
 public:
  // `client` and `clock` (null: RealClock()) must outlive the elector.
  LeaderElector(Client* client, LeaderElectionConfig config, Clock* clock = nullptr);
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Tries to acquire every retry_period until it leads or `cancel` fires;
  // then renews every retry_period until it fails to renew within
  // renew_deadline, sees another holder, or `cancel` fires. Returns OK when
  // cancelled, Aborted when leadership was lost (the usual response is to
  // exit, or to call Run() again as a fresh candidate); InvalidArgument if
  // the config is incomplete.
  absl::Status Run(const CancelToken* cancel);

  // True between on_started_leading and on_stopped_leading, except that it
  // turns false as soon as renew_deadline has passed since the last
  // successful renewal, even while a renewal request still hangs (others may
  // take over after lease_duration). Check it before leader-only writes.
  bool IsLeader() const;
  // The last observed holder ("" if none or unknown).
  std::string Holder() const;

  enum class Attempt {
    kLeading,       // we hold the lease (acquired or renewed)
    kHeldByOther,   // someone else holds an unexpired lease
    kFailed,        // error or write conflict; try again later
  };
  // One acquire-or-renew round trip (Get, then Create or Update). Run() is
  // a loop around this; exposed for tests that step time by hand.
  Attempt TryAcquireOrRenew();
  // Hands the lease back if we hold it. Best effort; errors are returned.
  absl::Status Release();

 private:
  struct Record {
    std::string holder;
    int duration_seconds = 0;
    std::string acquire_time;
    std::string renew_time;
    int transitions = 0;
    bool operator==(const Record& o) const;
  };
  static Record ParseRecord(const Json& lease);
  Json RecordToSpec(const Record& r) const;
  void Observe(const Record& r, absl::Time now);

  void Report(const absl::Status& error) const;

  Client* const client_;
  const LeaderElectionConfig config_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  Record observed_ ABSL_GUARDED_BY(mu_);
  absl::Time observed_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool have_observed_ ABSL_GUARDED_BY(mu_) = false;
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_renew_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// Kubernetes MicroTime: "2006-01-02T15:04:05.000000Z".
std::string FormatMicroTime(absl::Time t);

}  // namespace braid::kube

#endif  // BRAID_KUBE_LEADER_ELECTION_H_
