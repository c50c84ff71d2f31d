#include "braid/kube/testing/fake_api_server.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace braid::kube {
namespace {

using Json = nlohmann::json;

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      if (absl::SimpleHexAtoi(s.substr(i + 1, 2), &v)) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

struct Target {
  bool ok = false;
  std::string gv, plural, ns, name, sub;
  std::map<std::string, std::string> query;
  std::string collection() const { return absl::StrCat(gv, "|", plural); }
  std::string prefix() const { return absl::StrCat(collection(), "|", ns, "|"); }
  std::string key() const { return absl::StrCat(prefix(), name); }
};

Target Parse(const std::string& full) {
  Target t;
  const size_t q = full.find('?');
  const std::string path = full.substr(0, q);
  if (q != std::string::npos) {
    for (absl::string_view kv : absl::StrSplit(full.substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = kv.find('=');
      if (eq == absl::string_view::npos) {
        t.query[UrlDecode(std::string(kv))] = "";
      } else {
        t.query[UrlDecode(std::string(kv.substr(0, eq)))] =
            UrlDecode(std::string(kv.substr(eq + 1)));
      }
    }
  }
  std::vector<std::string> seg = absl::StrSplit(path, '/', absl::SkipEmpty());
  size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    t.gv = seg[1];
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    t.gv = absl::StrCat(seg[1], "/", seg[2]);
    i = 3;
  } else {
    return t;
  }
  std::vector<std::string> rest(seg.begin() + i, seg.end());
  for (std::string& r : rest) r = UrlDecode(r);
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    t.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.empty() || rest.size() > 3) return t;
  t.plural = rest[0];
  if (rest.size() >= 2) t.name = rest[1];
  if (rest.size() == 3) t.sub = rest[2];
  t.ok = true;
  return t;
}

Json StatusJson(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", Json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason}, {"code", code}};
}

HttpResponse Reply(int code, const Json& body) { return HttpResponse{code, body.dump()}; }

HttpResponse Fail(int code, const std::string& reason, const std::string& message) {
  return Reply(code, StatusJson(code, reason, message));
}

std::string MetaString(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const Json& m = obj["metadata"];
  return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : "";
}

// Label selector: comma-separated "k=v", "k==v", "k!=v", "k", "!k".
bool Matches(const Json& obj, const std::string& selector) {
  if (selector.empty()) return true;
  Json labels = Json::object();
  if (obj.contains("metadata") && obj["metadata"].contains("labels") &&
      obj["metadata"]["labels"].is_object()) {
    labels = obj["metadata"]["labels"];
  }
  auto value_of = [&](const std::string& k) -> const Json* {
    return labels.contains(k) ? &labels[k] : nullptr;
  };
  for (absl::string_view req_view : absl::StrSplit(selector, ',', absl::SkipEmpty())) {
    const std::string req(req_view);
    size_t pos;
    if ((pos = req.find("!=")) != std::string::npos) {
      const Json* v = value_of(req.substr(0, pos));
      if (v != nullptr && *v == req.substr(pos + 2)) return false;
    } else if ((pos = req.find("==")) != std::string::npos) {
      const Json* v = value_of(req.substr(0, pos));
      if (v == nullptr || *v != req.substr(pos + 2)) return false;
    } else if ((pos = req.find('=')) != std::string::npos) {
      const Json* v = value_of(req.substr(0, pos));
      if (v == nullptr || *v != req.substr(pos + 1)) return false;
    } else if (!req.empty() && req[0] == '!') {
      if (value_of(req.substr(1)) != nullptr) return false;
    } else if (value_of(req) == nullptr) {
      return false;
    }
  }
  return true;
}

std::string EventLine(const std::string& type, const Json& object) {
  return Json{{"type", type}, {"object", object}}.dump() + "\n";
}

class Forwarder final : public HttpTransport {
 public:
  explicit Forwarder(FakeApiServer* server) : server_(server) {}
  absl::StatusOr<HttpResponse> Do(const HttpRequest& request) override {
    return server_->Do(request);
  }
  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request,
                                      const std::function<bool(std::string_view)>& on_data,
                                      const CancelToken* cancel) override {
    return server_->Stream(request, on_data, cancel);
  }

 private:
  FakeApiServer* const server_;
};

}  // namespace

FakeApiServer::FakeApiServer() = default;
FakeApiServer::~FakeApiServer() = default;

std::unique_ptr<HttpTransport> FakeApiServer::NewTransport() {
  return std::make_unique<Forwarder>(this);
}

void FakeApiServer::FailNext(const std::string& method, const std::string& path_part,
                             int http_status, int times, const std::string& body) {
  absl::MutexLock lock(&mu_);
  failures_.push_back(Failure{method, path_part, body, http_status, times});
}

void FakeApiServer::ClearFailures() {
  absl::MutexLock lock(&mu_);
  failures_.clear();
  watch_event_failures_.clear();
}

nlohmann::json FakeApiServer::Upsert(const ResourceRef& ref, const nlohmann::json& obj) {
  const std::string ns = MetaString(obj, "namespace");
  const std::string name = MetaString(obj, "name");
  HttpRequest request;
  request.content_type = "application/json";
  request.body = obj.dump();
  absl::MutexLock lock(&mu_);
  const std::string key = Parse(ref.ObjectPath(ns, name)).key();
  if (objects_.count(key)) {
    request.method = "PUT";
    request.path = ref.ObjectPath(ns, name);
    Json body = obj;
    body["metadata"].erase("resourceVersion");
    request.body = body.dump();
  } else {
    request.method = "POST";
    request.path = ref.CollectionPath(ns);
  }
  const HttpResponse response = Handle(request);
  return Json::parse(response.body);
}

nlohmann::json FakeApiServer::Object(const ResourceRef& ref, const std::string& ns,
                                     const std::string& name) const {
  absl::MutexLock lock(&mu_);
  const auto it = objects_.find(Parse(ref.ObjectPath(ns, name)).key());
  return it == objects_.end() ? Json() : it->second;
}

void FakeApiServer::FailNextWatchWithEvent(const std::string& path_part, int code, int times) {
  absl::MutexLock lock(&mu_);
  watch_event_failures_.push_back(Failure{"GET", path_part, "", code, times});
}

void FakeApiServer::Compact() {
  absl::MutexLock lock(&mu_);
  compacted_rv_ = rv_;
  log_.clear();
}

void FakeApiServer::SendBookmark() {
  absl::MutexLock lock(&mu_);
  ++bookmark_gen_;
}

void FakeApiServer::EndWatches() {
  absl::MutexLock lock(&mu_);
  ++end_gen_;
}

void FakeApiServer::CutWatches() {
  absl::MutexLock lock(&mu_);
  ++cut_gen_;
}

void FakeApiServer::set_chunk_size(size_t n) {
  absl::MutexLock lock(&mu_);
  chunk_size_ = std::max<size_t>(1, n);
}

std::vector<HttpRequest> FakeApiServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

void FakeApiServer::clear_requests() {
  absl::MutexLock lock(&mu_);
  requests_.clear();
}

int FakeApiServer::open_watches() const {
  absl::MutexLock lock(&mu_);
  return open_watches_;
}

int64_t FakeApiServer::resource_version() const {
  absl::MutexLock lock(&mu_);
  return rv_;
}

bool FakeApiServer::TakeFailure(const HttpRequest& request, HttpResponse* out) {
  for (auto it = failures_.begin(); it != failures_.end(); ++it) {
    if (it->method == request.method && request.path.find(it->path_part) != std::string::npos) {
      *out = it->body.empty() ? Fail(it->status, "Injected",
                                     absl::StrCat("injected failure ", it->status))
                              : HttpResponse{it->status, it->body};
      if (--it->times <= 0) failures_.erase(it);
      return true;
    }
  }
  return false;
}

void FakeApiServer::Emit(const std::string& type, const std::string& collection,
                         const std::string& ns, const Json& obj) {
  log_.push_back(Event{rv_, type, collection, ns, obj});
}

absl::StatusOr<HttpResponse> FakeApiServer::Do(const HttpRequest& request) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(request);
  HttpResponse injected;
  if (TakeFailure(request, &injected)) return injected;
  return Handle(request);
}

HttpResponse FakeApiServer::Handle(const HttpRequest& request) {
  const Target t = Parse(request.path);
  if (!t.ok) return Fail(404, "NotFound", absl::StrCat("the server could not find ", request.path));
  const std::string& m = request.method;
  auto not_found = [&] {
    return Fail(404, "NotFound", absl::StrCat(t.plural, " \"", t.name, "\" not found"));
  };
  auto stamp = [&](Json& obj) {
    obj["metadata"]["resourceVersion"] = std::to_string(rv_);
  };

  if (m == "GET" && t.name.empty()) {
    const auto w = t.query.find("watch");
    if (w != t.query.end() && w->second != "false" && w->second != "0") {
      return Fail(400, "BadRequest", "use Stream() for watches");
    }
    const std::string selector = t.query.count("labelSelector") ? t.query.at("labelSelector") : "";
    std::vector<Json> all;
    const std::string prefix = t.ns.empty() ? absl::StrCat(t.collection(), "|") : t.prefix();
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      if (Matches(it->second, selector)) all.push_back(it->second);
    }
    size_t start = 0, limit = all.size();
    if (t.query.count("continue")) {
      if (!absl::SimpleAtoi(t.query.at("continue"), &start) || start > all.size()) {
        return Fail(410, "Expired", "the provided continue parameter is too old");
      }
    }
    if (t.query.count("limit")) {
      size_t l = 0;
      if (absl::SimpleAtoi(t.query.at("limit"), &l) && l > 0) limit = l;
    }
    const size_t end = std::min(all.size(), start + limit);
    Json list = {{"kind", "List"}, {"apiVersion", t.gv},
                 {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
                 {"items", Json::array()}};
    for (size_t i = start; i < end; ++i) list["items"].push_back(all[i]);
    if (end < all.size()) {
      list["metadata"]["continue"] = std::to_string(end);
      list["metadata"]["remainingItemCount"] = all.size() - end;
    }
    return Reply(200, list);
  }

  if (m == "GET") {
    const auto it = objects_.find(t.key());
    if (it == objects_.end()) return not_found();
    return Reply(200, it->second);
  }

  Json body;
  if (m == "POST" || m == "PUT" || m == "PATCH") {
    body = Json::parse(request.body, nullptr, false);
    if (!body.is_object()) return Fail(400, "BadRequest", "body is not a JSON object");
  }

  auto create = [&](Json obj, const std::string& name) {
    if (!obj["metadata"].is_object()) obj["metadata"] = Json::object();
    Target at = t;
    at.name = name;
    if (objects_.count(at.key())) {
      return Fail(409, "AlreadyExists", absl::StrCat(t.plural, " \"", name, "\" already exists"));
    }
    const std::string body_ns = MetaString(obj, "namespace");
    if (!body_ns.empty() && body_ns != t.ns) {
      return Fail(400, "BadRequest", "the namespace of the object does not match the path");
    }
    ++rv_;
    obj["metadata"]["name"] = name;
    if (!t.ns.empty()) obj["metadata"]["namespace"] = t.ns;
    obj["metadata"]["uid"] = absl::StrCat("uid-", ++uid_counter_);
    obj["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z";
    obj["metadata"]["generation"] = 1;
    stamp(obj);
    objects_[at.key()] = obj;
    Emit("ADDED", t.collection(), t.ns, obj);
    return Reply(201, obj);
  };

  // Writes `next` over the stored object, keeping identity fields.
  auto replace = [&](const Json& stored, Json next) {
    for (const char* k : {"uid", "creationTimestamp", "name", "namespace"}) {
      if (stored["metadata"].contains(k)) next["metadata"][k] = stored["metadata"][k];
    }
    int64_t generation = stored["metadata"].value("generation", 1);
    const Json old_spec = stored.contains("spec") ? stored["spec"] : Json();
    const Json new_spec = next.contains("spec") ? next["spec"] : Json();
    if (old_spec != new_spec) ++generation;
    next["metadata"]["generation"] = generation;
    ++rv_;
    stamp(next);
    objects_[t.key()] = next;
    Emit("MODIFIED", t.collection(), t.ns, next);
    return Reply(200, next);
  };

  if (m == "POST") {
    if (!t.name.empty()) return Fail(405, "MethodNotAllowed", "POST to an object path");
    std::string name = MetaString(body, "name");
    if (name.empty()) {
      const std::string gen = MetaString(body, "generateName");
      if (gen.empty()) {
        return Fail(422, "Invalid", absl::StrCat(t.plural, " is invalid: metadata.name: "
                                                 "Required value: name or generateName is "
                                                 "required"));
      }
      name = absl::StrCat(gen, uid_counter_ + 1);
    }
    return create(body, name);
  }

  if (m == "PUT") {
    const auto it = objects_.find(t.key());
    if (it == objects_.end()) return not_found();
    if (MetaString(body, "name") != t.name) {
      return Fail(400, "BadRequest", "the name of the object does not match the path");
    }
    const std::string want = MetaString(body, "resourceVersion");
    if (!want.empty() && want != MetaString(it->second, "resourceVersion")) {
      return Fail(409, "Conflict",
                  absl::StrCat("Operation cannot be fulfilled on ", t.plural, " \"", t.name,
                               "\": the object has been modified; please apply your changes "
                               "to the latest version and try again"));
    }
    Json next;
    if (t.sub == "status") {
      next = it->second;
      if (body.contains("status")) next["status"] = body["status"];
    } else {
      next = body;
      if (it->second.contains("status")) next["status"] = it->second["status"];
    }
    return replace(it->second, std::move(next));
  }

  if (m == "PATCH") {
    const bool apply = request.content_type == "application/apply-patch+yaml";
    if (!apply && request.content_type != "application/merge-patch+json") {
      return Fail(415, "UnsupportedMediaType",
                  absl::StrCat("the body of the request was in an unknown format - accepted "
                               "media types include: application/merge-patch+json, "
                               "application/apply-patch+yaml; got ",
                               request.content_type));
    }
    if (apply && (t.query.count("fieldManager") == 0 || t.query.at("fieldManager").empty())) {
      return Fail(422, "Invalid",
                  "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is "
                  "required for apply patch");
    }
    const auto it = objects_.find(t.key());
    if (it == objects_.end()) {
      if (apply && t.sub.empty()) return create(body, t.name);
      return not_found();
    }
    Json next = it->second;
    if (t.sub == "status") {
      Json patch = Json::object();
      if (body.contains("status")) patch["status"] = body["status"];
      next.merge_patch(patch);
    } else {
      Json patch = body;
      patch.erase("status");
      if (patch.contains("metadata") && patch["metadata"].is_object()) {
        patch["metadata"].erase("resourceVersion");
      }
      next.merge_patch(patch);
    }
    return replace(it->second, std::move(next));
  }

  if (m == "DELETE") {
    const auto it = objects_.find(t.key());
    if (it == objects_.end()) return not_found();
    Json obj = it->second;
    objects_.erase(it);
    ++rv_;
    stamp(obj);
    Emit("DELETED", t.collection(), t.ns, obj);
    return Reply(200, obj);
  }
  return Fail(405, "MethodNotAllowed", absl::StrCat(m, " is not supported"));
}

absl::StatusOr<HttpResponse> FakeApiServer::Stream(
    const HttpRequest& request, const std::function<bool(std::string_view)>& on_data,
    const CancelToken* cancel) {
  const Target t = Parse(request.path);
  std::string pending;  // event lines to deliver
  bool finish = false;  // end after delivering `pending`
  int64_t cursor = 0, my_bookmark = 0, my_end = 0, my_cut = 0;
  size_t chunk = 7;
  const std::string selector =
      t.query.count("labelSelector") ? t.query.at("labelSelector") : "";
  const bool bookmarks =
      t.query.count("allowWatchBookmarks") && t.query.at("allowWatchBookmarks") == "true";
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    HttpResponse injected;
    if (TakeFailure(request, &injected)) return injected;
    if (!t.ok || !t.name.empty() || t.query.count("watch") == 0) {
      return Fail(400, "BadRequest", absl::StrCat("not a watch: ", request.path));
    }
    for (auto it = watch_event_failures_.begin(); it != watch_event_failures_.end(); ++it) {
      if (request.path.find(it->path_part) != std::string::npos) {
        pending = EventLine("ERROR", StatusJson(it->status, it->status == 410 ? "Expired" : "InternalError",
                                                absl::StrCat("injected watch error ", it->status)));
        finish = true;
        if (--it->times <= 0) watch_event_failures_.erase(it);
        break;
      }
    }
    const std::string rv = t.query.count("resourceVersion") ? t.query.at("resourceVersion") : "";
    cursor = rv_;
    if (finish) {
      // the injected ERROR event
    } else if (rv == "0") {
      const std::string prefix = t.ns.empty() ? absl::StrCat(t.collection(), "|") : t.prefix();
      for (auto it = objects_.lower_bound(prefix);
           it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        if (Matches(it->second, selector)) pending += EventLine("ADDED", it->second);
      }
    } else if (!rv.empty()) {
      int64_t from = 0;
      if (!absl::SimpleAtoi(rv, &from)) {
        return Fail(400, "BadRequest", absl::StrCat("invalid resourceVersion \"", rv, "\""));
      }
      if (from < compacted_rv_) {
        pending = EventLine("ERROR", StatusJson(410, "Expired",
                                                absl::StrCat("too old resource version: ", from,
                                                             " (", compacted_rv_, ")")));
        finish = true;
      } else {
        cursor = from;
      }
    }
    my_bookmark = bookmark_gen_;
    my_end = end_gen_;
    my_cut = cut_gen_;
    chunk = chunk_size_;
    ++open_watches_;
  }
  struct Closer {
    FakeApiServer* s;
    ~Closer() {
      absl::MutexLock lock(&s->mu_);
      --s->open_watches_;
    }
  } closer{this};

  auto deliver = [&](const std::string& text) {
    for (size_t i = 0; i < text.size(); i += chunk) {
      if (!on_data(std::string_view(text).substr(i, chunk))) return false;
    }
    return true;
  };
  for (;;) {
    if (!pending.empty() && !deliver(pending)) return HttpResponse{200, ""};
    pending.clear();
    if (finish) return HttpResponse{200, ""};
    if (cancel != nullptr && cancel->cancelled()) return HttpResponse{200, ""};
    bool cut = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return (!log_.empty() && log_.back().rv > cursor) || bookmark_gen_ != my_bookmark ||
               end_gen_ != my_end || cut_gen_ != my_cut;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(20));
      for (const Event& e : log_) {
        if (e.rv <= cursor) continue;
        if (e.collection == t.collection() && (t.ns.empty() || e.ns == t.ns) &&
            Matches(e.object, selector)) {
          pending += EventLine(e.type, e.object);
        }
      }
      if (!log_.empty()) cursor = std::max(cursor, log_.back().rv);
      if (bookmark_gen_ != my_bookmark) {
        my_bookmark = bookmark_gen_;
        cursor = std::max(cursor, rv_);
        if (bookmarks) {
          pending += EventLine("BOOKMARK", {{"kind", "Bookmark"},
                                            {"metadata", {{"resourceVersion", std::to_string(rv_)}}}});
        }
      }
      if (end_gen_ != my_end) finish = true;
      if (cut_gen_ != my_cut) cut = true;
    }
    if (cut) {
      if (!pending.empty() && !deliver(pending)) return HttpResponse{200, ""};
      deliver(R"({"type":"ADDED","object":{"metadata":{"name":)");
      return HttpResponse{200, ""};
    }
  }
}

}  // namespace braid::kube
