// The local runtime behind `braid run`: the job's desired workloads as child
// processes on loopback (braid-aggregator, one braid-worker per tenant
// replica), progress from the aggregator's status, and the JSON summary.
#ifndef BRAID_OPERATOR_LOCAL_RUNTIME_H_
#define BRAID_OPERATOR_LOCAL_RUNTIME_H_

#include <atomic>
#include <functional>
#include <map>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"

namespace braid::op {

struct LocalRunOptions {
  std::string job_file;  // the job's YAML (passed on to the children)
  std::string workdir;   // checkpoint/, logs/, model.safetensors, summary.json
  std::string bin_dir;   // where braid-aggregator and braid-worker are
  bool baselines = false;  // also train each tenant alone with the same budget
  // Plaintext gRPC on loopback instead of mTLS with per-run certificates
  // (<workdir>/tls/, see local_pki.h).
  bool insecure = false;
  // Set (e.g. by a SIGINT handler) to stop the run; the summary then says
  // phase Failed, reason Interrupted.
  const std::atomic<bool>* interrupted = nullptr;
  std::ostream* progress = nullptr;  // one line per round; nullptr = quiet
  // progress is a terminal: the rounds redraw one progress bar line
  // (progress_bar.h) instead of a line each; other messages are unchanged.
  bool progress_bar = false;
  // Tenant objects from `braid run --tenants` (metadata.name -> object, see
  // local_consent.h). Empty: no policy and no approvals. Otherwise a policy
  // violation ends the run before anything starts (phase Failed, reason
  // ModelNotAllowed or TooManyRounds, as the operator says it); a tenant
  // that requires approval holds the job in phase AwaitingApproval until
  // <workdir>/approvals/ has its decision; refused tenants get no workers
  // (reason TenantRefused when the rest cannot meet strategy.minClients);
  // a refusal while the job runs stops that tenant's workers.
  std::map<std::string, nlohmann::json> tenants;
  // Called on the runtime's thread whenever a round completes or the phase
  // (or, while awaiting approval, the message) changes, and once at the end, with {"phase", "reason", "message",
  // "total_rounds", "rounds": [as in the summary]}. Must return quickly
  // (the dashboard copies it). Empty = not called.
  std::function<void(const nlohmann::json&)> on_status;
};

// The job's audit trail in a run's working directory (beside the
// aggregator's checkpoint, which appends to it).
std::string LocalAuditLogPath(const std::string& workdir);

// Runs the job to its end and returns the summary:
//   {"job", "phase": "Succeeded"|"Failed", "reason", "message",
//    "rounds": [{"round", "participants", "sampled", "tenants", "train_loss",
//                "eval_loss", "eval_accuracy", "seconds", "bytes_up",
//                "bytes_down"}],
//    "final": {"pooled": {"eval_loss", "eval_accuracy", "num_examples"}},
//    "baselines": {"<tenant>": {"pooled": {...}, "local": {...}}},
//    "model": "<workdir>/model.safetensors", "workdir", "logs"}
// A checkpoint of an unfinished run of the same job in `workdir` is resumed;
// one of a finished run is replaced (its audit log with it). The audit log
// gets job_created (a fresh run) and model_exported (path, sha256) from
// here; the aggregator appends the rounds and the job's end. Errors (not job failures, which are in
// the summary) are returned as Status: children that cannot start, etc.
absl::StatusOr<nlohmann::json> RunLocal(const spec::JobSpec& job, const LocalRunOptions& options);

}  // namespace braid::op

#endif  // BRAID_OPERATOR_LOCAL_RUNTIME_H_
