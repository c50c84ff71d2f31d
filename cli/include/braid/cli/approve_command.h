// `braid approve --workdir DIR --tenant T [--refuse] [--comment TEXT]`.
#ifndef BRAID_CLI_APPROVE_COMMAND_H_
#define BRAID_CLI_APPROVE_COMMAND_H_

#include <ostream>
#include <string>

namespace braid::cli {

struct ApproveFlags {
  std::string workdir;  // the run's working directory (required)
  std::string tenant;   // the tenant that decides (required)
  bool refuse = false;  // refuse (or revoke) instead of approving
  std::string comment;  // kept with the decision and in the audit log
};

// Records the decision for the run in flags.workdir as by the current Unix
// user (local_consent.h RecordDecision) and prints it to `out`; returns 0.
// Returns 2 with the reason (and, for missing flags, the usage) on `err`
// for missing flags, a workdir without a `braid run --tenants`, or a tenant
// that is not the job's.
int ApproveCommand(const ApproveFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace braid::cli

#endif  // BRAID_CLI_APPROVE_COMMAND_H_
