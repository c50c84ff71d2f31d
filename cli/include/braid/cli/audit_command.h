// `braid audit verify FILE` and `braid audit show FILE [--json]`.
#ifndef BRAID_CLI_AUDIT_COMMAND_H_
#define BRAID_CLI_AUDIT_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>

namespace braid::cli {

// Where `braid audit verify` takes the anchors (the chain's head as
// recorded elsewhere) that the log must hold. With neither expect_* nor
// summary set, it looks beside the log: state.json in the log's directory
// (the aggregator's checkpoint) and summary.json in the directory above
// (a `braid run` workdir) when its audit.log names this file.
struct AuditVerifyOptions {
  // --expect-entries N --expect-head HASH (both or neither; -1: unset).
  int64_t expect_entries = -1;
  std::string expect_head;
  // --summary FILE: a summary.json of `braid run` (its "audit").
  std::string summary;
};

// Verifies the chain of the audit log at `path`, then that it holds each
// anchor found (see AuditVerifyOptions). Prints "<path>: ok, N entries,
// chain verified; holds the anchor of <source> (...)" to `out` and returns
// 0; names the first broken entry ("<path>:17: hash mismatch (entry
// altered)"), an anchor the log does not hold ("<path>: 2 entries missing:
// the anchor says 12 entries (head …), the log has 10 (its tail was cut);
// anchor from <source>"), or an anchor_mismatch entry on `err` and returns
// 1; returns 2 when the file or an anchor cannot be read. Without any
// anchor the chain is checked and a warning says a cut tail cannot be
// detected (exit 0).
int AuditVerify(const std::string& path, const AuditVerifyOptions& options, std::ostream& out,
                std::ostream& err);

// Prints the log's entries, one line each (seq, time, kind, actor, job,
// details), or as JSON {"entries": [...], "verification": {...}} with
// `as_json`, then the verification result. Exit codes as AuditVerify.
int AuditShow(const std::string& path, bool as_json, std::ostream& out, std::ostream& err);

}  // namespace braid::cli

#endif  // BRAID_CLI_AUDIT_COMMAND_H_
