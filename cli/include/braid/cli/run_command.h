// `braid run FILE`: the job on this machine (local_runtime.h), with the
// dashboard when asked, the summary written and the result printed.
#ifndef BRAID_CLI_RUN_COMMAND_H_
#define BRAID_CLI_RUN_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "braid/core/job_footprint.h"

namespace braid::cli {

struct RunFlags {
  std::string workdir;    // default .braid/<job name>
  std::string summary;    // default <workdir>/summary.json
  bool baselines = false; // also train each tenant's local-only model
  bool insecure = false;  // plaintext gRPC instead of mTLS with per-run certificates
  std::string dashboard;  // HOST:PORT to serve the dashboard at; empty: none
  std::string web_dir;    // the built web app; default FindWebDir(<braid's dir>)
  std::vector<std::string> dashboard_allowed_hosts;  // DashboardOptions::allowed_hosts
  int dashboard_max_connections = 64;    // DashboardLimits (half per address)
  int dashboard_max_event_streams = 16;  // DashboardLimits (half per address)
  std::string tenants;    // Tenant objects (YAML); empty: no policy, no consent
  // Folders outside the job file's that its local paths (data, model base,
  // pooled set) may name (--allow-path); default none.
  std::vector<std::string> allowed_dirs;
  // Bounds on what the job may ask of this machine (--max-workers,
  // --max-memory-mib); 0 = the machine's default (spec::DefaultMachineLimits).
  int64_t max_workers = 0;
  int64_t max_memory_mib = 0;
};

// The machine limits `flags` ask for: each 0 field takes the default.
spec::MachineLimits LimitsFromFlags(int64_t max_workers, int64_t max_memory_mib);

// Runs the job file `file` to its end, printing progress and the result to
// stdout. A dashboard is served with a fresh secret; its URL, printed first
// ("dashboard: http://HOST:PORT/#token=SECRET"), carries it to the page. With a dashboard it keeps serving after the job ends until
// SIGINT/SIGTERM/SIGHUP. Returns 0 when the job succeeded, 1 when it failed
// (or could not run), 2 for an invalid job file, Tenants file or dashboard
// address, 130 when interrupted.
int RunCommand(const std::string& file, const RunFlags& flags);

}  // namespace braid::cli

#endif  // BRAID_CLI_RUN_COMMAND_H_
