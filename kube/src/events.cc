#include "braid/kube/events.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace braid::kube {
namespace {

std::string StringAt(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

const Json& Metadata(const Json& obj) {
  static const Json* const kEmpty = new Json(Json::object());
  if (!obj.is_object()) return *kEmpty;
  const auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() ? *it : *kEmpty;
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::Status CheckInvolved(const Json& involved) {
  if (StringAt(involved, "kind").empty() || StringAt(Metadata(involved), "name").empty()) {
    return absl::InvalidArgumentError(
        "record event: the involved object needs kind and metadata.name");
  }
  return absl::OkStatus();
}

}  // namespace

Json MakeEvent(const Json& involved, EventType type, const std::string& reason,
               const std::string& message, const std::string& component, absl::Time now,
               const std::string& instance) {
  const Json& meta = Metadata(involved);
  const std::string name = StringAt(meta, "name");
  const std::string obj_ns = StringAt(meta, "namespace");
  const std::string ns = obj_ns.empty() ? "default" : obj_ns;
  Json ref = {{"apiVersion", StringAt(involved, "apiVersion")},
              {"kind", StringAt(involved, "kind")},
              {"name", name}};
  if (!obj_ns.empty()) ref["namespace"] = obj_ns;
  if (const std::string uid = StringAt(meta, "uid"); !uid.empty()) ref["uid"] = uid;
  if (const std::string rv = StringAt(meta, "resourceVersion"); !rv.empty()) {
    ref["resourceVersion"] = rv;
  }
  const std::string stamp = Rfc3339(now);
  Json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", absl::StrFormat("%s.%x", name, absl::ToUnixNanos(now))}, {"namespace", ns}}},
      {"involvedObject", std::move(ref)},
      {"type", type == EventType::kWarning ? "Warning" : "Normal"},
      {"reason", reason},
      {"message", message},
      {"firstTimestamp", stamp},
      {"lastTimestamp", stamp},
      {"count", 1},
      {"source", {{"component", component}}},
      {"reportingComponent", component},
  };
  if (!instance.empty()) event["reportingInstance"] = instance;
  return event;
}

absl::Status RecordEvent(Client& client, const Json& involved, EventType type,
                         const std::string& reason, const std::string& message,
                         const std::string& component, Clock* clock) {
  if (absl::Status s = CheckInvolved(involved); !s.ok()) return s;
  const absl::Time now = (clock != nullptr ? clock : RealClock())->Now();
  return client.Create(kEvent, MakeEvent(involved, type, reason, message, component, now))
      .status();
}

EventRecorder::EventRecorder(Client* client, std::string component, std::string instance,
                             Clock* clock, absl::Duration window, size_t capacity)
    : client_(client),
      component_(std::move(component)),
      instance_(std::move(instance)),
      clock_(clock != nullptr ? clock : RealClock()),
      window_(window),
      capacity_(capacity == 0 ? 1 : capacity) {}

absl::Status EventRecorder::Record(const Json& involved, EventType type,
                                   const std::string& reason, const std::string& message) {
  if (absl::Status s = CheckInvolved(involved); !s.ok()) return s;
  const Json& meta = Metadata(involved);
  const std::string key = absl::StrCat(
      StringAt(involved, "kind"), "\x1f", StringAt(meta, "namespace"), "\x1f",
      StringAt(meta, "name"), "\x1f", StringAt(meta, "uid"), "\x1f",
      type == EventType::kWarning ? "W" : "N", "\x1f", reason, "\x1f", message);
  const absl::Time now = clock_->Now();

  std::string ns, name;
  int64_t count = 0;
  {
    absl::MutexLock lock(&mu_);
    const auto it = seen_.find(key);
    if (it != seen_.end() && now - it->second.last < window_) {
      ns = it->second.ns;
      name = it->second.name;
      count = it->second.count + 1;
    }
  }
  if (count > 0) {
    const Json patch = {{"count", count}, {"lastTimestamp", Rfc3339(now)}};
    absl::StatusOr<Json> patched = client_->MergePatch(kEvent, ns, name, patch);
    if (patched.ok()) {
      absl::MutexLock lock(&mu_);
      const auto it = seen_.find(key);
      if (it != seen_.end()) {
        it->second.count = count;
        it->second.last = now;
        lru_.splice(lru_.begin(), lru_, it->second.lru);
      }
      return absl::OkStatus();
    }
    if (!absl::IsNotFound(patched.status())) return patched.status();
    // The Event expired or was deleted: start a new one.
  }

  const Json event = MakeEvent(involved, type, reason, message, component_, now, instance_);
  absl::StatusOr<Json> created = client_->Create(kEvent, event);
  if (!created.ok()) return created.status();

  absl::MutexLock lock(&mu_);
  auto it = seen_.find(key);
  if (it == seen_.end()) {
    lru_.push_front(key);
    it = seen_.emplace(key, Seen{}).first;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  it->second.ns = event["metadata"]["namespace"].get<std::string>();
  it->second.name = event["metadata"]["name"].get<std::string>();
  it->second.count = 1;
  it->second.last = now;
  while (seen_.size() > capacity_) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
  return absl::OkStatus();
}

}  // namespace braid::kube
