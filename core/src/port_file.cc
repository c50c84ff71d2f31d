#include "braid/core/port_file.h"

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace braid {

std::optional<int> ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  if (!(in >> port) || port < 1 || port > 65535) return std::nullopt;
  return port;
}

absl::StatusOr<int> AwaitPortFile(const std::string& path, absl::Duration timeout, Clock* clock) {
  const absl::Time deadline = clock->Now() + timeout;
  for (;;) {
    if (std::optional<int> port = ReadPortFile(path)) return *port;
    if (clock->Now() >= deadline) break;
    clock->Sleep(absl::Milliseconds(20), nullptr);
  }
  return absl::DeadlineExceededError(absl::StrCat(path, ": no port written within ",
                                                  absl::FormatDuration(timeout)));
}

}  // namespace braid
