// braid: the command line.
//
//   braid validate FILE       print every problem of a job file; exit 2 if any
//   braid run FILE [--workdir DIR] [--summary PATH] [--baselines] [--dashboard ADDR]
//             [--insecure]    run the job on this machine as local processes
//                             (mTLS on loopback with per-run certificates)
//             [--tenants TENANTS.yaml]  Tenant objects: policy and consent
//   braid approve --workdir DIR --tenant T [--refuse] [--comment TEXT]
//                             record a tenant's decision for the run in DIR
//   braid audit verify FILE   check an audit log's hash chain
//   braid audit show FILE [--json]
//
// Exit status of approve: 0 recorded, 2 bad arguments or no such run/tenant.
// Exit status of run: 0 the job succeeded, 1 it failed, 2 invalid job file
// or dashboard address, 130 interrupted (during the job). With --dashboard
// the dashboard keeps serving after the job ends until Ctrl-C; the exit
// status is then the job's. Audit: 0 the chain verifies, 1 it is broken, 2
// the file cannot be read.
#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "braid/core/cli_flags.h"
#include "braid/core/audit_log.h"
#include "braid/core/file_io.h"
#include "braid/core/spec.h"
#include "braid/operator/audit_command.h"
#include "braid/operator/dashboard_local.h"
#include "braid/operator/dashboard_server.h"
#include "braid/operator/local_consent.h"
#include "braid/operator/local_runtime.h"
#include "braid/operator/subprocess.h"

ABSL_FLAG(std::string, workdir, "", "run: working directory (default .braid/<job name>)");
ABSL_FLAG(std::string, summary, "", "run: write the JSON summary here (default <workdir>/summary.json)");
ABSL_FLAG(bool, baselines, false,
          "run: also train each tenant's local-only model with the same budget");
ABSL_FLAG(bool, insecure, false,
          "run: plaintext gRPC on loopback instead of mTLS with per-run certificates "
          "(<workdir>/tls)");
ABSL_FLAG(std::string, dashboard, "",
          "run: serve the dashboard at HOST:PORT (e.g. 127.0.0.1:8080; port 0 picks a free one "
          "and prints the URL). Binds only that address. The dashboard keeps serving after the "
          "job ends until Ctrl-C");
ABSL_FLAG(std::string, web_dir, "",
          "run: the built web app to serve with --dashboard (default $BRAID_WEB_DIR, else "
          "<braid's dir>/../share/braid/web)");
ABSL_FLAG(bool, json, false, "audit show: print JSON");
ABSL_FLAG(std::string, tenants, "",
          "run: Tenant objects (YAML, as for kubectl apply) whose policy the job must meet and "
          "whose consent it may need (spec.policy.requireApproval)");
ABSL_FLAG(std::string, tenant, "", "approve: the tenant that decides");
ABSL_FLAG(bool, refuse, false, "approve: refuse (or revoke) instead of approving");
ABSL_FLAG(std::string, comment, "", "approve: a comment kept with the decision and in the audit log");

namespace {

namespace fs = std::filesystem;
std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted = true; }

constexpr char kUsage[] =
    "usage:\n"
    "  braid validate FILE\n"
    "  braid run FILE [--workdir DIR] [--summary PATH] [--baselines] [--dashboard HOST:PORT]\n"
    "            [--insecure]\n"
    "      --dashboard serves the dashboard (web app + /api/) while the job runs and keeps\n"
    "      serving after it ends, until Ctrl-C\n"
    "      --insecure runs plaintext gRPC instead of mTLS with per-run certificates\n"
    "            [--tenants TENANTS.yaml]\n"
    "      --tenants checks the job against those Tenants' policy; a tenant with\n"
    "      requireApproval holds the job in AwaitingApproval until braid approve\n"
    "  braid approve --workdir DIR --tenant T [--refuse] [--comment TEXT]\n"
    "  braid audit verify FILE          exit 0 chain ok, 1 broken (names the entry), 2 unreadable\n"
    "  braid audit show FILE [--json]\n";

int Validate(const std::string& file) {
  absl::StatusOr<std::string> text = braid::ReadSmallFile(file, braid::spec::kMaxJobBytes);
  if (!text.ok()) {
    std::cerr << text.status().message() << "\n";
    return 2;
  }
  const std::string dir = fs::absolute(file).parent_path().string();
  const std::vector<braid::spec::FieldError> errors = braid::spec::ValidateJobYaml(*text, dir);
  for (const auto& e : errors) std::cout << file << ": " << e.ToString() << "\n";
  if (!errors.empty()) {
    std::cout << file << ": invalid\n";
    return 2;
  }
  std::cout << file << ": valid\n";
  return 0;
}

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

int Run(const std::string& file) {
  absl::StatusOr<braid::spec::JobSpec> job = braid::spec::ParseJobFile(file);
  if (!job.ok()) {
    std::cerr << file << ":\n" << job.status().message() << "\n";
    return 2;
  }
  if (job->suspend) {
    std::cerr << file << ": spec.suspend is true; set it to false to run the job\n";
    return 2;
  }
  braid::op::LocalRunOptions options;
  if (const std::string tenants = absl::GetFlag(FLAGS_tenants); !tenants.empty()) {
    absl::StatusOr<std::map<std::string, nlohmann::json>> objects =
        braid::op::ReadTenantsFile(tenants);
    if (!objects.ok()) {
      std::cerr << "braid run: " << objects.status().message() << "\n";
      return 2;
    }
    options.tenants = *std::move(objects);
  }
  options.job_file = fs::absolute(file).string();
  options.workdir = absl::GetFlag(FLAGS_workdir);
  if (options.workdir.empty()) options.workdir = (fs::path(".braid") / job->name).string();
  options.bin_dir = braid::op::SelfDir();
  options.baselines = absl::GetFlag(FLAGS_baselines);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.interrupted = &g_interrupted;
  options.progress = &std::cout;
  options.progress_bar = ::isatty(STDOUT_FILENO) == 1;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, OnSignal);

  // The dashboard: its own threads read a copy of the status the runtime
  // hands over, so serving never slows the job.
  braid::op::EventFeed feed;
  braid::op::LocalDashboardSource source(
      *job, braid::op::LocalAuditLogPath(options.workdir), &feed,
      braid::op::LocalTenancy{options.workdir, options.tenants,
                              braid::audit::FileSha256Hex(options.job_file).value_or("")});
  std::unique_ptr<braid::op::DashboardServer> dashboard;
  if (const std::string addr = absl::GetFlag(FLAGS_dashboard); !addr.empty()) {
    braid::op::DashboardOptions dopts;
    dopts.address = addr;
    dopts.static_dir = absl::GetFlag(FLAGS_web_dir);
    if (dopts.static_dir.empty()) {
      absl::StatusOr<std::string> dir = braid::op::FindWebDir(options.bin_dir);
      if (!dir.ok()) {
        std::cerr << "braid run: " << dir.status().message() << "\n";
        return 2;
      }
      dopts.static_dir = *dir;
    }
    absl::StatusOr<std::unique_ptr<braid::op::DashboardServer>> server =
        braid::op::DashboardServer::Start(dopts, &source, &feed);
    if (!server.ok()) {
      std::cerr << "braid run: " << server.status().message() << "\n";
      return 2;
    }
    dashboard = *std::move(server);
    std::cout << "dashboard: " << dashboard->url() << std::endl;
    options.on_status = [&source](const nlohmann::json& status) { source.Update(status); };
  }

  absl::StatusOr<nlohmann::json> summary = braid::op::RunLocal(*job, options);
  if (!summary.ok()) {
    std::cerr << "braid run: " << summary.status().message() << "\n";
    return g_interrupted ? 130 : 1;
  }
  std::string path = absl::GetFlag(FLAGS_summary);
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
  if (dashboard) {
    std::cout << "dashboard: still serving at " << dashboard->url() << "; press Ctrl-C to stop"
              << std::endl;
    while (!g_interrupted) absl::SleepFor(absl::Milliseconds(200));
    dashboard->Stop();
  }
  return code;
}

int Approve() {
  const std::string workdir = absl::GetFlag(FLAGS_workdir);
  const std::string tenant = absl::GetFlag(FLAGS_tenant);
  if (workdir.empty() || tenant.empty()) {
    std::cerr << "braid approve: --workdir DIR and --tenant T are required\n" << kUsage;
    return 2;
  }
  braid::op::Decision d;
  d.tenant = tenant;
  d.approve = !absl::GetFlag(FLAGS_refuse);
  d.comment = absl::GetFlag(FLAGS_comment);
  const passwd* pw = ::getpwuid(::getuid());
  d.by = std::string("braid approve (user ") + (pw != nullptr ? pw->pw_name : std::to_string(::getuid())) + ")";
  absl::StatusOr<nlohmann::json> approval = braid::op::RecordDecision(workdir, d);
  if (!approval.ok()) {
    std::cerr << "braid approve: " << approval.status().message() << "\n";
    return 2;
  }
  std::cout << "tenant " << tenant << ": " << (*approval)["spec"]["decision"].get<std::string>()
            << " for job " << (*approval)["spec"]["job"]["namespace"].get<std::string>() << "/"
            << (*approval)["spec"]["job"]["name"].get<std::string>() << " (recorded in "
            << braid::op::ApprovalsDir(workdir) << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  const std::vector<std::string> args = braid::ParseFlags(argc, argv);
  if (args.size() == 3 && args[1] == "validate") return Validate(args[2]);
  if (args.size() == 3 && args[1] == "run") return Run(args[2]);
  if (args.size() == 2 && args[1] == "approve") return Approve();
  if (args.size() == 4 && args[1] == "audit" && args[2] == "verify") {
    return braid::op::AuditVerify(args[3], std::cout, std::cerr);
  }
  if (args.size() == 4 && args[1] == "audit" && args[2] == "show") {
    return braid::op::AuditShow(args[3], absl::GetFlag(FLAGS_json), std::cout, std::cerr);
  }
  std::cerr << kUsage;
  return 2;
}
