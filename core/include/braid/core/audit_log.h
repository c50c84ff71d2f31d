// The audit trail: an append-only, hash-chained log of what happened to a job
// (created, tenants approved or refused, rounds completed, finished, model
// exported), one JSON object per line ("JSON Lines").
//
// Each entry is {"seq", "time", "kind", "actor", "job", "details",
// "prev_hash", "hash"}. seq counts from 1 without gaps; prev_hash is the
// previous entry's hash (64 zeros for the first); hash is the lowercase hex
// SHA-256 (libsodium) of the entry's canonical form: the entry without
// "hash" as compact JSON with keys sorted, as nlohmann::json::dump() writes
// it. Altering, deleting, reordering or inserting an entry therefore breaks
// the chain at that entry, and VerifyAuditLog names it.
//
// Appends hold an exclusive flock on the file, read its tail, write one whole
// line and fsync it, so several processes (the aggregator, `braid run`) may
// append to the same file one after the other and a crash leaves at most one
// torn last line: a prefix of an entry without its newline. The next append
// cuts that torn line off and records what it cut in a "log_recovered"
// entry, so the loss is reported in the chain itself; until then
// ReadAuditLog reports the file as broken. An append never cuts anything
// else: a last line that is a whole entry continuing the chain but lacks its
// newline is kept (the newline is added), and any other unterminated text
// (a whole JSON value, garbage) stops the append with DataLoss.
//
// The chain alone cannot show that entries were removed from its END: a
// log cut after entry 40 is a valid chain of 40 entries. So its head (the
// entry count and the last entry's hash, an Anchor) is kept elsewhere: the
// aggregator's state.json, its GetStatus answer, the job's status.audit and
// `braid run`'s summary.json. CheckAnchor compares a log with one: the log
// must hold the anchored entry with the anchored hash; entries after it
// (appended after the anchor was taken) are allowed and counted.
#ifndef BRAID_CORE_AUDIT_LOG_H_
#define BRAID_CORE_AUDIT_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace braid::audit {

// Entry kinds. details carry, by kind:
inline constexpr char kJobCreated[] = "job_created";          // spec summary
inline constexpr char kJobStarted[] = "job_started";          // resumed_after_round
inline constexpr char kTenantApproved[] = "tenant_approved";  // tenant, by
inline constexpr char kTenantRefused[] = "tenant_refused";    // tenant, by, reason
inline constexpr char kRoundCompleted[] = "round_completed";  // round, participants, tenants,
                                                              // losses, epsilon if any
inline constexpr char kRoundFailed[] = "round_failed";        // round, attempt, reason (a secure-
                                                              // aggregation attempt run again)
inline constexpr char kJobFinished[] = "job_finished";        // phase, reason, message
inline constexpr char kModelExported[] = "model_exported";    // path, sha256, bytes
inline constexpr char kLogRecovered[] = "log_recovered";      // dropped_bytes, dropped_sha256,
                                                              // dropped_text (first 4 KiB)
// Written by a restarted aggregator whose log did not match the anchor in
// its state.json (entries were removed or rewritten while it was down):
// anchor_entries, anchor_head, problem. The chain goes on
// after it; `braid audit verify` reports the log as not intact.
inline constexpr char kAnchorMismatch[] = "anchor_mismatch";
// A client's claimed example count counted for fewer examples in a round:
// round, tenant, client, claimed, counted, reason (join_claim |
// max_examples | other_tenants).
inline constexpr char kClaimCapped[] = "claim_capped";
// A number a client reported was refused (once per client and round):
// round, tenant, client, reason (num_examples | train_metrics |
// eval_metrics), message.
inline constexpr char kClaimRefused[] = "claim_refused";

// The file name the aggregator keeps in its checkpoint directory.
inline constexpr char kFileName[] = "audit.jsonl";

struct Entry {
  int64_t seq = 0;
  std::string time;  // RFC 3339, UTC, milliseconds: 2026-11-23T04:32:33.123Z
  std::string kind;
  std::string actor;  // who did it: "aggregator", "braid run", a user name
  std::string job;    // "<namespace>/<name>"
  nlohmann::json details = nlohmann::json::object();
  std::string prev_hash;
  std::string hash;

  nlohmann::json ToJson() const;  // with "hash"
};

// The canonical form of `e` without its hash, and its SHA-256 in hex.
std::string CanonicalForm(const Entry& e);
std::string EntryHash(const Entry& e);

// Parses one line (without its newline) as an entry: every field present
// with its type and no other. The hash and the chain are not checked.
// InvalidArgument "not a JSON object (garbage in the log)" or "missing or
// mistyped field 'x'" / "unexpected extra fields".
absl::StatusOr<Entry> ParseEntry(std::string_view line);

// The head of a chain: how many entries it holds and the last one's hash.
// {0, ""} is the empty log.
struct Anchor {
  int64_t entries = 0;
  std::string head;  // lowercase hex SHA-256 of entry `entries`; "" when entries == 0

  nlohmann::json ToJson() const;  // {"entries": N, "head": "..."}
  bool operator==(const Anchor& o) const { return entries == o.entries && head == o.head; }
};

// The anchor in `j` ({"entries": N, "head": "<64 hex>"}, as ToJson writes
// it). InvalidArgument naming `where` (e.g. "summary.json: audit") when a
// field is missing, of the wrong type, negative, or the head is not 64
// lowercase hex digits (or not "" for 0 entries).
absl::StatusOr<Anchor> AnchorFromJson(const nlohmann::json& j, const std::string& where);

// Lowercase hex SHA-256 of `bytes`, and of a file's contents (read in
// chunks; NotFound / PermissionDenied naming the path).
std::string Sha256Hex(std::string_view bytes);
absl::StatusOr<std::string> FileSha256Hex(const std::string& path);

// An appender. Thread-safe; several processes may append to one file.
class AuditLog {
 public:
  // Opens (creating it and its directory if missing) the log at `path`.
  // PermissionDenied / NotFound naming the path when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one entry after the file's current last entry and fsyncs it;
  // returns it as written. A torn last line (a crash mid-append) is cut off
  // first and recorded in a log_recovered entry. DataLoss naming the path
  // and line when the last complete line is not an entry (the chain cannot
  // be continued: verify the file); Internal on write errors.
  absl::StatusOr<Entry> Append(const std::string& kind, const std::string& actor,
                               const std::string& job, nlohmann::json details);

  // Calls `f` after each successful append with the last entry written,
  // in append order, with this log's lock held (so `f` must not append
  // here). The aggregator records its anchor this way. Set it before the
  // log is shared between threads.
  void OnAppend(std::function<void(const Entry&)> f) { on_append_ = std::move(f); }

  const std::string& path() const { return path_; }

 private:
  AuditLog(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  absl::StatusOr<Entry> AppendLocked(const std::string& kind, const std::string& actor,
                                     const std::string& job, nlohmann::json details)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::function<void(const Entry&)> on_append_;
  const int fd_;
  const std::string path_;
};

// What VerifyAuditLog found.
struct Verification {
  bool ok = false;
  int64_t entries = 0;  // entries read (up to the first broken one)
  int64_t line = 0;     // 1-based line of the first broken entry; 0 when ok
  std::string problem;  // e.g. "hash mismatch (entry altered)"; "" when ok
  // "<path>:<line>: <problem>" or "<path>: ok, N entries, chain verified".
  std::string ToString(const std::string& path) const;
};

struct AuditFile {
  // The well-formed entries before the first broken one (and a whole,
  // chaining last entry that only lacks its newline, which is reported).
  std::vector<Entry> entries;
  Verification verification;
};

// Reads and verifies the log at `path`. The first broken entry stops
// verification and is named: "not a JSON object", "missing or mistyped
// field 'x'", "hash mismatch (entry altered)", "seq gap (expected 17, found
// 18: entries removed or reordered)", "prev_hash does not match entry 16",
// "truncated entry (torn last line)". The chain's end cannot be judged
// without an anchor: see CheckAnchor. NotFound / InvalidArgument (not a
// regular file, larger than 1 GiB) when it cannot be read.
absl::StatusOr<AuditFile> ReadAuditLog(const std::string& path);

// How a log compares with an anchor.
struct AnchorCheck {
  bool ok = false;
  int64_t missing = 0;  // entries the anchor has and the log does not (a cut tail)
  int64_t after = 0;    // entries the log holds after the anchored one
  // "" when ok; else e.g. "2 entries missing: the anchor says 12 entries
  // (head 3f2a…), the log has 10 (its tail was cut)", or "entry 12 has hash
  // …, the anchor says … (the log was rewritten)".
  std::string problem;
};

// Compares the well-formed entries of `file` (those before any break the
// verification found) with `anchor`. ok when the log holds at least
// anchor.entries entries and entry anchor.entries has hash anchor.head.
AnchorCheck CheckAnchor(const AuditFile& file, const Anchor& anchor);

}  // namespace braid::audit

#endif  // BRAID_CORE_AUDIT_LOG_H_
