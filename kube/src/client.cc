#include "braid/kube/client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "braid/core/status_macros.h"
#include "braid/kube/api_error.h"
#include "watch_decoder.h"

namespace braid::kube {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kApplyPatch[] = "application/apply-patch+yaml";
constexpr char kMergePatch[] = "application/merge-patch+json";

// Appends "&key=value" (or "?key=value" for the first) when value is set.
void AddQuery(std::string& path, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  absl::StrAppend(&path, path.find('?') == std::string::npos ? "?" : "&", key, "=",
                  UrlEscape(value));
}

std::string StringAt(const Json& obj, const char* a, const char* b) {
  if (!obj.is_object()) return "";
  const auto it = obj.find(a);
  if (it == obj.end() || !it->is_object()) return "";
  const auto jt = it->find(b);
  return jt != it->end() && jt->is_string() ? jt->get<std::string>() : "";
}

std::string StringOf(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

struct Identity {
  std::string ns;
  std::string name;
};

// Namespace and name from obj.metadata; `what` names the call for errors.
absl::StatusOr<Identity> IdentityOf(const ResourceRef& ref, const Json& obj,
                                    const std::string& what, bool name_required) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", ref.plural, ": object must be a JSON object"));
  }
  Identity id{StringAt(obj, "metadata", "namespace"), StringAt(obj, "metadata", "name")};
  if (name_required && id.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", ref.plural, ": metadata.name is required"));
  }
  if (ref.namespaced && id.ns.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", ref.plural, " \"", id.name,
                                                   "\": metadata.namespace is required"));
  }
  if (!ref.namespaced) id.ns.clear();
  return id;
}

class HttpClient final : public Client {
 public:
  explicit HttpClient(std::unique_ptr<HttpTransport> transport)
      : transport_(std::move(transport)) {}
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  absl::StatusOr<Json> Get(const ResourceRef& ref, const std::string& ns,
                           const std::string& name) override {
    return Call("GET", ref.ObjectPath(ns, name), "", "");
  }

  absl::StatusOr<Json> List(const ResourceRef& ref, const std::string& ns,
                            const ListOptions& options) override {
    Json result;
    std::string cont;
    bool paged = options.page_size > 0;
    for (;;) {
      std::string path = ref.CollectionPath(ns);
      AddQuery(path, "labelSelector", options.label_selector);
      AddQuery(path, "fieldSelector", options.field_selector);
      if (paged) AddQuery(path, "limit", std::to_string(options.page_size));
      AddQuery(path, "continue", cont);
      absl::StatusOr<Json> page = Call("GET", path, "", "", options.timeout);
      if (!page.ok()) {
        if (IsGone(page.status()) && !cont.empty() && paged) {
          // The continue token expired: start over in one request.
          paged = false;
          cont.clear();
          result = Json();
          continue;
        }
        return page.status();
      }
      if (!page->is_object()) {
        return absl::InternalError(absl::StrCat("GET ", path, ": list is not a JSON object"));
      }
      const std::string next = StringAt(*page, "metadata", "continue");
      Json items = page->contains("items") && (*page)["items"].is_array() ? (*page)["items"]
                                                                          : Json::array();
      if (result.is_null()) {
        result = std::move(*page);
        result["items"] = std::move(items);
      } else {
        for (Json& item : items) result["items"].push_back(std::move(item));
        result["metadata"]["resourceVersion"] = StringAt(*page, "metadata", "resourceVersion");
      }
      cont = next;
      if (cont.empty() || !paged) break;
    }
    if (result.contains("metadata") && result["metadata"].is_object()) {
      result["metadata"].erase("continue");
      result["metadata"].erase("remainingItemCount");
    }
    return result;
  }

  absl::StatusOr<Json> Create(const ResourceRef& ref, const Json& obj) override {
    BRAID_ASSIGN_OR_RETURN(const Identity id, IdentityOf(ref, obj, "POST", false));
    return Call("POST", ref.CollectionPath(id.ns), kJson, obj.dump());
  }

  absl::StatusOr<Json> Update(const ResourceRef& ref, const Json& obj,
                              const std::string& subresource) override {
    BRAID_ASSIGN_OR_RETURN(const Identity id, IdentityOf(ref, obj, "PUT", true));
    return Call("PUT", ref.ObjectPath(id.ns, id.name, subresource), kJson, obj.dump());
  }

  absl::StatusOr<Json> Apply(const ResourceRef& ref, const Json& obj,
                             const std::string& field_manager, bool force) override {
    return DoApply(ref, obj, field_manager, force, "");
  }

  absl::StatusOr<Json> ApplyStatus(const ResourceRef& ref, const Json& obj,
                                   const std::string& field_manager, bool force) override {
    return DoApply(ref, obj, field_manager, force, "status");
  }

  absl::StatusOr<Json> MergePatch(const ResourceRef& ref, const std::string& ns,
                                  const std::string& name, const Json& patch,
                                  const std::string& subresource) override {
    return Call("PATCH", ref.ObjectPath(ns, name, subresource), kMergePatch, patch.dump());
  }

  absl::Status Delete(const ResourceRef& ref, const std::string& ns, const std::string& name,
                      const std::string& propagation) override {
    Json options = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
    if (!propagation.empty()) options["propagationPolicy"] = propagation;
    return Call("DELETE", ref.ObjectPath(ns, name), kJson, options.dump()).status();
  }

  absl::Status Watch(const ResourceRef& ref, const std::string& ns, const WatchOptions& options,
                     const std::function<bool(const WatchEvent&)>& on_event,
                     const CancelToken* cancel) override {
    std::string path = ref.CollectionPath(ns);
    AddQuery(path, "watch", "1");
    if (options.allow_bookmarks) AddQuery(path, "allowWatchBookmarks", "true");
    AddQuery(path, "resourceVersion", options.resource_version);
    AddQuery(path, "labelSelector", options.label_selector);
    AddQuery(path, "fieldSelector", options.field_selector);
    if (options.timeout_seconds > 0) {
      AddQuery(path, "timeoutSeconds", std::to_string(options.timeout_seconds));
    }
    HttpRequest request;
    request.method = "GET";
    request.path = path;
    request.timeout = options.timeout_seconds > 0 ? absl::Seconds(options.timeout_seconds + 30)
                                                  : absl::ZeroDuration();

    WatchDecoder decoder;
    absl::Status stream_error;  // a malformed or ERROR event
    bool stopped = false;       // on_event asked to stop
    auto on_object = [&](std::string_view text) -> bool {
      Json event = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
      if (!event.is_object() || !event.contains("type") || !event["type"].is_string() ||
          !event.contains("object")) {
        stream_error = absl::InternalError(absl::StrCat(
            "WATCH ", path, ": malformed event: ", std::string(text.substr(0, 200))));
        return false;
      }
      WatchEvent ev{event["type"].get<std::string>(), std::move(event["object"])};
      if (ev.type == "ERROR") {
        const Json& s = ev.object;
        const int code = s.is_object() && s.contains("code") && s["code"].is_number_integer()
                             ? s["code"].get<int>()
                             : 500;
        stream_error = WatchError(path, code, StringOf(s, "reason"), StringOf(s, "message"));
        return false;
      }
      if (!on_event(ev)) {
        stopped = true;
        return false;
      }
      return true;
    };
    auto on_data = [&](std::string_view chunk) -> bool {
      bool keep_going = true;
      absl::Status s = decoder.Feed(chunk, on_object, &keep_going);
      if (!s.ok()) {
        stream_error = absl::Status(s.code(), absl::StrCat("WATCH ", path, ": ", s.message()));
        return false;
      }
      return keep_going;
    };
    BRAID_ASSIGN_OR_RETURN(const HttpResponse response,
                           transport_->Stream(request, on_data, cancel));
    if (response.status < 200 || response.status >= 300) {
      return ApiError("GET", path, response.status, response.body);
    }
    if (!stream_error.ok()) return stream_error;
    const bool cancelled = cancel != nullptr && cancel->cancelled();
    if (!stopped && !cancelled && decoder.pending()) {
      return absl::UnavailableError(absl::StrCat("WATCH ", path, ": stream ended mid-event"));
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<Json> DoApply(const ResourceRef& ref, const Json& obj,
                               const std::string& field_manager, bool force,
                               const std::string& subresource) {
    const std::string what = subresource.empty() ? "apply" : "apply status";
    BRAID_ASSIGN_OR_RETURN(const Identity id, IdentityOf(ref, obj, what, true));
    if (!obj.contains("apiVersion") || !obj.contains("kind")) {
      return absl::InvalidArgumentError(absl::StrCat(what, " ", ref.plural, " \"", id.name,
                                                     "\": apiVersion and kind are required"));
    }
    if (field_manager.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", ref.plural, " \"", id.name, "\": a field manager is required"));
    }
    std::string path = ref.ObjectPath(id.ns, id.name, subresource);
    AddQuery(path, "fieldManager", field_manager);
    if (force) AddQuery(path, "force", "true");
    // JSON is YAML, so the JSON text is a valid apply-patch+yaml body.
    return Call("PATCH", path, kApplyPatch, obj.dump());
  }

  absl::StatusOr<Json> Call(const std::string& method, const std::string& path,
                            const std::string& content_type, std::string body,
                            absl::Duration timeout = absl::Seconds(30)) {
    HttpRequest request;
    request.method = method;
    request.path = path;
    request.content_type = content_type;
    request.body = std::move(body);
    request.timeout = timeout;
    BRAID_ASSIGN_OR_RETURN(HttpResponse response, transport_->Do(request));
    if (response.status < 200 || response.status >= 300) {
      return ApiError(method, path, response.status, response.body);
    }
    Json out = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (out.is_discarded()) {
      return absl::InternalError(absl::StrCat(method, " ", path, ": ", response.status,
                                              " response is not JSON: ",
                                              response.body.substr(0, 200)));
    }
    return out;
  }

  std::unique_ptr<HttpTransport> transport_;
};

}  // namespace

std::unique_ptr<Client> NewClient(std::unique_ptr<HttpTransport> transport) {
  return std::make_unique<HttpClient>(std::move(transport));
}

absl::StatusOr<std::unique_ptr<Client>> NewClientForConfig(const Config& config) {
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<HttpTransport> transport, NewCurlTransport(config));
  return NewClient(std::move(transport));
}

}  // namespace braid::kube
