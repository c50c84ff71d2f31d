// `braid validate FILE`.
#ifndef BRAID_CLI_VALIDATE_COMMAND_H_
#define BRAID_CLI_VALIDATE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "braid/core/job_footprint.h"

namespace braid::cli {

// Prints every problem of the job file at `file` ("<file>: <path>: <what>")
// and then "<file>: invalid" (returns 2), or "<file>: valid" (returns 0), to
// `out`. Returns 2 with the reason on `err` when the file cannot be read.
// The job is checked as `braid run` would run it here: local paths confined
// to the job's folder or `allowed_dirs`, and the footprint within `limits`
// (job_footprint.h).
int ValidateCommand(const std::string& file, std::ostream& out, std::ostream& err,
                    const std::vector<std::string>& allowed_dirs = {},
                    const spec::MachineLimits& limits = spec::DefaultMachineLimits());

}  // namespace braid::cli

#endif  // BRAID_CLI_VALIDATE_COMMAND_H_
