// A typed-enough Kubernetes API client: objects are nlohmann::json, kinds
// are ResourceRefs, errors are absl::Status (see api_error.h for the
// mapping).
#ifndef BRAID_KUBE_CLIENT_H_
#define BRAID_KUBE_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/cancel.h"
#include "braid/kube/http.h"
#include "braid/kube/resource.h"
#include "nlohmann/json.hpp"

namespace braid::kube {

using Json = nlohmann::json;

struct ListOptions {
  std::string label_selector;  // "app=braid,tier!=web"; "" = everything
  std::string field_selector;  // "metadata.name=x"; "" = everything
  int page_size = 500;         // limit per request; <= 0 asks for one page
  absl::Duration timeout = absl::Seconds(60);  // per page
};

struct WatchOptions {
  // Start after this version (from a List or a previous event). "" means
  // "from now" (the server's choice); "0" means "any", with synthetic ADDED
  // events for everything.
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;  // BOOKMARK events carry the latest version
  // Server-side end of the watch; 0 leaves it to the server (5-10 min).
  // The client also gives up 30 s after this if the server goes silent.
  int timeout_seconds = 0;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  Json object;       // the object (for BOOKMARK: only metadata.resourceVersion)
};

// Every method is thread-safe (as safe as the transport, which must be).
// Errors come from ApiError(): NotFound, AlreadyExists, Aborted (conflict),
// InvalidArgument (the server's message, intact), Unauthenticated,
// PermissionDenied, Unavailable (429/5xx/transport; retry). A 2xx answer
// whose body is not JSON is Internal. Messages start "<METHOD> <path>:".
class Client {
 public:
  virtual ~Client() = default;

  // The object, as the server has it.
  virtual absl::StatusOr<Json> Get(const ResourceRef& ref, const std::string& ns,
                                   const std::string& name) = 0;

  // The "<Kind>List" object with every page's items concatenated;
  // metadata.resourceVersion is the version to Watch() from; no
  // metadata.continue. ns "" lists across all namespaces. If a continue
  // token expires mid-way, the list restarts once without paging; IsGone()
  // only if that fails too.
  virtual absl::StatusOr<Json> List(const ResourceRef& ref, const std::string& ns,
                                    const ListOptions& options = {}) = 0;

  // POST. Namespace and name come from obj.metadata (namespace required for
  // namespaced kinds: InvalidArgument if absent). AlreadyExists if taken.
  virtual absl::StatusOr<Json> Create(const ResourceRef& ref, const Json& obj) = 0;

  // PUT to the object (or its `subresource`, e.g. "status"). With
  // metadata.resourceVersion set, Aborted if the object changed since
  // (optimistic concurrency); without it, unconditional.
  virtual absl::StatusOr<Json> Update(const ResourceRef& ref, const Json& obj,
                                      const std::string& subresource = "") = 0;

  // Server-side apply: PATCH application/apply-patch+yaml of `obj` (the
  // fields this manager owns; must carry apiVersion, kind, metadata.name and,
  // for namespaced kinds, metadata.namespace) with
  // ?fieldManager=<field_manager>[&force=true]. Creates the object if
  // absent. Without `force`, a field owned by another manager is Aborted
  // with the server's message naming the field and manager.
  virtual absl::StatusOr<Json> Apply(const ResourceRef& ref, const Json& obj,
                                     const std::string& field_manager, bool force = true) = 0;
  // Apply() to the /status subresource; `obj` carries identity and .status.
  virtual absl::StatusOr<Json> ApplyStatus(const ResourceRef& ref, const Json& obj,
                                           const std::string& field_manager,
                                           bool force = true) = 0;

  // JSON merge patch (RFC 7386) to the object or its `subresource`.
  virtual absl::StatusOr<Json> MergePatch(const ResourceRef& ref, const std::string& ns,
                                          const std::string& name, const Json& patch,
                                          const std::string& subresource = "") = 0;

  // DELETE with propagationPolicy `propagation` (Background | Foreground |
  // Orphan). NotFound if already gone (callers that only want it gone may
  // ignore that).
  virtual absl::Status Delete(const ResourceRef& ref, const std::string& ns,
                              const std::string& name,
                              const std::string& propagation = "Background") = 0;

  // Streams changes to the collection (ns "" = all namespaces), calling
  // `on_event` for each event in order, on the calling thread. Returns OK
  // when the server ends the watch, `on_event` returns false, or `cancel`
  // (may be null) is cancelled. An ERROR event (or HTTP answer) with code
  // 410 returns a status with IsGone() true: the version is too old,
  // relist. Other ERROR events map like HTTP codes. Internal if the stream
  // holds something that is not a JSON event.
  virtual absl::Status Watch(const ResourceRef& ref, const std::string& ns,
                             const WatchOptions& options,
                             const std::function<bool(const WatchEvent&)>& on_event,
                             const CancelToken* cancel) = 0;
};

// A Client over `transport` (owned).
std::unique_ptr<Client> NewClient(std::unique_ptr<HttpTransport> transport);

// Convenience: NewCurlTransport(config) then NewClient.
absl::StatusOr<std::unique_ptr<Client>> NewClientForConfig(const Config& config);

}  // namespace braid::kube

#endif  // BRAID_KUBE_CLIENT_H_
