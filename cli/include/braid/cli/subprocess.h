// Child processes for the local runtime: started in their own process group
// with stdout/stderr to a log file, killed with the parent if it dies
// (PR_SET_PDEATHSIG), and terminated politely (SIGTERM, then SIGKILL).
#ifndef BRAID_CLI_SUBPROCESS_H_
#define BRAID_CLI_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace braid::cli {

class Subprocess {
 public:
  // Starts argv[0] (a path) with `argv`. Output (stdout and stderr) is
  // appended to `log_path`; when `stdout_path` is set, stdout goes there
  // instead. Unavailable if fork/exec fails (the exec error is in the log).
  static absl::StatusOr<Subprocess> Start(const std::vector<std::string>& argv,
                                          const std::string& log_path,
                                          const std::string& stdout_path = "");
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Terminates the child if it still runs.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // The exit code (128 + signal if killed) once exited; nullopt while running.
  std::optional<int> Poll();
  // Waits for exit; SIGKILL after `timeout`. Returns the exit code.
  int Wait(absl::Duration timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit code.
  int Terminate(absl::Duration grace = absl::Seconds(5));
  // Sends `signal` without waiting.
  void Signal(int signal);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs argv to completion (up to `timeout`) and returns its stdout; the
// error names the command, its exit code and the last lines of its log.
absl::StatusOr<std::string> RunForOutput(const std::vector<std::string>& argv,
                                         const std::string& log_path, absl::Duration timeout);

// The directory holding the running executable (for sibling binaries).
std::string SelfDir();

}  // namespace braid::cli

#endif  // BRAID_CLI_SUBPROCESS_H_
