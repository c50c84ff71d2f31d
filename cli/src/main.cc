// braid: the command line.
//
//   braid validate FILE       print every problem of a job file; exit 2 if any
//   braid run FILE [--workdir DIR] [--summary PATH] [--baselines] [--dashboard ADDR]
//             [--insecure] [--tenants TENANTS.yaml]
//             [--allow-path DIR,...] [--max-workers N] [--max-memory-mib M]
//                             run the job on this machine as local processes
//                             (mTLS on loopback with per-run certificates;
//                             --tenants: Tenant objects, policy and consent)
//   braid approve --workdir DIR --tenant T [--refuse] [--comment TEXT]
//                             record a tenant's decision for the run in DIR
//   braid audit verify FILE [--summary F | --expect-entries N --expect-head H]
//                             check an audit log's hash chain and its head
//   braid audit show FILE [--json]
//
// Each command is in its own file (validate_command.cc, run_command.cc,
// approve_command.cc, audit_command.cc); this file parses the flags and
// dispatches.
//
// Exit status of run: 0 the job succeeded, 1 it failed, 2 invalid job file
// or dashboard address, 130 interrupted (during the job). With --dashboard
// the dashboard keeps serving after the job ends until Ctrl-C; the exit
// status is then the job's. Approve: 0 recorded, 2 bad arguments or no such
// run/tenant. Audit: 0 the chain verifies, 1 it is broken, 2 the file cannot
// be read.
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "braid/cli/approve_command.h"
#include "braid/cli/audit_command.h"
#include "braid/cli/run_command.h"
#include "braid/cli/usage.h"
#include "braid/cli/validate_command.h"
#include "braid/core/cli_flags.h"

ABSL_FLAG(std::string, workdir, "", "run: working directory (default .braid/<job name>)");
ABSL_FLAG(std::string, summary, "",
          "run: write the JSON summary here (default <workdir>/summary.json); audit verify: "
          "check the log holds the audit head recorded in this summary.json");
ABSL_FLAG(int64_t, expect_entries, -1,
          "audit verify: the log must hold this many entries at least (with --expect-head; "
          "the job's status.audit.entries)");
ABSL_FLAG(std::string, expect_head, "",
          "audit verify: the hash of entry --expect-entries (the job's status.audit.head)");
ABSL_FLAG(bool, baselines, false,
          "run: also train each tenant's local-only model with the same budget");
ABSL_FLAG(bool, insecure, false,
          "run: plaintext gRPC on loopback instead of mTLS with per-run certificates "
          "(<workdir>/tls)");
ABSL_FLAG(std::string, dashboard, "",
          "run: serve the dashboard at HOST:PORT (e.g. 127.0.0.1:8080; port 0 picks a free one) "
          "and print its URL with a secret made for this run (http://HOST:PORT/#token=...): "
          "the API answers only that token. Binds only that address. The dashboard keeps serving after the "
          "job ends until Ctrl-C");
ABSL_FLAG(std::vector<std::string>, dashboard_allowed_hosts, {},
          "run: host names (besides IP addresses and localhost) the dashboard may be reached by, "
          "comma-separated; \".example.org\" allows every name under it. Other Host headers "
          "get 421 (DNS rebinding)");
ABSL_FLAG(int, dashboard_max_connections, 64,
          "run: open dashboard connections at most (half of them from one address); beyond: 503");
ABSL_FLAG(int, dashboard_max_event_streams, 16,
          "run: open dashboard event streams at most (half of them from one address)");
ABSL_FLAG(std::string, web_dir, "",
          "run: the built web app to serve with --dashboard (default $BRAID_WEB_DIR, else "
          "<braid's dir>/../share/braid/web)");
ABSL_FLAG(bool, json, false, "audit show: print JSON");
ABSL_FLAG(std::string, tenants, "",
          "run: Tenant objects (YAML, as for kubectl apply) whose policy the job must meet and "
          "whose consent it may need (spec.policy.requireApproval)");
ABSL_FLAG(std::vector<std::string>, allow_path, {},
          "run, validate: folders (comma-separated) outside the job file's folder that the "
          "job's local paths (data, model base, pooled set) may name; by default they must "
          "stay in the job file's folder");
ABSL_FLAG(int64_t, max_workers, 0,
          "run, validate: the most worker processes a job may start here (default "
          "max(64, 16 x CPUs))");
ABSL_FLAG(int64_t, max_memory_mib, 0,
          "run, validate: the most memory (MiB) a job's processes are estimated to need "
          "(default the machine's MemTotal)");
ABSL_FLAG(std::string, tenant, "", "approve: the tenant that decides");
ABSL_FLAG(bool, refuse, false, "approve: refuse (or revoke) instead of approving");
ABSL_FLAG(std::string, comment, "", "approve: a comment kept with the decision and in the audit log");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(braid::cli::kUsage);
  const std::vector<std::string> args = braid::ParseFlags(argc, argv);
  const std::string command = args.size() > 1 ? args[1] : "";
  if (command == "validate" && args.size() == 3) {
    return braid::cli::ValidateCommand(
        args[2], std::cout, std::cerr, absl::GetFlag(FLAGS_allow_path),
        braid::cli::LimitsFromFlags(absl::GetFlag(FLAGS_max_workers),
                                    absl::GetFlag(FLAGS_max_memory_mib)));
  }
  if (command == "run" && args.size() == 3) {
    braid::cli::RunFlags flags;
    flags.workdir = absl::GetFlag(FLAGS_workdir);
    flags.summary = absl::GetFlag(FLAGS_summary);
    flags.baselines = absl::GetFlag(FLAGS_baselines);
    flags.insecure = absl::GetFlag(FLAGS_insecure);
    flags.dashboard = absl::GetFlag(FLAGS_dashboard);
    flags.web_dir = absl::GetFlag(FLAGS_web_dir);
    flags.dashboard_allowed_hosts = absl::GetFlag(FLAGS_dashboard_allowed_hosts);
    flags.dashboard_max_connections = absl::GetFlag(FLAGS_dashboard_max_connections);
    flags.dashboard_max_event_streams = absl::GetFlag(FLAGS_dashboard_max_event_streams);
    flags.tenants = absl::GetFlag(FLAGS_tenants);
    flags.allowed_dirs = absl::GetFlag(FLAGS_allow_path);
    flags.max_workers = absl::GetFlag(FLAGS_max_workers);
    flags.max_memory_mib = absl::GetFlag(FLAGS_max_memory_mib);
    return braid::cli::RunCommand(args[2], flags);
  }
  if (command == "approve" && args.size() == 2) {
    braid::cli::ApproveFlags flags;
    flags.workdir = absl::GetFlag(FLAGS_workdir);
    flags.tenant = absl::GetFlag(FLAGS_tenant);
    flags.refuse = absl::GetFlag(FLAGS_refuse);
    flags.comment = absl::GetFlag(FLAGS_comment);
    return braid::cli::ApproveCommand(flags, std::cout, std::cerr);
  }
  if (command == "audit" && args.size() == 4 && args[2] == "verify") {
    braid::cli::AuditVerifyOptions options;
    options.expect_entries = absl::GetFlag(FLAGS_expect_entries);
    options.expect_head = absl::GetFlag(FLAGS_expect_head);
    options.summary = absl::GetFlag(FLAGS_summary);
    return braid::cli::AuditVerify(args[3], options, std::cout, std::cerr);
  }
  if (command == "audit" && args.size() == 4 && args[2] == "show") {
    return braid::cli::AuditShow(args[3], absl::GetFlag(FLAGS_json), std::cout, std::cerr);
  }
  std::cerr << braid::cli::kUsage;
  return 2;
}
