// `braid audit verify FILE` and `braid audit show FILE [--json]`.
#ifndef BRAID_CLI_AUDIT_COMMAND_H_
#define BRAID_CLI_AUDIT_COMMAND_H_

#include <ostream>
#include <string>

namespace braid::cli {

// Verifies the chain of the audit log at `path`. Prints "<path>: ok, N
// entries, chain verified" to `out` and returns 0, or names the first
// broken entry ("<path>:17: hash mismatch (entry altered)") on `err` and
// returns 1; returns 2 when the file cannot be read.
int AuditVerify(const std::string& path, std::ostream& out, std::ostream& err);

// Prints the log's entries, one line each (seq, time, kind, actor, job,
// details), or as JSON {"entries": [...], "verification": {...}} with
// `as_json`, then the verification result. Exit codes as AuditVerify.
int AuditShow(const std::string& path, bool as_json, std::ostream& out, std::ostream& err);

}  // namespace braid::cli

#endif  // BRAID_CLI_AUDIT_COMMAND_H_
