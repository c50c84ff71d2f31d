// Helpers for end-to-end tests: real braid binaries as child processes on
// loopback, in a fresh temporary directory per test.
#ifndef BRAID_TESTS_E2E_HARNESS_H_
#define BRAID_TESTS_E2E_HARNESS_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/cli/subprocess.h"
#include "braid/v1/federation.pb.h"

namespace braid::e2e {

// $BRAID_BUILD_DIR/bin/<name>; fails the test if unset.
std::string Binary(const std::string& name);
// $BRAID_SOURCE_DIR/<relative>.
std::string SourcePath(const std::string& relative);
// A new empty directory under the test's temp dir.
std::string FreshDir(const std::string& name);
// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text);

// Copies examples/tabular.yaml and its data into `dir` with the given
// strategy overrides (YAML flow map text, e.g. "{rounds: 4, minClients: 2}").
std::string WriteTabularJob(const std::string& dir, const std::string& strategy);

// Runs `braid args...` (stdout and stderr into <dir>/<name>.log) until it
// exits, at most 100 s (under ctest's 120 s bound; then it is killed);
// returns its exit code (128 + signal if killed, -1 if it could not start)
// and the log in `out`.
int RunBraid(const std::string& dir, const std::string& name, const std::vector<std::string>& args,
             std::string* out);

struct Aggregator {
  cli::Subprocess proc;
  int port = 0;
  std::string address() const;
};
// Starts `binary` (in $BRAID_BUILD_DIR/bin: braid-aggregator, or the
// test-only braid-aggregator-testing for its hooks) on `port` (0 = any)
// and waits until it listens.
absl::StatusOr<Aggregator> StartAggregator(const std::string& job, const std::string& dir,
                                           const std::string& initial_model, int port,
                                           const std::vector<std::string>& extra_flags = {},
                                           const std::string& binary = "braid-aggregator");

// Polls the aggregator's status until `pred` holds or `timeout` passes.
absl::StatusOr<v1::JobStatus> WaitForStatus(
    const std::string& address, absl::Duration timeout,
    const std::function<bool(const v1::JobStatus&)>& pred);

}  // namespace braid::e2e

#endif  // BRAID_TESTS_E2E_HARNESS_H_
