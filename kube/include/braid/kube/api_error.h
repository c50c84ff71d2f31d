// How an API server's HTTP answers become absl::Status, and how callers ask
// a Status what the server said.
#ifndef BRAID_KUBE_API_ERROR_H_
#define BRAID_KUBE_API_ERROR_H_

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace braid::kube {

// The Status for a non-2xx answer to `method` `path`. Codes keep their gRPC
// meaning:
//   400, 422           InvalidArgument (don't retry; fix the object)
//   401                Unauthenticated
//   403                PermissionDenied
//   404                NotFound
//   409                AlreadyExists when the server's reason is
//                      AlreadyExists (or, lacking a reason, for POST);
//                      otherwise Aborted (a resourceVersion conflict or an
//                      apply conflict: re-read and retry)
//   410                OutOfRange, and IsGone() is true (resourceVersion
//                      too old: relist)
//   429, 5xx           Unavailable (retry with back-off)
//   other              Unknown
// The message is "<METHOD> <path>: <code> <text>: <server message>"; the
// server's Status.message is kept intact (it names the offending fields).
// The HTTP code and the server's reason ride along as payloads, see below.
absl::Status ApiError(const std::string& method, const std::string& path, int http_status,
                      const std::string& body);

// Same mapping for a watch stream's ERROR event, whose object is a
// metav1.Status (code, reason, message).
absl::Status WatchError(const std::string& path, int code, const std::string& reason,
                        const std::string& message);

// True for a status made from HTTP 410 / a watch ERROR with code 410: the
// requested resourceVersion is no longer available.
bool IsGone(const absl::Status& status);
// The HTTP code behind an error made by ApiError/WatchError, if any.
std::optional<int> HttpStatusOf(const absl::Status& status);
// The server's machine-readable reason ("AlreadyExists", "Conflict",
// "Invalid", "Expired", ...), or "" if none.
std::string ApiReasonOf(const absl::Status& status);

}  // namespace braid::kube

#endif  // BRAID_KUBE_API_ERROR_H_
