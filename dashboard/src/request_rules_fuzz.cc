// libFuzzer target for the dashboard's Host and Origin checks: the input is
// a Host header, a newline, and an Origin header (both attacker-chosen).
// Besides not crashing, a request the rules let through must have a Host
// that parses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "braid/dashboard/request_rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const absl::string_view host = input.substr(0, newline);
  const absl::string_view origin =
      newline == absl::string_view::npos ? absl::string_view() : input.substr(newline + 1);
  const std::vector<std::string> allowed = {"dashboard.example.org", ".corp.example"};
  const bool host_allowed = braid::dashboard::HostAllowed(host, allowed);
  const bool same_origin = braid::dashboard::SameOrigin(origin, host);
  if ((host_allowed || (same_origin && !origin.empty())) &&
      braid::dashboard::HostOfHostHeader(host).empty()) {
    std::abort();  // a request was let through on a Host that does not parse
  }
  return 0;
}
