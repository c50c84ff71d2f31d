#include "braid/cli/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace braid::cli {
namespace {

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string LastLines(const std::string& path, int n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > n) lines.erase(lines.begin());
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

absl::StatusOr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                             const std::string& log_path,
                                             const std::string& stdout_path) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return absl::UnavailableError(absl::StrCat(log_path, ": cannot open: ", std::strerror(errno)));
  }
  int out_fd = log_fd;
  if (!stdout_path.empty()) {
    out_fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      ::close(log_fd);
      return absl::UnavailableError(absl::StrCat(stdout_path, ": cannot open"));
    }
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    if (out_fd != log_fd) ::close(out_fd);
    return absl::UnavailableError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: own process group (a terminal's Ctrl-C reaches only the
    // parent, which stops children in order), die with the parent.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(1);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execv(args[0], args.data());
    const std::string msg = absl::StrCat("exec ", argv[0], ": ", std::strerror(errno), "\n");
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    _exit(127);
  }
  ::close(log_fd);
  if (out_fd != log_fd) ::close(out_fd);
  return Subprocess(pid);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_code_(other.exit_code_) {}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_code_) Terminate();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = other.exit_code_;
  }
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_) Terminate();
}

std::optional<int> Subprocess::Poll() {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) exit_code_ = DecodeWaitStatus(status);
  return exit_code_;
}

int Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Poll()) {
    if (absl::Now() >= deadline) {
      Signal(SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exit_code_ = DecodeWaitStatus(status);
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return *exit_code_;
}

int Subprocess::Terminate(absl::Duration grace) {
  if (Poll()) return *exit_code_;
  Signal(SIGTERM);
  return Wait(grace);
}

void Subprocess::Signal(int signal) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, signal);
}

absl::StatusOr<std::string> RunForOutput(const std::vector<std::string>& argv,
                                         const std::string& log_path, absl::Duration timeout) {
  const std::string out_path = log_path + ".out";
  absl::StatusOr<Subprocess> proc = Subprocess::Start(argv, log_path, out_path);
  if (!proc.ok()) return proc.status();
  const int code = proc->Wait(timeout);
  std::ifstream in(out_path);
  std::stringstream out;
  out << in.rdbuf();
  if (code != 0) {
    return absl::InternalError(absl::StrCat(
        std::filesystem::path(argv[0]).filename().string(), " ", argv.size() > 1 ? argv[1] : "",
        " exited with ", code, " (log: ", log_path, "):\n", LastLines(log_path, 5)));
  }
  return out.str();
}

std::string SelfDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

}  // namespace braid::cli
