#include "braid/kube/informer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "braid/kube/api_error.h"

namespace braid::kube {
namespace {

std::string MetaString(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  const auto meta = obj.find("metadata");
  if (meta == obj.end() || !meta->is_object()) return "";
  const auto it = meta->find(key);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string ObjectKey(const Json& obj) {
  const std::string ns = MetaString(obj, "namespace");
  const std::string name = MetaString(obj, "name");
  return ns.empty() ? name : absl::StrCat(ns, "/", name);
}

Informer::Informer(Client* client, InformerOptions options, InformerHandlers handlers,
                   Clock* clock)
    : client_(client),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      clock_(clock != nullptr ? clock : RealClock()) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread(&Informer::Run, this);
}

void Informer::Stop() {
  cancel_.Cancel();
  if (thread_.joinable()) thread_.join();
}

std::vector<Json> Informer::Snapshot() const {
  absl::MutexLock lock(&mu_);
  std::vector<Json> out;
  out.reserve(cache_.size());
  for (const auto& [key, obj] : cache_) out.push_back(obj);
  return out;
}

std::optional<Json> Informer::Get(const std::string& ns, const std::string& name) const {
  absl::MutexLock lock(&mu_);
  const auto it = cache_.find(ns.empty() ? name : absl::StrCat(ns, "/", name));
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

bool Informer::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

std::string Informer::LastResourceVersion() const {
  absl::MutexLock lock(&mu_);
  return rv_;
}

void Informer::SetResourceVersion(const std::string& rv) {
  if (rv.empty()) return;
  absl::MutexLock lock(&mu_);
  rv_ = rv;
}

absl::Status Informer::ListAndReplace() {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  absl::StatusOr<Json> list = client_->List(options_.ref, options_.ns, list_options);
  if (!list.ok()) return list.status();

  std::map<std::string, Json> fresh;
  for (Json& item : (*list)["items"]) {
    // List items of built-in kinds carry no apiVersion/kind; watch events
    // do. Handlers see the same shape either way.
    if (!item.contains("apiVersion")) item["apiVersion"] = options_.ref.api_version;
    if (!item.contains("kind")) item["kind"] = options_.ref.kind;
    const std::string key = ObjectKey(item);
    if (!key.empty()) fresh.emplace(key, std::move(item));
  }
  std::map<std::string, Json> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::exchange(cache_, fresh);
    rv_ = MetaString(*list, "resourceVersion");
  }
  if (lists_.fetch_add(1) > 0) relists_.fetch_add(1);

  // Objects that vanished while we were not watching: synthetic deletes.
  for (const auto& [key, obj] : old) {
    if (fresh.count(key) == 0 && handlers_.on_delete) handlers_.on_delete(obj);
  }
  for (const auto& [key, obj] : fresh) {
    const auto it = old.find(key);
    const bool changed = it == old.end() || MetaString(it->second, "resourceVersion") !=
                                                MetaString(obj, "resourceVersion");
    if (changed && handlers_.on_upsert) handlers_.on_upsert(obj);
  }
  {
    absl::MutexLock lock(&mu_);
    synced_ = true;
  }
  if (handlers_.on_synced) handlers_.on_synced();
  return absl::OkStatus();
}

bool Informer::HandleEvent(const WatchEvent& event) {
  const std::string rv = MetaString(event.object, "resourceVersion");
  if (event.type == "BOOKMARK") {
    SetResourceVersion(rv);
    return true;
  }
  const std::string key = ObjectKey(event.object);
  if (key.empty()) return false;
  if (event.type == "ADDED" || event.type == "MODIFIED") {
    {
      absl::MutexLock lock(&mu_);
      cache_[key] = event.object;
      if (!rv.empty()) rv_ = rv;
    }
    if (handlers_.on_upsert) handlers_.on_upsert(event.object);
    return true;
  }
  if (event.type == "DELETED") {
    {
      absl::MutexLock lock(&mu_);
      cache_.erase(key);
      if (!rv.empty()) rv_ = rv;
    }
    if (handlers_.on_delete) handlers_.on_delete(event.object);
    return true;
  }
  return false;
}

void Informer::Run() {
  Backoff backoff(options_.backoff);
  auto report = [this](const absl::Status& s) {
    errors_.fetch_add(1);
    if (handlers_.on_error) handlers_.on_error(s);
  };
  bool need_list = true;
  bool first_watch = true;
  while (!cancel_.cancelled()) {
    if (need_list) {
      absl::Status s = ListAndReplace();
      if (cancel_.cancelled()) break;
      if (!s.ok()) {
        report(s);
        clock_->Sleep(backoff.Next(), &cancel_);
        continue;
      }
      need_list = false;
    }
    if (!first_watch) watch_restarts_.fetch_add(1);
    first_watch = false;

    WatchOptions watch_options;
    watch_options.resource_version = LastResourceVersion();
    watch_options.label_selector = options_.label_selector;
    watch_options.allow_bookmarks = true;
    watch_options.timeout_seconds = options_.watch_timeout_seconds;
    bool got_event = false;
    bool bad_event = false;
    const absl::Time start = clock_->Now();
    absl::Status s = client_->Watch(
        options_.ref, options_.ns, watch_options,
        [&](const WatchEvent& event) {
          got_event = true;
          if (!HandleEvent(event)) {
            bad_event = true;
            return false;
          }
          return true;
        },
        &cancel_);
    if (cancel_.cancelled()) break;
    const bool healthy = got_event || clock_->Now() - start >= options_.healthy_watch;
    if (healthy) backoff.Reset();
    if (IsGone(s)) {
      // Too far behind: the list is the only way to catch up.
      need_list = true;
      continue;
    }
    if (bad_event) {
      s = absl::InternalError(absl::StrCat("watch ", options_.ref.plural,
                                           ": event without type or metadata.name; relisting"));
      need_list = true;
    }
    if (!s.ok()) {
      report(s);
      clock_->Sleep(backoff.Next(), &cancel_);
    } else if (!healthy) {
      clock_->Sleep(backoff.Next(), &cancel_);
    }
  }
}

}  // namespace braid::kube
