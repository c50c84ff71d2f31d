// `braid validate FILE`.
#ifndef BRAID_CLI_VALIDATE_COMMAND_H_
#define BRAID_CLI_VALIDATE_COMMAND_H_

#include <ostream>
#include <string>

namespace braid::cli {

// Prints every problem of the job file at `file` ("<file>: <path>: <what>")
// and then "<file>: invalid" (returns 2), or "<file>: valid" (returns 0), to
// `out`. Returns 2 with the reason on `err` when the file cannot be read.
int ValidateCommand(const std::string& file, std::ostream& out, std::ostream& err);

}  // namespace braid::cli

#endif  // BRAID_CLI_VALIDATE_COMMAND_H_
