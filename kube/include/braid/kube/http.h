// The HTTP seam between the API client and the network: one request in, one
// response out, plus a streaming call for watches.
#ifndef BRAID_KUBE_HTTP_H_
#define BRAID_KUBE_HTTP_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/cancel.h"
#include "braid/kube/config.h"

namespace braid::kube {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE
  // Absolute path plus query, already escaped: "/api/v1/pods?limit=500".
  std::string path;
  std::string content_type;  // sent when non-empty
  std::string body;
  // Whole-request deadline; zero or negative means none (watches).
  absl::Duration timeout = absl::Seconds(30);
};

struct HttpResponse {
  int status = 0;    // HTTP status code
  std::string body;  // for Stream(): the body only when status is not 2xx
};

// Implementations are thread-safe: any number of calls may run at once.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Sends `request` and returns the complete response, whatever its HTTP
  // status. Unavailable on transport failure (connect, TLS, timeout,
  // reset), with the method and path in the message; ResourceExhausted if
  // the body exceeds the transport's cap.
  virtual absl::StatusOr<HttpResponse> Do(const HttpRequest& request) = 0;

  // Sends `request`; if the response status is 2xx, hands body bytes to
  // `on_data` as they arrive (chunk boundaries are arbitrary) and returns
  // HttpResponse{status, ""} once the server ends the body, `on_data`
  // returns false, or `cancel` (may be null) is cancelled — checked at
  // least every 100 ms even when no bytes arrive. A non-2xx response is
  // returned whole, without calling `on_data`. Unavailable on transport
  // failure other than those deliberate stops.
  virtual absl::StatusOr<HttpResponse> Stream(
      const HttpRequest& request, const std::function<bool(std::string_view)>& on_data,
      const CancelToken* cancel) = 0;
};

// A libcurl transport for `config`: TLS with the CA and client key pair
// from memory, bearer token (token_file re-read when it changes), pooled
// connections for Do(), a dedicated connection per Stream(). InvalidArgument
// if config.server is not an http(s) URL or only one of cert/key is given.
absl::StatusOr<std::unique_ptr<HttpTransport>> NewCurlTransport(const Config& config);

}  // namespace braid::kube

#endif  // BRAID_KUBE_HTTP_H_
