// A braid-aggregator child process for the benchmarks that measure it over
// gRPC (ingest_bench, secagg_round_bench).
#ifndef BRAID_BENCH_AGGREGATOR_PROCESS_H_
#define BRAID_BENCH_AGGREGATOR_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace braid::bench {

struct AggregatorProcess {
  pid_t pid = -1;
  int port = 0;

  std::string address() const { return absl::StrCat("127.0.0.1:", port); }

  // SIGTERM, then waits for it to exit.
  void Stop() const {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
};

// CPU seconds (user + system) a process has used so far.
inline double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command name; utime and stime are the
  // 14th and 15th of the whole line.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i >= 14) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The value of "--NAME VALUE" on the command line as an int, or `fallback`.
inline int IntArg(int argc, char** argv, const std::string& name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

// For profiling one timed window: with BRAID_PERF_CONTROL=FIFO set, writes
// `command` ("enable" or "disable") to FIFO, for
// `perf record -D -1 --control=fifo:FIFO ...`. Does nothing otherwise.
inline void PerfControl(const char* command) {
  if (const char* fifo = std::getenv("BRAID_PERF_CONTROL")) std::ofstream(fifo) << command << "\n";
}

// Starts the braid-aggregator next to this binary on the job in `dir`
// (job.yaml, init.safetensors), checkpointing to dir/ckpt, on a free
// loopback port, with no metrics listener, a 10 min start grace and no
// linger, then `extra_flags` (which may override those); waits up to 30 s
// for it to serve, failing at once if it exits first.
inline absl::StatusOr<AggregatorProcess> StartAggregator(
    const std::filesystem::path& dir, const std::vector<std::string>& extra_flags) {
  namespace fs = std::filesystem;
  const std::string bin =
      (fs::read_symlink("/proc/self/exe").parent_path() / "braid-aggregator").string();
  const std::string port_file = (dir / "port").string();
  std::vector<std::string> args = {bin,
                                   "--job=" + (dir / "job.yaml").string(),
                                   "--checkpoint-dir=" + (dir / "ckpt").string(),
                                   "--initial-model=" + (dir / "init.safetensors").string(),
                                   "--port-file=" + port_file,
                                   "--metrics-listen=",
                                   "--start-grace=10m",
                                   "--linger=0s"};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  AggregatorProcess process;
  process.pid = ::fork();
  if (process.pid < 0) return absl::InternalError("fork failed");
  if (process.pid == 0) {
    ::execv(bin.c_str(), argv.data());
    _exit(127);
  }
  for (int i = 0; i < 600 && process.port == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    int status = 0;
    if (::waitpid(process.pid, &status, WNOHANG) == process.pid) {
      return absl::UnavailableError(
          absl::StrCat(bin, " exited before serving (status ", status, "); see its stderr"));
    }
    std::ifstream in(port_file);
    in >> process.port;
  }
  if (process.port == 0) {
    process.Stop();
    return absl::UnavailableError(absl::StrCat(bin, " did not start serving within 30 s"));
  }
  return process;
}

}  // namespace braid::bench

#endif  // BRAID_BENCH_AGGREGATOR_PROCESS_H_
