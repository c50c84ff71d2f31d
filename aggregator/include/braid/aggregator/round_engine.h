// The synchronous round engine: who trains in which round, when a round
// closes, FedAvg, and checkpoints. No gRPC here; the service translates.
//
// A round has two phases. FIT: a sample of the live clients (fractionFit,
// at least minClients) trains on the global weights and uploads deltas; each
// accepted delta is folded into a running weighted sum as it completes, so
// memory is O(model) whatever the number of clients. The phase closes when
// every sampled client has reported or been lost (no heartbeat within the
// heartbeat timeout), or at the round deadline. With >= minClients updates
// the job's AggregationStrategy (strategy.h; e.g. FedAvg: new global =
// global + sum / total examples; with differential privacy see DpOptions)
// gives the new global, which is checkpointed; with fewer the job fails
// with reason RoundFailed, naming the missing clients. EVALUATE: every live client
// evaluates the new global on its local eval split; metrics are averaged
// weighted by examples and the round is recorded.
//
// Thread-safe: every public method may be called from any thread.
#ifndef BRAID_AGGREGATOR_ROUND_ENGINE_H_
#define BRAID_AGGREGATOR_ROUND_ENGINE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/aggregator/checkpoint.h"
#include "braid/aggregator/claims.h"
#include "braid/aggregator/client_liveness.h"
#include "braid/aggregator/dp_options.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/privacy_budget.h"
#include "braid/aggregator/secagg_round.h"
#include "braid/aggregator/strategy.h"
#include "braid/aggregator/strategy_factory.h"
#include "braid/aggregator/upload.h"
#include "braid/core/audit_log.h"
#include "braid/core/clock.h"
#include "braid/core/file_io.h"
#include "braid/core/spec.h"

namespace braid::aggregator {

// Privacy as GetStatus, the summary and the job status show it.
struct PrivacyStatus {
  bool enabled = false;
  double epsilon = 0;  // spent by the rounds aggregated so far, at delta
  double delta = 0;
  double max_epsilon = 0;
};

struct EngineOptions {
  std::string job;
  int rounds = 1;
  int min_clients = 1;
  // strategy.minTenants: distinct tenants a round needs. A FIT round starts
  // only with that many tenants live, samples at least one client of each
  // of that many, and fails (RoundFailed) if fewer tenants' updates are in
  // when it closes.
  int min_tenants = 1;
  // The job's tenants and the replicas each declared (spec.tenants). Join
  // refuses a tenant not listed (PermissionDenied) and a replica index not
  // below its tenant's replicas (InvalidArgument), so no caller can add
  // workers the job did not declare. Empty: every (tenant, replica) may
  // join (unit tests that do not care).
  std::map<std::string, int> tenants;
  double fraction_fit = 1.0;
  // Workers the job starts (sum of replicas). A round starts as soon as this
  // many are live, or with >= min_clients once start_grace has passed. A
  // worker (tenant and replica) that was declared lost and has not joined
  // again is not waited for: a stopped tenant does not cost every later
  // round its start_grace.
  int expected_clients = 1;
  absl::Duration round_timeout = absl::Minutes(5);
  absl::Duration heartbeat_timeout = absl::Seconds(15);
  absl::Duration start_grace = absl::Seconds(10);
  // FIT uploads received at once; each holds one model-sized buffer. At
  // least 1. (braid-aggregator passes its --upload-slots flag, default 1.)
  int upload_slots = 2;
  // Resumable uploads (an UpdateHeader with a digest; see KeepPartial): a
  // FIT upload whose stream broke off keeps its bytes, and its upload slot,
  // for its client, so that the client's next upload of the same update
  // resumes where it broke off. At most one such partial upload per client.
  // It is dropped when its round no longer awaits it (the round closed, the
  // client was lost, joined again, or was dropped), when the same client
  // starts a different upload, `partial_upload_timeout` after its stream
  // first broke off, and, once `partial_upload_grace` has passed since
  // then, as soon as another upload waits for a slot: a partial upload
  // never keeps a streaming one waiting longer than the grace.
  absl::Duration partial_upload_grace = absl::Seconds(30);
  absl::Duration partial_upload_timeout = absl::Minutes(5);
  // Updates whose L2 norm exceeds this are refused (InvalidArgument) before
  // they reach the sum; 0 = no bound.
  double max_update_norm = 0;
  uint64_t seed = 0;
  // spec.strategy.name: which AggregationStrategy CreateStrategy makes
  // (with dp and secagg below), unless the engine is given one.
  std::string strategy = "fedavg";
  spec::ServerOptimizer server_optimizer;  // spec.strategy's, for those strategies
  spec::RobustAggregation robust_aggregation;  // likewise
  std::string spill_dir;  // where a robust aggregation keeps a round's updates
  // Where completed rounds and the job's end are recorded (round_completed,
  // job_finished); not owned, may be null. audit_job names the job in the
  // entries ("<namespace>/<name>"). An append that fails is logged
  // (braid/core/log.h) and the job goes on.
  audit::AuditLog* audit = nullptr;
  std::string audit_job;
  // Differential privacy; off by default.
  DpOptions dp;
  // Secure aggregation; off by default. See "Secure aggregation" below.
  SecAggOptions secagg;
  // How much each update weighs (spec.strategy.weighting and the tenants'
  // maxExamples; see RoundWeights in claims.h). With DP every update weighs
  // the same whatever this says.
  WeightingOptions weighting;
};

// Secure aggregation (options.secagg.enabled). A FIT round runs one
// SecAggRound over its sampled clients: their FIT tasks carry a SecAggTask,
// they run the key stages with SecAggStep, train, upload their masked input
// (BeginFit/CommitFit with masked = true) and answer the unmask request. The
// engine never holds an individual update in the clear: it gets the
// unmasked sum of the survivors' updates, each pre-scaled by the client by a
// public weight (RoundWeights::PublicWeight: the examples it joined with,
// capped as for plaintext, over the cohort's mean, so that sum / (sum of
// the survivors' weights) is FedAvg by capped examples; 1 with DP or
// uniform weighting, whose denominator is the number sampled), and the
// rest is as for plaintext. A client that lies about its input (scales it,
// or sends ring elements no honest encoding gives) is bounded by the ring:
// the decoded sum of k inputs is within [-k r, k r] per element for honest
// inputs and about [-k r, (2 m - k) r] whatever they are (r the
// quantizationRange, m the cohort size), so the average stays finite and
// within a known range; which client lied cannot be known.
// With DP mode distributed the clients add N(0, sigma^2 / t) each (t the
// threshold), so any >= t survivors give the sum at least the central
// noise. The norm bound (maxUpdateNorm) cannot be checked on masked data:
// the quantization range clips every element instead. An attempt that
// fails (fewer than the threshold remain at a stage) is logged and the
// round is run again with fresh keys, up to kSecAggAttempts times; then the
// job fails with reason SecureAggregationFailed.
inline constexpr int kSecAggAttempts = 3;

// A SecAggStep answer: the client's input for its next stage, or pending.
struct SecAggAnswer {
  bool pending = false;
  std::string payload;
};

enum class TaskKind { kWait, kFit, kEvaluate, kDone };

struct Task {
  TaskKind kind = TaskKind::kWait;
  int round = 0;
  int total_rounds = 0;
  std::string reason;  // kDone: why the job ended
  std::optional<SecAggTask> secagg;  // kFit under secure aggregation
  // kFit and kEvaluate: the global weights (the checkpoint's model file,
  // opened when the task was given, so a checkpoint written since does not
  // change what this task streams) and their SHA-256 (32 raw bytes; empty
  // if it could not be computed).
  std::shared_ptr<const FileReader> weights;
  std::string weights_digest;
};

struct EngineStatus {
  std::string phase;  // Pending | Running | Succeeded | Failed
  std::string reason;
  std::string message;
  int rounds_completed = 0;
  int total_rounds = 0;
  int live_clients = 0;
  std::vector<RoundRecord> history;
  PrivacyStatus privacy;
};

// What CreateStrategy (strategy_factory.h) needs of `options`: the strategy's
// name and parameters, its spill directory, and the privacy settings.
StrategyOptions StrategyOptionsOf(const EngineOptions& options);

class RoundEngine {
 public:
  // `checkpoint` and `metrics` (nullable) must outlive the engine. `clock`
  // (not owned; null = braid::RealClock()) gives deadlines, heartbeats and
  // round times. `strategy` aggregates the FIT updates; null = the one
  // CreateStrategy makes from options (strategy, dp, secagg); if that fails
  // (an unknown strategy name) the job is Failed with reason
  // InvalidStrategy from the start. The strategy's masked_input() must match
  // options.secagg.enabled. Resumes from the checkpoint: its history (a
  // round aggregated but not yet evaluated is evaluated first; then the
  // next round starts) and the strategy's saved state.
  RoundEngine(EngineOptions options, Checkpoint* checkpoint, AggregatorMetrics* metrics,
              Clock* clock = nullptr, std::unique_ptr<AggregationStrategy> strategy = nullptr);
  RoundEngine(const RoundEngine&) = delete;
  RoundEngine& operator=(const RoundEngine&) = delete;

  // Registers a worker; returns its client id. A (tenant, replica) that
  // joins again replaces its earlier session (ClientLiveness::Join).
  // PermissionDenied: the tenant is not in the job; InvalidArgument: the
  // replica is not in [0, the tenant's replicas); FailedPrecondition once
  // the job has ended.
  absl::StatusOr<std::string> Join(const std::string& tenant, int replica,
                                   int64_t num_examples);
  // Marks the client alive. NotFound if unknown or declared lost (re-Join).
  absl::Status Touch(const std::string& client_id);
  // The tenant the client joined for. NotFound if the id was never issued.
  absl::StatusOr<std::string> ClientTenant(const std::string& client_id) const;

  // The client's next task, waiting up to `wait` for one (kWait if none).
  // Errors: NotFound (unknown client), or the model file's if it cannot be
  // opened.
  absl::StatusOr<Task> NextTask(const std::string& client_id, absl::Duration wait);

  // Starts receiving a FIT update. Waits up to `wait` (real time) for a free
  // upload slot (Unavailable after). NotFound: unknown client; Aborted: the
  // round is not (or no longer) this client's FIT round; InvalidArgument:
  // sizes. `masked`: a secure-aggregation masked input (uint32 ring
  // elements, total_bytes = the model's bytes); InvalidArgument if it does
  // not match the job's mode.
  // `digest` (empty, or the 32 bytes of the update's SHA-256) makes the
  // upload resumable: when the client's partial upload (KeepPartial) has
  // the same round, size, example count, mode and digest, that upload is
  // returned, holding the bytes it has (received() > 0, resumed_at() ==
  // received()), with no wait for a slot; the caller goes on writing
  // from there. Any other partial upload of the client is dropped first.
  absl::StatusOr<std::unique_ptr<Upload>> BeginFit(const std::string& client_id, int round,
                                                   uint64_t total_bytes, int64_t num_examples,
                                                   absl::Duration wait, bool masked = false,
                                                   const std::string& digest = "");
  // The stream of `upload` (from BeginFit) broke off before it was
  // committed: keeps it, with its bytes and slot, as its client's partial
  // upload (see EngineOptions::partial_upload_grace) when it has a digest
  // and its round still awaits it; otherwise drops it. Returns whether it
  // was kept. Never folds anything.
  bool KeepPartial(std::unique_ptr<Upload> upload);
  // Partial uploads kept now (for tests and the gauge).
  int PartialUploads() const;
  // Counts update bytes read from a PutUpdate stream, kept or not
  // (braid_aggregator_upload_stream_bytes_total).
  void CountUploadBytes(uint64_t bytes);
  // SHA-256 of the current global weights (32 raw bytes; empty if the
  // checkpoint could not be read).
  std::string WeightsDigest() const;
  // Folds a complete upload into the round through the strategy. Aborted if
  // the round closed meanwhile; InvalidArgument if the upload is incomplete
  // or its norm is above options.max_update_norm, or the strategy refused
  // it. The fold runs outside the engine's lock (other clients' calls go
  // on meanwhile; folds are serialized among themselves), and the round
  // does not close while one is in flight. Does not close the round when
  // this was the last update (the next Tick or NextTask does; AwaitCloseDue
  // wakes the thread that ticks), so the caller's acknowledgement does not
  // wait for the checkpoint to be written. Masked (secure-aggregation)
  // inputs still advance the protocol at once.
  absl::Status CommitFit(std::unique_ptr<Upload> upload, const ClientMetrics& train);
  // The client's FIT upload for `round` stopped making progress (or broke
  // off) while it held an upload slot: the client is out of that round,
  // named with `why` if the round fails, and a second upload for the round
  // is refused (Aborted). No-op when the round no longer awaits it.
  void AbandonFit(const std::string& client_id, int round, const std::string& why);
  // Secure aggregation: the client's message for `stage` of the attempt
  // `round_id` (empty payload: only wait), then waits up to `wait` (real
  // time, at most 30 s) for the stage to close. Aborted: the attempt is over
  // for this client (late, refused message, or the attempt failed);
  // InvalidArgument: a malformed or refused message (the client is out of
  // the attempt); NotFound: unknown client.
  absl::StatusOr<SecAggAnswer> SecAggStep(const std::string& client_id, int round,
                                          uint64_t round_id, int stage,
                                          const std::string& payload, absl::Duration wait);
  // Records an EVALUATE result.
  absl::Status ReportEval(const std::string& client_id, int round, const ClientMetrics& eval);

  // Accounts model bytes streamed to a client for `round`.
  void AddBytesDown(int round, int64_t bytes);
  // Applies deadlines, heartbeat losses, the start of rounds and the close
  // of a round whose updates are all in. Call periodically (braid-aggregator
  // does, every 100 ms and as soon as AwaitCloseDue returns).
  void Tick();
  // Waits up to `wait` (real time) until a FIT round has every update it
  // awaits, folded, and should be closed by Tick.
  void AwaitCloseDue(absl::Duration wait);

  EngineStatus Status() const;
  bool Finished() const;
  const Checkpoint& checkpoint() const { return *checkpoint_; }

 private:
  enum class Phase { kWaiting, kFit, kEvaluate, kSucceeded, kFailed };

  // Whether the client was sampled for `phase` of `round`, which is the
  // current one, and has not reported yet.
  bool AwaitsResult(const std::string& client_id, Phase phase, int round) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Task TaskFor(const std::string& client_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // expected_clients less the workers (tenant, replica) that were declared
  // lost and have not joined again.
  int AwaitedClients() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Advance() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkLostClients() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PhaseComplete() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CloseDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartFit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Begins the strategy's round (false: job failed).
  bool BeginStrategyRound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartEvaluate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseFit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the round's contributors span options_.min_tenants tenants; if
  // not, fails the job (RoundFailed) and returns false.
  bool EnoughTenants() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The common end of a FIT phase with `got` contributions folded.
  void FinishFit(int got) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CommitFit's steps around the fold. AcceptUpdate: whether the round
  // takes this update now (Aborted if not); if so, the client counts as
  // reported (a second upload is refused) and a fold is in flight.
  // AcceptUpdate also sets the update's weight (weights_), counting and
  // auditing a claim that was capped.
  absl::Status AcceptUpdate(Upload& upload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The strategy refused an accepted update: the client is out of the round.
  void RefuseUpdate(const Upload& upload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After an update is in: secure aggregation's protocol advances at once
  // (a stage may close); a plaintext round is closed by Tick (CloseDue).
  void AfterUpdate(const Upload& upload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Secure aggregation: starts an attempt over selected_ (false: job failed).
  bool StartSecAgg() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceSecAgg() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SecAggFailed(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseEvaluate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Fail(const std::string& reason, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a FIT round at sampling rate q stays within the privacy budget
  // (always, without DP). If not, ends the job (PrivacyBudgetExhausted) and
  // returns false.
  bool BudgetAllows(double q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The sampling rate of a FIT round of `live` clients, and its size.
  int SampleSize(int live) const;
  void Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A claim of `tenant`'s client `who` (a client id, or the tenant at
  // Join) was refused (`why`, InvalidArgument): counted under `reason`,
  // logged and audited (once per client and round, so a client repeating
  // it cannot grow the audit log without bound). Returns `why`.
  absl::Status RefuseClaim(const std::string& tenant, const std::string& who,
                           const char* reason, absl::Status why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The tenant label of the claim metrics: `tenant` if the job has it.
  std::string TenantLabel(const std::string& tenant) const;
  // Appends an entry to options_.audit, if any.
  void Audit(const char* kind, nlohmann::json details) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string DescribeMissing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A partial upload (KeepPartial; Upload::kept_since says since when).
  struct Partial {
    std::unique_ptr<Upload> upload;
    uint64_t attempt = 0;  // secure aggregation: the attempt's round id
  };
  // Advance's state machine; Advance then drops stale partial uploads.
  void Step() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when `round` still takes an update of `masked` kind from the client;
  // the error BeginFit gives otherwise.
  absl::Status FitAdmissible(const std::string& client_id, int round, bool masked) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The client's partial upload if it is this update (same round, size,
  // examples, mode, attempt and a non-empty digest): taken out, marked
  // resumed and counted. Otherwise null, and a partial upload the client
  // has of another update is moved to *superseded (dropped).
  std::unique_ptr<Upload> TakePartial(const std::string& client_id, int round,
                                      uint64_t total_bytes, int64_t num_examples, bool masked,
                                      const std::string& digest,
                                      std::unique_ptr<Upload>* superseded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the partial uploads no round awaits any more, or kept too long.
  void DropStalePartials() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the partial upload kept longest, of those past their grace, so
  // that a waiting upload gets its slot. False if there is none.
  bool EvictPartial() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetPartialGauge() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SHA-256 of the checkpoint's weights, read from it.
  std::string DigestOfCheckpoint() const;

  const EngineOptions options_;
  Checkpoint* const checkpoint_;
  AggregatorMetrics* const metrics_;
  Clock* const clock_;
  UploadPool pool_;

  // Serializes the strategy's Folds; taken without mu_ held (never the
  // other way round).
  absl::Mutex fold_mu_;
  // Why CreateStrategy made no strategy (set by the constructor only).
  absl::Status strategy_error_;
  // The strategy: its Fold runs under fold_mu_ alone, every other call
  // under mu_ with no fold in flight (folds_in_flight_ == 0), so the two
  // never overlap. Not ABSL_GUARDED_BY either mutex for that reason.
  const std::unique_ptr<AggregationStrategy> strategy_;

  mutable absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kWaiting;
  std::string reason_ ABSL_GUARDED_BY(mu_);
  std::string message_ ABSL_GUARDED_BY(mu_);
  ClientLiveness clients_ ABSL_GUARDED_BY(mu_);
  std::vector<RoundRecord> history_ ABSL_GUARDED_BY(mu_);
  int round_ ABSL_GUARDED_BY(mu_) = 1;  // the round being run or awaited
  std::set<std::string> selected_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> reported_ ABSL_GUARDED_BY(mu_);
  // FIT: sampled clients out of the round (AbandonFit), with why.
  std::map<std::string, std::string> dropped_ ABSL_GUARDED_BY(mu_);
  absl::Time waiting_since_ ABSL_GUARDED_BY(mu_);
  absl::Time round_started_ ABSL_GUARDED_BY(mu_);
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);
  RoundRecord record_ ABSL_GUARDED_BY(mu_);  // the round in progress
  // FIT: accepted updates whose fold has not returned. While > 0 the FIT
  // phase neither closes nor advances its secure-aggregation stage, and the
  // strategy is not called but for those folds.
  int folds_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  double examples_sum_ ABSL_GUARDED_BY(mu_) = 0;    // the weights behind the sum
  double train_loss_sum_ ABSL_GUARDED_BY(mu_) = 0;  // weighted as the updates
  // What each sampled client's update weighs this FIT round.
  RoundWeights weights_ ABSL_GUARDED_BY(mu_);
  // Refused claims already audited ("<round>/<client or tenant>").
  std::set<std::string> refusals_audited_ ABSL_GUARDED_BY(mu_);
  double norm_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> contributors_ ABSL_GUARDED_BY(mu_);
  // EVALUATE accumulation.
  // This evaluation's example-weighted loss and accuracy sums and example
  // counts, by tenant; the pooled figures are their totals.
  std::map<std::string, TenantEval> tenant_eval_ ABSL_GUARDED_BY(mu_);
  // Differential privacy: the rounds aggregated so far.
  PrivacyBudget budget_ ABSL_GUARDED_BY(mu_);
  // Secure aggregation: the attempt in progress, and failed attempts of round_.
  std::unique_ptr<SecAggRound> secagg_ ABSL_GUARDED_BY(mu_);
  int secagg_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int secagg_failures_round_ ABSL_GUARDED_BY(mu_) = 0;
  std::string secagg_last_failure_ ABSL_GUARDED_BY(mu_);
  // Partial uploads by client id (at most one each).
  std::map<std::string, Partial> partials_ ABSL_GUARDED_BY(mu_);
  // SHA-256 of the checkpoint's weights (TaskHeader.weights_digest).
  std::string weights_digest_ ABSL_GUARDED_BY(mu_);
  // Resumable transfers' metrics (null without metrics_): stream bytes
  // read, uploads resumed, bytes a resume did not need again, partial
  // uploads kept.
  prometheus::Counter* stream_bytes_ = nullptr;
  prometheus::Counter* resumed_ = nullptr;
  prometheus::Counter* resumed_bytes_ = nullptr;
  prometheus::Gauge* partials_gauge_ = nullptr;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_ROUND_ENGINE_H_
