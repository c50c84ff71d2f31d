#include "braid/kube/leader_election.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace braid::kube {
namespace {

std::string StringOf(const Json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

int IntOf(const Json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int>() : 0;
}

}  // namespace

std::string FormatMicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

bool LeaderElector::Record::operator==(const Record& o) const {
  return holder == o.holder && duration_seconds == o.duration_seconds &&
         acquire_time == o.acquire_time && renew_time == o.renew_time &&
         transitions == o.transitions;
}

LeaderElector::LeaderElector(Client* client, LeaderElectionConfig config, Clock* clock)
    : client_(client),
      config_(std::move(config)),
      clock_(clock != nullptr ? clock : RealClock()) {}

bool LeaderElector::IsLeader() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  return leading_ && now < last_renew_ + config_.renew_deadline;
}

std::string LeaderElector::Holder() const {
  absl::MutexLock lock(&mu_);
  return observed_.holder;
}

void LeaderElector::Report(const absl::Status& error) const {
  if (config_.on_error) config_.on_error(error);
}

LeaderElector::Record LeaderElector::ParseRecord(const Json& lease) {
  Record r;
  const auto spec = lease.find("spec");
  if (spec == lease.end() || !spec->is_object()) return r;
  r.holder = StringOf(*spec, "holderIdentity");
  r.duration_seconds = IntOf(*spec, "leaseDurationSeconds");
  r.acquire_time = StringOf(*spec, "acquireTime");
  r.renew_time = StringOf(*spec, "renewTime");
  r.transitions = IntOf(*spec, "leaseTransitions");
  return r;
}

Json LeaderElector::RecordToSpec(const Record& r) const {
  Json spec = {{"holderIdentity", r.holder},
               {"leaseDurationSeconds", r.duration_seconds},
               {"leaseTransitions", r.transitions}};
  if (!r.acquire_time.empty()) spec["acquireTime"] = r.acquire_time;
  if (!r.renew_time.empty()) spec["renewTime"] = r.renew_time;
  return spec;
}

void LeaderElector::Observe(const Record& r, absl::Time now) {
  bool new_holder = false;
  {
    absl::MutexLock lock(&mu_);
    if (have_observed_ && observed_ == r) return;
    new_holder = !have_observed_ || observed_.holder != r.holder;
    observed_ = r;
    observed_time_ = now;
    have_observed_ = true;
  }
  if (new_holder && config_.on_new_leader) config_.on_new_leader(r.holder);
}

LeaderElector::Attempt LeaderElector::TryAcquireOrRenew() {
  const absl::Time now = clock_->Now();
  const std::string now_text = FormatMicroTime(now);
  const int duration = static_cast<int>(absl::ToInt64Seconds(config_.lease_duration));

  absl::StatusOr<Json> lease =
      client_->Get(kLease, config_.lease_namespace, config_.lease_name);
  if (!lease.ok() && absl::IsNotFound(lease.status())) {
    Record mine{config_.identity, duration, now_text, now_text, 0};
    Json obj = {{"apiVersion", kLease.api_version},
                {"kind", kLease.kind},
                {"metadata",
                 {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
                {"spec", RecordToSpec(mine)}};
    absl::StatusOr<Json> created = client_->Create(kLease, obj);
    if (!created.ok()) {
      // AlreadyExists: another candidate created it first.
      Report(created.status());
      return Attempt::kFailed;
    }
    Observe(mine, now);
    return Attempt::kLeading;
  }
  if (!lease.ok()) {
    Report(lease.status());
    return Attempt::kFailed;
  }

  const Record current = ParseRecord(*lease);
  Observe(current, now);
  if (!current.holder.empty() && current.holder != config_.identity) {
    absl::Time observed_time;
    {
      absl::MutexLock lock(&mu_);
      observed_time = observed_time_;
    }
    if (observed_time + absl::Seconds(current.duration_seconds) > now) {
      return Attempt::kHeldByOther;
    }
  }

  Record mine{config_.identity, duration, now_text, now_text, current.transitions};
  if (current.holder == config_.identity) {
    mine.acquire_time = current.acquire_time;
  } else {
    mine.transitions = current.transitions + 1;
  }
  Json updated = *std::move(lease);
  if (!updated["spec"].is_object()) updated["spec"] = Json::object();
  const Json spec = RecordToSpec(mine);
  for (const auto& [key, value] : spec.items()) updated["spec"][key] = value;
  absl::StatusOr<Json> written = client_->Update(kLease, updated);
  if (!written.ok()) {
    // Aborted: someone else wrote the lease since our read.
    Report(written.status());
    return Attempt::kFailed;
  }
  Observe(mine, now);
  return Attempt::kLeading;
}

absl::Status LeaderElector::Release() {
  absl::StatusOr<Json> lease =
      client_->Get(kLease, config_.lease_namespace, config_.lease_name);
  if (!lease.ok()) return lease.status();
  const Record current = ParseRecord(*lease);
  if (current.holder != config_.identity) return absl::OkStatus();
  const std::string now_text = FormatMicroTime(clock_->Now());
  Record released{"", 1, now_text, now_text, current.transitions};
  Json updated = *std::move(lease);
  const Json spec = RecordToSpec(released);
  for (const auto& [key, value] : spec.items()) updated["spec"][key] = value;
  absl::StatusOr<Json> written = client_->Update(kLease, updated);
  if (!written.ok()) return written.status();
  Observe(released, clock_->Now());
  return absl::OkStatus();
}

absl::Status LeaderElector::Run(const CancelToken* cancel) {
  if (config_.lease_namespace.empty() || config_.lease_name.empty() || config_.identity.empty()) {
    return absl::InvalidArgumentError(
        "leader election: lease_namespace, lease_name and identity are required");
  }
  if (config_.retry_period <= absl::ZeroDuration() ||
      config_.renew_deadline <= config_.retry_period ||
      config_.lease_duration <= config_.renew_deadline ||
      config_.lease_duration < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "leader election: need 0 < retry_period < renew_deadline < lease_duration, and "
        "lease_duration >= 1s");
  }
  const std::string lease = absl::StrCat(config_.lease_namespace, "/", config_.lease_name);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.0, 1.2);

  // Acquire.
  for (;;) {
    if (cancel != nullptr && cancel->cancelled()) return absl::OkStatus();
    if (TryAcquireOrRenew() == Attempt::kLeading) break;
    if (!clock_->Sleep(config_.retry_period * (1.0 + jitter(rng)), cancel)) {
      return absl::OkStatus();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    leading_ = true;
    last_renew_ = clock_->Now();
  }
  if (config_.on_started_leading) config_.on_started_leading();

  // Renew.
  absl::Status result;
  for (;;) {
    if (!clock_->Sleep(config_.retry_period, cancel)) break;  // cancelled
    const Attempt attempt = TryAcquireOrRenew();
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&mu_);
    if (attempt == Attempt::kLeading) {
      last_renew_ = now;
      continue;
    }
    if (attempt == Attempt::kHeldByOther) {
      result = absl::AbortedError(
          absl::StrCat("leader election: lease ", lease, " is now held by \"", observed_.holder,
                       "\""));
      break;
    }
    if (now - last_renew_ >= config_.renew_deadline) {
      result = absl::AbortedError(absl::StrCat("leader election: could not renew lease ", lease,
                                               " within ",
                                               absl::FormatDuration(config_.renew_deadline)));
      break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    leading_ = false;
  }
  if (result.ok() && config_.release_on_cancel) {
    if (absl::Status s = Release(); !s.ok()) Report(s);
  }
  if (config_.on_stopped_leading) config_.on_stopped_leading();
  return result;
}

}  // namespace braid::kube
