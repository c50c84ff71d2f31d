// The local runtime behind `braid run`: the job's desired set
// (control/desired_set.h) as child processes on loopback (braid-aggregator,
// one braid-worker per running tenant replica), progress from the
// aggregator's status, and the JSON summary. In three steps, each testable:
// StartLocal (workdir, policy, consent, certificates, processes),
// FollowLocal (poll the status until the job ends) and FinishLocal (stop
// the processes, the summary, the model and its evaluations); RunLocal runs
// the three.
#ifndef BRAID_CLI_LOCAL_RUNTIME_H_
#define BRAID_CLI_LOCAL_RUNTIME_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "braid/cli/subprocess.h"
#include "braid/control/tenant_approval.h"
#include "braid/core/clock.h"
#include "braid/core/pki.h"
#include "braid/core/spec.h"
#include "braid/v1/federation.pb.h"

namespace braid::cli {

struct LocalRunOptions {
  std::string job_file;  // the job's YAML (passed on to the children)
  std::string workdir;   // checkpoint/, logs/, model.safetensors, summary.json
  std::string bin_dir;   // where braid-aggregator and braid-worker are
  // Folders outside the job file's that its local paths may name
  // (braid run --allow-path); passed on to every braid-worker. Default none.
  std::vector<std::string> allowed_dirs;
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
  // (or, while awaiting approval, the message) changes, and once at the
  // end, with {"status": the FederatedJob status (control::ComputeStatus,
  // the operator's function: phase, reason, message, round, metrics,
  // privacy {epsilon, delta, maxEpsilon}, conditions, tenants), "rounds":
  // [as in the summary]}. Must return quickly (the dashboard copies it).
  // Empty = not called.
  std::function<void(const nlohmann::json&)> on_status;
  // Time for polling, waiting and the status' transition times. Not owned;
  // null: braid::RealClock().
  Clock* clock = nullptr;
};

// The aggregator's status as the local runtime follows it. A seam: the real
// one asks braid-aggregator's GetStatus over gRPC; tests script it.
class LocalStatusSource {
 public:
  virtual ~LocalStatusSource() = default;
  // The aggregator's status now; an error when it does not answer (the
  // runtime then keeps the last answer).
  virtual absl::StatusOr<v1::JobStatus> GetStatus() = 0;
};

// GetStatus at `address` (host:port), over mTLS with `tls` or plaintext
// without; each call times out after 5 s.
std::unique_ptr<LocalStatusSource> NewGrpcLocalStatusSource(
    const std::string& address, const std::optional<pki::TlsMaterial>& tls);

// A run in progress: what StartLocal started and FollowLocal watches.
struct LocalRun {
  std::string workdir, checkpoint, logs;      // absolute paths
  control::JobRef ref;                        // the job; its uid is the job file's SHA-256
  std::vector<control::TenantConsent> consent;  // at the start (empty without --tenants)
  std::set<std::string> stopped;              // tenants whose workers do not run
  std::map<std::string, Subprocess> procs;    // workload name ("aggregator", "worker-...")
  std::map<std::string, std::string> tenant_of;  // worker name -> tenant
  std::string aggregator_address;             // 127.0.0.1:<port>
  std::optional<pki::TlsMaterial> cli_tls;    // the CLI's identity toward the aggregator
  // Set when the run ended before anything started (a policy violation, a
  // refusal, an interruption while awaiting approval): the summary.
  std::optional<nlohmann::json> ended;
  // The job's status as last computed (control::ComputeStatus), for the
  // next computation's transition times.
  nlohmann::json status;
  std::string Log(const std::string& name) const;  // <logs>/<name>.log
};

// Prepares the workdir, checks the tenants' policy, records job_created,
// waits for consent, writes the initial model and the certificates, and
// starts the desired set's running workloads (the aggregator first; its
// --expected-clients from the desired set). A run that cannot start as the
// user asked (policy, refusal, Ctrl-C) comes back with `ended` set. Errors:
// binaries missing (NotFound), children that cannot start.
absl::StatusOr<LocalRun> StartLocal(const spec::JobSpec& job, const LocalRunOptions& options);

// How following ended.
struct LocalOutcome {
  v1::JobStatus status;  // the aggregator's last answer (phase Pending before any)
  // Set when the runtime, not the aggregator, ended the job: "Interrupted"
  // (options.interrupted) or "AggregatorExited"; with a message for people.
  std::string runtime_reason, runtime_message;
  bool bar_open = false;  // the progress bar's line still awaits its newline
};

// Polls `status` every 200 ms (options.clock) until the aggregator reports
// Succeeded or Failed, the user interrupts, or the aggregator process
// exits; prints a progress line (or redraws the bar) per completed round;
// calls on_status on a new round or phase; reports a worker's non-zero exit;
// with tenants, stops the workers of a tenant whose consent was revoked.
// `run->procs` may be empty (tests): then no process is watched.
LocalOutcome FollowLocal(const spec::JobSpec& job, const LocalRunOptions& options,
                         LocalStatusSource* status, LocalRun* run);

// Lets the workers hear DONE and stops every process (aggregator last),
// calls on_status with the final status, and builds the summary; on
// success copies the model, exports the adapter (language models),
// evaluates on the pooled set and trains the baselines when asked.
absl::StatusOr<nlohmann::json> FinishLocal(const spec::JobSpec& job,
                                           const LocalRunOptions& options, LocalRun* run,
                                           const LocalOutcome& outcome);

// The job's audit trail in a run's working directory (beside the
// aggregator's checkpoint, which appends to it).
std::string LocalAuditLogPath(const std::string& workdir);

// StartLocal, FollowLocal over gRPC, FinishLocal: runs the job to its end
// and returns the summary:
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

}  // namespace braid::cli

#endif  // BRAID_CLI_LOCAL_RUNTIME_H_
