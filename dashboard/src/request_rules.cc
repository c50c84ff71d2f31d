#include "braid/dashboard/request_rules.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace braid::dashboard {
namespace {

struct Authority {
  std::string host;  // lower-cased, without brackets
  std::string port;  // digits, or empty
  bool bracketed = false;
};

// host[:port] or [v6][:port]; false when malformed.
bool ParseAuthority(absl::string_view a, Authority* out) {
  if (a.empty()) return false;
  absl::string_view port;
  if (a.front() == '[') {
    const size_t close = a.find(']');
    if (close == absl::string_view::npos) return false;
    out->host = std::string(a.substr(1, close - 1));
    out->bracketed = true;
    absl::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else {
    const size_t colon = a.rfind(':');
    if (colon != absl::string_view::npos) {
      if (a.find(':') != colon) return false;  // an unbracketed v6 address
      port = a.substr(colon + 1);
      a = a.substr(0, colon);
    }
    out->host = std::string(a);
  }
  if (out->host.empty()) return false;
  if (!port.empty()) {
    int p = 0;
    if (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535 ||
        port.find_first_not_of("0123456789") != absl::string_view::npos) {
      return false;
    }
  }
  out->port = std::string(port);
  absl::AsciiStrToLower(&out->host);
  return true;
}

bool IsIpLiteral(const Authority& a) {
  unsigned char buf[16];
  if (a.bracketed) return inet_pton(AF_INET6, a.host.c_str(), buf) == 1;
  return inet_pton(AF_INET, a.host.c_str(), buf) == 1;
}

}  // namespace

std::string HostOfHostHeader(absl::string_view host_header) {
  Authority a;
  return ParseAuthority(host_header, &a) ? a.host : "";
}

bool HostAllowed(absl::string_view host_header, const std::vector<std::string>& allowed) {
  Authority a;
  if (!ParseAuthority(host_header, &a)) return false;
  if (IsIpLiteral(a)) return true;
  if (a.bracketed) return false;  // brackets hold only v6 addresses
  if (a.host == "localhost" || absl::EndsWith(a.host, ".localhost")) return true;
  for (const std::string& name : allowed) {
    const std::string n = absl::AsciiStrToLower(name);
    if (n.empty()) continue;
    if (n.front() == '.' ? absl::EndsWith(a.host, n) && a.host.size() > n.size() : a.host == n) {
      return true;
    }
  }
  return false;
}

bool SameOrigin(absl::string_view origin, absl::string_view host_header) {
  if (origin.empty()) return true;
  absl::string_view rest;
  std::string default_port;
  if (absl::StartsWith(origin, "http://")) {
    rest = origin.substr(7);
    default_port = "80";
  } else if (absl::StartsWith(origin, "https://")) {
    rest = origin.substr(8);
    default_port = "443";
  } else {
    return false;  // "null", other schemes
  }
  Authority from, to;
  if (!ParseAuthority(rest, &from) || !ParseAuthority(host_header, &to)) return false;
  if (from.port.empty()) from.port = default_port;
  if (to.port.empty()) to.port = default_port;
  return from.host == to.host && from.port == to.port;
}

}  // namespace braid::dashboard
