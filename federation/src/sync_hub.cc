#include "sync_hub.h"

#include <algorithm>
#include <vector>

#include "sync_stream.h"

namespace braid::federation {

SyncHub::SyncHub(const CoordinatorOptions* options, SiteRegistry* registry,
                 InvitationBoard* board, Clock* clock)
    : options_(options), registry_(registry), board_(board), clock_(clock) {
  thread_ = std::thread([this] { Run(); });
}

SyncHub::~SyncHub() {
  Shutdown();
}

bool SyncHub::Adopt() {
  absl::MutexLock lock(&mu_);
  ++alive_;
  return !stopping_;
}

void SyncHub::MakeCurrent(SyncStream* stream) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      stream->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down"));
      return;
    }
    SyncStream*& slot = current_[stream->site()];
    if (slot != nullptr) {
      slot->End(grpc::Status(grpc::StatusCode::ABORTED,
                             "replaced by a newer Sync stream of the same site"));
    }
    slot = stream;
    // Under the lock, so that a site's connects and disconnects reach the
    // registry in the order its streams became and stopped being current
    // (the registry answers at once and never calls back).
    registry_->OnConnected(stream->site());
  }
}

void SyncHub::Release(SyncStream* stream) {
  absl::MutexLock lock(&mu_);
  --alive_;
  auto it = current_.find(stream->site());
  if (it != current_.end() && it->second == stream) {
    current_.erase(it);
    registry_->OnDisconnected(stream->site());  // under the lock: see MakeCurrent
  }
}

void SyncHub::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      for (auto& [site, stream] : current_) {
        stream->End(
            grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down"));
      }
    }
  }
  board_->Wake();
  if (thread_.joinable()) thread_.join();
}

bool SyncHub::AwaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return alive_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

int SyncHub::open_streams() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(current_.size());
}

absl::Duration SyncHub::TickInterval() const {
  absl::Duration tick = options_->keepalive_interval / 2;
  if (options_->min_report_interval > absl::ZeroDuration()) {
    tick = std::min(tick, options_->min_report_interval);
  }
  return std::max(tick, absl::Milliseconds(10));
}

void SyncHub::Run() {
  uint64_t seen = board_->version();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    seen = board_->WaitForChange(seen, absl::Now() + TickInterval());
    TickAll(&seen);
  }
}

void SyncHub::TickAll(uint64_t* seen) {
  std::vector<std::string> sites;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (const auto& [site, stream] : current_) sites.push_back(site);
  }
  // The registry is asked outside the lock: it may take a moment.
  std::map<std::string, SiteRecord> records;
  for (const std::string& site : sites) records[site] = registry_->Lookup(site);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  for (const auto& [site, stream] : current_) {
    auto it = records.find(site);
    // A stream that became current since the lookup was admitted just now.
    stream->Tick(now, it == records.end() ? true : it->second.Admits(stream->site_uid()));
  }
}

}  // namespace braid::federation
