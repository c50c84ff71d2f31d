#include "sync_stream.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "braid/core/log.h"
#include "peer_identity.h"
#include "report_filter.h"
#include "sync_hub.h"

namespace braid::federation {

SyncStream::SyncStream(grpc::CallbackServerContext* context, SyncHub* hub,
                       const CoordinatorOptions* options, SiteRegistry* registry,
                       InvitationBoard* board, Clock* clock)
    : context_(context),
      hub_(hub),
      options_(options),
      registry_(registry),
      board_(board),
      clock_(clock) {
  if (!hub_->Adopt()) {
    End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down"));
    return;
  }
  grpc::Status admitted = Admit();
  if (!admitted.ok()) {
    End(admitted);
    return;
  }
  hub_->MakeCurrent(this);
  absl::MutexLock lock(&mu_);
  if (finished_) return;  // replaced or shut down meanwhile
  StartRead(&in_);
  SendSnapshotIfNewLocked(clock_->Now());
}

grpc::Status SyncStream::Admit() {
  std::optional<PeerSite> peer = SiteOfPeer(*context_);
  if (!peer.has_value()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "Sync needs a site certificate from the federation CA (enroll first)");
  }
  site_ = peer->site;
  site_uid_ = peer->uid;
  cert_not_after_ = peer->not_after;
  if (!registry_->Lookup(site_).Admits(site_uid_)) return NotAMember(site_);
  return grpc::Status::OK;
}

void SyncStream::Tick(absl::Time now, bool member) {
  if (TickAndCheck(now, member)) {
    // Outside the lock: cancellation may run this stream's reactions.
    context_->TryCancel();
  }
}

bool SyncStream::TickAndCheck(absl::Time now, bool member) {
  absl::MutexLock lock(&mu_);
  if (finished_) return false;
  if (!member) {
    EndLocked(NotAMember(site_));
    return false;
  }
  if (now >= cert_not_after_) {
    EndLocked(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                           "the site certificate of this stream has expired: renew, then "
                           "reconnect"));
    return false;
  }
  if (writing_ && now - write_started_ > 2 * options_->keepalive_interval) {
    // The site stopped reading: it holds a stream and a buffer for nothing.
    EndLocked(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                           "the site did not read its invitations for two keepalive intervals"));
    return true;
  }
  SendSnapshotIfNewLocked(now);
  if (now - last_send_ >= options_->keepalive_interval / 2) {
    v1::InvitationSet keepalive;
    keepalive.set_keepalive(true);
    SendLocked(std::move(keepalive), now);
  }
  if (read_paused_ && now - last_report_ >= options_->min_report_interval) {
    read_paused_ = false;
    StartRead(&in_);
  }
  return false;
}

void SyncStream::SendSnapshotIfNewLocked(absl::Time now) {
  InvitationBoard::Snapshot snapshot = board_->Get(site_);
  if (sent_any_ && snapshot.version == sent_version_) return;
  sent_any_ = true;
  sent_version_ = snapshot.version;
  v1::InvitationSet set;
  for (v1::Invitation& inv : snapshot.invitations) *set.add_invitations() = std::move(inv);
  SendLocked(std::move(set), now);
}

void SyncStream::SendLocked(v1::InvitationSet set, absl::Time now) {
  last_send_ = now;
  if (writing_) {
    // A snapshot replaces whatever waits; a keepalive never replaces a snapshot.
    if (!set.keepalive() || !pending_.has_value()) pending_ = std::move(set);
    return;
  }
  out_ = std::move(set);
  writing_ = true;
  write_started_ = now;
  StartWrite(&out_);
}

void SyncStream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (finished_) return;
  if (!ok) {
    EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the stream broke while writing"));
    return;
  }
  if (pending_.has_value()) {
    out_ = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    write_started_ = clock_->Now();
    StartWrite(&out_);
  }
}

void SyncStream::OnReadDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  if (!ok) {
    EndLocked(grpc::Status::OK);  // the site closed its side: it is leaving
    return;
  }
  // Only what the board invites this site to now counts.
  std::set<std::string> invited;
  for (const v1::Invitation& inv : board_->Get(site_).invitations) invited.insert(inv.job_uid());
  FilteredReport filtered = FilterReport(in_, invited);
  in_.Clear();
  if (filtered.dropped > 0) {
    LogWarning(absl::StrCat("federation: site ", site_, " reported ", filtered.dropped,
                            " entries about jobs not invited to it (or malformed); ignored"));
  }
  // Under the lock, so that reports reach the registry in order (the
  // registry returns quickly and never calls back, as its contract says).
  registry_->OnReport(site_, filtered.report);
  last_report_ = clock_->Now();
  if (options_->min_report_interval <= absl::ZeroDuration()) {
    StartRead(&in_);
  } else {
    read_paused_ = true;  // the hub's tick resumes it
  }
}

void SyncStream::OnCancel() { End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }

void SyncStream::End(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  EndLocked(status);
}

void SyncStream::EndLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  pending_.reset();
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    LogInfo(absl::StrCat("federation: Sync stream of site ", site_.empty() ? "?" : site_,
                         " ends: ", status.error_message()));
  }
  Finish(status);
}

void SyncStream::OnDone() {
  hub_->Release(this);
  delete this;
}

}  // namespace braid::federation
