// The `braid` program's usage text, printed for --help and bad arguments.
#ifndef BRAID_CLI_USAGE_H_
#define BRAID_CLI_USAGE_H_

namespace braid::cli {

inline constexpr char kUsage[] =
    "usage:\n"
    "  braid validate FILE [--allow-path DIR,...] [--max-workers N] [--max-memory-mib M]\n"
    "  braid run FILE [--workdir DIR] [--summary PATH] [--baselines] [--dashboard HOST:PORT]\n"
    "            [--insecure] [--tenants TENANTS.yaml]\n"
    "      --dashboard serves the dashboard (web app + /api/) while the job runs and keeps\n"
    "      serving after it ends, until Ctrl-C; open the URL it prints (it carries this run's\n"
    "      secret: http://HOST:PORT/#token=...). --dashboard-allowed-hosts NAMES,\n"
    "      --dashboard-max-connections N, --dashboard-max-event-streams N\n"
    "      --insecure runs plaintext gRPC instead of mTLS with per-run certificates\n"
    "      --tenants checks the job against those Tenants' policy; a tenant with\n"
    "      requireApproval holds the job in AwaitingApproval until braid approve\n"
    "      --allow-path lets the job's local paths name these folders besides its own\n"
    "      --max-workers, --max-memory-mib raise the bounds on what a job may ask of this\n"
    "      machine (default max(64, 16 x CPUs) workers, the machine's memory)\n"
    "  braid approve --workdir DIR --tenant T [--refuse] [--comment TEXT]\n"
    "  braid audit verify FILE [--summary SUMMARY | --expect-entries N --expect-head HASH]\n"
    "                                   exit 0 chain ok and holds its anchor (the head kept in\n"
    "                                   state.json / summary.json / the job's status.audit;\n"
    "                                   found beside FILE when not given), 1 broken or cut\n"
    "                                   (names the entry, or how many are missing), 2 unreadable\n"
    "  braid audit show FILE [--json]\n";

}  // namespace braid::cli

#endif  // BRAID_CLI_USAGE_H_
