// The file through which a server started with port 0 tells others its port
// (braid-aggregator --port-file): one decimal port and a newline, written
// atomically (temporary file, then rename), so a reader never sees a part.
#ifndef BRAID_CORE_PORT_FILE_H_
#define BRAID_CORE_PORT_FILE_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"

namespace braid {

// The port in `path`; nullopt while the file is missing or does not hold a
// port in [1, 65535].
std::optional<int> ReadPortFile(const std::string& path);

// Waits for `path` to hold a port, looking every 20 ms on `clock` (not
// owned, never null). DeadlineExceeded, naming the file, if `timeout`
// passes first.
absl::StatusOr<int> AwaitPortFile(const std::string& path, absl::Duration timeout, Clock* clock);

}  // namespace braid

#endif  // BRAID_CORE_PORT_FILE_H_
