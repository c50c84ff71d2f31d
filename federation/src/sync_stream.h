// One site's Sync stream on the coordinator: a gRPC callback reactor. It
// writes the site's invitation snapshots and keepalive markers (one write
// in flight; a newer snapshot replaces one not yet written), reads the
// site's reports no faster than min_report_interval and hands them,
// filtered, to the registry. Its SyncHub ticks it (see sync_hub.h).
#ifndef BRAID_FEDERATION_SRC_SYNC_STREAM_H_
#define BRAID_FEDERATION_SRC_SYNC_STREAM_H_

#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"
#include "braid/federation/coordinator_service.h"
#include "braid/v1/sites.pb.h"

namespace braid::federation {

class SyncHub;

class SyncStream final : public grpc::ServerBidiReactor<v1::SiteReport, v1::InvitationSet> {
 public:
  // Checks the caller (a member site's certificate), registers with `hub`
  // and sends the first snapshot; or finishes at once with the reason.
  // Deletes itself when done.
  SyncStream(grpc::CallbackServerContext* context, SyncHub* hub,
             const CoordinatorOptions* options, SiteRegistry* registry,
             InvitationBoard* board, Clock* clock);

  // The hub's periodic and on-change look, with whether the site is a
  // member now that admits this stream's certificate (SiteRecord::Admits):
  // ends the stream if not or if the certificate has expired,
  // sends a new snapshot or a keepalive marker when due, resumes reading
  // when the report interval has passed. The hub holds its lock.
  void Tick(absl::Time now, bool member);

  // Finishes the stream with `status` (first call wins; later ones do nothing).
  void End(const grpc::Status& status);

  // Set before the stream is registered; constant afterwards.
  const std::string& site() const { return site_; }
  const std::string& site_uid() const { return site_uid_; }  // its certificate's

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Tick's work; true when the call must be cancelled (after unlocking).
  bool TickAndCheck(absl::Time now, bool member);
  // Validates the caller; OK: go on.
  grpc::Status Admit();
  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendLocked(v1::InvitationSet set, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendSnapshotIfNewLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const context_;
  SyncHub* const hub_;
  const CoordinatorOptions* const options_;
  SiteRegistry* const registry_;
  InvitationBoard* const board_;
  Clock* const clock_;
  std::string site_;
  std::string site_uid_;
  absl::Time cert_not_after_ = absl::InfiniteFuture();

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  absl::Time last_send_ ABSL_GUARDED_BY(mu_);
  uint64_t sent_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool sent_any_ ABSL_GUARDED_BY(mu_) = false;
  v1::InvitationSet out_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::InvitationSet> pending_ ABSL_GUARDED_BY(mu_);
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_report_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  v1::SiteReport in_;  // owned by the one read in flight
};

}  // namespace braid::federation

#endif  // BRAID_FEDERATION_SRC_SYNC_STREAM_H_
