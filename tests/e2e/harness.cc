#include "tests/e2e/harness.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "braid/worker/federation_client.h"

namespace braid::e2e {

namespace fs = std::filesystem;

// The build and source trees: compiled in, overridable by the environment.
static std::string Env(const char* name) {
  const char* v = std::getenv(name);
  if (v != nullptr) return v;
  return std::string(name) == "BRAID_BUILD_DIR" ? BRAID_BUILD_DIR : BRAID_SOURCE_DIR;
}

std::string Binary(const std::string& name) {
  return (fs::path(Env("BRAID_BUILD_DIR")) / "bin" / name).string();
}

std::string SourcePath(const std::string& relative) {
  return (fs::path(Env("BRAID_SOURCE_DIR")) / relative).string();
}

std::string FreshDir(const std::string& name) {
  const fs::path dir = fs::path(testing::TempDir()) / absl::StrCat("braid-", name, "-", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

int RunBraid(const std::string& dir, const std::string& name, const std::vector<std::string>& args,
             std::string* out) {
  std::vector<std::string> argv = {Binary("braid")};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = dir + "/" + name + ".log";
  auto proc = cli::Subprocess::Start(argv, log, log);
  if (!proc.ok()) {
    *out = proc.status().ToString();
    return -1;
  }
  const int code = proc->Wait(absl::Seconds(100));
  *out = ReadFile(log);
  return code;
}

std::string WriteTabularJob(const std::string& dir, const std::string& strategy) {
  fs::create_directories(fs::path(dir) / "data");
  for (const char* f : {"st-mary.csv", "charite.csv", "karolinska.csv", "pooled-test.csv"}) {
    fs::copy_file(SourcePath(std::string("examples/data/") + f), fs::path(dir) / "data" / f,
                  fs::copy_options::overwrite_existing);
  }
  std::string yaml = ReadFile(SourcePath("examples/tabular.yaml"));
  const std::string from =
      "strategy: {name: fedavg, rounds: 10, minClients: 2, fractionFit: 1.0, roundTimeout: 2m}";
  EXPECT_NE(yaml.find(from), std::string::npos) << "examples/tabular.yaml changed its strategy line";
  yaml = absl::StrReplaceAll(yaml, {{from, "strategy: " + strategy}});
  const std::string path = (fs::path(dir) / "job.yaml").string();
  WriteFile(path, yaml);
  return path;
}

std::string Aggregator::address() const { return absl::StrCat("127.0.0.1:", port); }

absl::StatusOr<Aggregator> StartAggregator(const std::string& job, const std::string& dir,
                                           const std::string& initial_model, int port,
                                           const std::vector<std::string>& extra_flags,
                                           const std::string& binary) {
  const std::string port_file = (fs::path(dir) / "aggregator.port").string();
  fs::remove(port_file);
  std::vector<std::string> argv = {Binary(binary),
                                   "--job", job,
                                   "--checkpoint-dir", (fs::path(dir) / "checkpoint").string(),
                                   "--listen", absl::StrCat("127.0.0.1:", port),
                                   "--port-file", port_file,
                                   "--metrics-listen", ""};
  if (!initial_model.empty()) {
    argv.push_back("--initial-model");
    argv.push_back(initial_model);
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  absl::StatusOr<cli::Subprocess> proc =
      cli::Subprocess::Start(argv, (fs::path(dir) / "aggregator.log").string());
  if (!proc.ok()) return proc.status();
  Aggregator agg{*std::move(proc), 0};
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (auto code = agg.proc.Poll()) {
      return absl::InternalError(absl::StrCat(binary, " exited with ", *code, ":\n",
                                              ReadFile((fs::path(dir) / "aggregator.log").string())));
    }
    std::ifstream in(port_file);
    if (in >> agg.port && agg.port > 0) return agg;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(binary, " did not listen within 30s"));
}

absl::StatusOr<v1::JobStatus> WaitForStatus(
    const std::string& address, absl::Duration timeout,
    const std::function<bool(const v1::JobStatus&)>& pred) {
  worker::FederationClient client(address);
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::DeadlineExceededError("no status yet");
  v1::JobStatus seen;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::JobStatus> s = client.GetStatus(absl::Seconds(2));
    if (s.ok()) {
      seen = *s;
      if (pred(*s)) return s;
    } else {
      last = s.status();
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("condition not met within ",
                                                  absl::FormatDuration(timeout), "; last status: ",
                                                  seen.ShortDebugString(), " / ", last.message()));
}

}  // namespace braid::e2e
