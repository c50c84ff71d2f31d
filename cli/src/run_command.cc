#include "braid/cli/run_command.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "braid/cli/dashboard_local.h"
#include "braid/cli/local_consent.h"
#include "braid/cli/local_runtime.h"
#include "braid/cli/subprocess.h"
#include "braid/core/audit_log.h"
#include "braid/core/spec.h"
#include "braid/dashboard/auth.h"
#include "braid/dashboard/event_feed.h"
#include "braid/dashboard/server.h"

namespace braid::cli {
namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted = true; }

// Language-model jobs (their evaluations carry perplexity) compare loss per
// token, lower is better, with the base model as a third yardstick;
// classifiers compare accuracy.
void PrintLmComparison(const nlohmann::json& s) {
  const nlohmann::json& pooled = s["final"]["pooled"];
  const double fed = pooled.value("eval_loss", 0.0);
  std::cout << absl::StrFormat("pooled held-out loss per token: federated %.4f (perplexity %.3f)\n",
                               fed, pooled.value("perplexity", 0.0));
  auto line = [&](const std::string& who, const nlohmann::json& r) {
    const double loss = r.value("eval_loss", 0.0);
    std::cout << absl::StrFormat("  %-27s %.4f (perplexity %.3f)  federated %s by %.4f\n", who,
                                 loss, r.value("perplexity", 0.0),
                                 fed < loss ? "ahead" : "BEHIND", loss - fed);
  };
  if (s["final"].contains("base")) line("base model", s["final"]["base"]);
  if (!s.contains("baselines")) return;
  for (const auto& [tenant, b] : s["baselines"].items()) line("local-only " + tenant, b["pooled"]);
}

void PrintComparison(const nlohmann::json& s) {
  if (!s.contains("final")) return;
  if (s["final"]["pooled"].contains("perplexity")) return PrintLmComparison(s);
  const double fed = s["final"]["pooled"].value("eval_accuracy", 0.0);
  std::cout << absl::StrFormat("pooled held-out accuracy: federated %.4f (loss %.4f)\n", fed,
                               s["final"]["pooled"].value("eval_loss", 0.0));
  if (!s.contains("baselines")) return;
  for (const auto& [tenant, b] : s["baselines"].items()) {
    const double acc = b["pooled"].value("eval_accuracy", 0.0);
    std::cout << absl::StrFormat("  local-only %-16s %.4f (loss %.4f)  federated %s by %+.4f\n",
                                 tenant, acc, b["pooled"].value("eval_loss", 0.0),
                                 fed > acc ? "ahead" : "BEHIND", fed - acc);
  }
}

}  // namespace

spec::MachineLimits LimitsFromFlags(int64_t max_workers, int64_t max_memory_mib) {
  spec::MachineLimits limits = spec::DefaultMachineLimits();
  if (max_workers > 0) limits.max_worker_processes = max_workers;
  if (max_memory_mib > 0) limits.max_memory_bytes = max_memory_mib << 20;
  return limits;
}

int RunCommand(const std::string& file, const RunFlags& flags) {
  spec::ParseOptions parse_options;
  parse_options.allowed_dirs = flags.allowed_dirs;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobFile(file, parse_options);
  if (!job.ok()) {
    std::cerr << file << ":\n" << job.status().message() << "\n";
    return 2;
  }
  // What cannot run here is refused before a process starts.
  if (std::vector<spec::FieldError> too_big = spec::CheckMachineLimits(
          *job, LimitsFromFlags(flags.max_workers, flags.max_memory_mib));
      !too_big.empty()) {
    std::cerr << file << ":\n";
    for (const spec::FieldError& e : too_big) std::cerr << e.ToString() << "\n";
    return 2;
  }
  if (job->suspend) {
    std::cerr << file << ": spec.suspend is true; set it to false to run the job\n";
    return 2;
  }
  LocalRunOptions options;
  if (const std::string tenants = flags.tenants; !tenants.empty()) {
    absl::StatusOr<std::map<std::string, nlohmann::json>> objects =
        ReadTenantsFile(tenants);
    if (!objects.ok()) {
      std::cerr << "braid run: " << objects.status().message() << "\n";
      return 2;
    }
    options.tenants = *std::move(objects);
  }
  options.job_file = fs::absolute(file).string();
  options.workdir = flags.workdir;
  if (options.workdir.empty()) options.workdir = (fs::path(".braid") / job->name).string();
  options.bin_dir = SelfDir();
  options.allowed_dirs = flags.allowed_dirs;
  options.baselines = flags.baselines;
  options.insecure = flags.insecure;
  options.interrupted = &g_interrupted;
  options.progress = &std::cout;
  options.progress_bar = ::isatty(STDOUT_FILENO) == 1;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, OnSignal);

  // The dashboard: its own threads read a copy of the status the runtime
  // hands over, so serving never slows the job.
  dashboard::EventFeed feed;
  LocalDashboardSource source(
      *job, LocalAuditLogPath(options.workdir), &feed,
      LocalTenancy{options.workdir, options.tenants,
                              audit::FileSha256Hex(options.job_file).value_or("")});
  std::unique_ptr<dashboard::DashboardServer> server_running;
  std::unique_ptr<dashboard::DashboardAuthorizer> dashboard_auth;
  std::string dashboard_url;
  if (const std::string addr = flags.dashboard; !addr.empty()) {
    // A secret for this run: the URL printed below carries it to the page
    // (after "#", so it is never sent in a request line or a Referer).
    absl::StatusOr<std::string> token = dashboard::NewDashboardToken();
    if (!token.ok()) {
      std::cerr << "braid run: " << token.status().message() << "\n";
      return 1;
    }
    dashboard_auth = dashboard::NewLocalTokenAuthorizer(*token, "dashboard");
    dashboard::DashboardOptions dopts;
    dopts.address = addr;
    dopts.authorizer = dashboard_auth.get();
    dopts.allowed_hosts = flags.dashboard_allowed_hosts;
    dopts.limits.max_connections = std::max(1, flags.dashboard_max_connections);
    dopts.limits.max_connections_per_client = std::max(1, dopts.limits.max_connections / 2);
    dopts.limits.max_event_streams = std::max(1, flags.dashboard_max_event_streams);
    dopts.limits.max_event_streams_per_client = std::max(1, dopts.limits.max_event_streams / 2);
    dopts.static_dir = flags.web_dir;
    if (dopts.static_dir.empty()) {
      absl::StatusOr<std::string> dir = dashboard::FindWebDir(options.bin_dir);
      if (!dir.ok()) {
        std::cerr << "braid run: " << dir.status().message() << "\n";
        return 2;
      }
      dopts.static_dir = *dir;
    }
    absl::StatusOr<std::unique_ptr<dashboard::DashboardServer>> server =
        dashboard::DashboardServer::Start(dopts, &source, &feed);
    if (!server.ok()) {
      std::cerr << "braid run: " << server.status().message() << "\n";
      return 2;
    }
    server_running = *std::move(server);
    dashboard_url = absl::StrCat(server_running->url(), "#token=", *token);
    std::cout << "dashboard: " << dashboard_url << std::endl;
    options.on_status = [&source](const nlohmann::json& status) { source.Update(status); };
  }

  absl::StatusOr<nlohmann::json> summary = RunLocal(*job, options);
  if (!summary.ok()) {
    std::cerr << "braid run: " << summary.status().message() << "\n";
    return g_interrupted ? 130 : 1;
  }
  std::string path = flags.summary;
  if (path.empty()) path = (fs::path(options.workdir) / "summary.json").string();
  std::ofstream(path) << summary->dump(2) << "\n";
  const std::string phase = (*summary)["phase"];
  std::cout << "job " << job->name << ": " << phase << " (" << (*summary)["reason"].get<std::string>()
            << ") " << (*summary)["message"].get<std::string>() << "\n";
  PrintComparison(*summary);
  if (summary->contains("model")) std::cout << "model: " << (*summary)["model"].get<std::string>() << "\n";
  std::cout << "summary: " << path << "\n";
  if (g_interrupted) return 130;
  const int code = phase == "Succeeded" ? 0 : 1;
  if (server_running) {
    std::cout << "dashboard: still serving at " << dashboard_url << "; press Ctrl-C to stop"
              << std::endl;
    while (!g_interrupted) absl::SleepFor(absl::Milliseconds(200));  // until a signal
    server_running->Stop();
  }
  return code;
}

}  // namespace braid::cli
