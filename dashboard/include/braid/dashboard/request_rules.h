// Which browser requests the dashboard answers: pure checks on a request's
// Host and Origin headers, used by DashboardServer (server.h) before any
// route runs. Thread-safe (no state).
#ifndef BRAID_DASHBOARD_REQUEST_RULES_H_
#define BRAID_DASHBOARD_REQUEST_RULES_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace braid::dashboard {

// The host of a Host header ("example.com:8080" -> "example.com",
// "[::1]:80" -> "::1"), lower-cased; empty when it is malformed (empty,
// an unclosed bracket, a port that is not a number).
std::string HostOfHostHeader(absl::string_view host_header);

// Whether a request whose Host header is `host_header` may be served (DNS
// rebinding: a page of evil.example whose name later resolves to 127.0.0.1
// sends "Host: evil.example"). Allowed: IP literals (v4, v6 in brackets;
// a rebinding page's Host is its own name, never an address), "localhost"
// and names under ".localhost" (RFC 6761: never resolved by DNS), and the
// names in `allowed` (exact, case-insensitive; a leading "." also allows
// every name under it, e.g. ".example.org"). An absent or malformed Host is
// refused.
bool HostAllowed(absl::string_view host_header, const std::vector<std::string>& allowed);

// Whether `origin` (an Origin header; empty when none was sent) is the
// origin of the page served under `host_header`: same host and port
// (scheme's default port when none), http or https. "null" (sandboxed
// frames, file: pages) and every other origin are not; no Origin is
// (same-origin GETs and non-browser clients send none).
bool SameOrigin(absl::string_view origin, absl::string_view host_header);

}  // namespace braid::dashboard

#endif  // BRAID_DASHBOARD_REQUEST_RULES_H_
