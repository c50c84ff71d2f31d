// The synchronous round engine: who trains in which round, when a round
// closes, FedAvg, and checkpoints. No gRPC here; the service translates.
//
// A round has two phases. FIT: a sample of the live clients (fractionFit,
// at least minClients) trains on the global weights and uploads deltas; each
// accepted delta is folded into a running weighted sum as it completes, so
// memory is O(model) whatever the number of clients. The phase closes when
// every sampled client has reported or been lost (no heartbeat within the
// heartbeat timeout), or at the round deadline. With >= minClients updates
// the new global = global + sum / total examples is checkpointed (with
// differential privacy: see DpOptions); with fewer
// the job fails with reason RoundFailed. EVALUATE: every live client
// evaluates the new global on its local eval split; metrics are averaged
// weighted by examples and the round is recorded.
//
// Thread-safe: every public method may be called from any thread.
#ifndef BRAID_AGGREGATOR_ROUND_ENGINE_H_
#define BRAID_AGGREGATOR_ROUND_ENGINE_H_

#include <cstdint>
#include <functional>
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
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/secagg_round.h"
#include "braid/aggregator/upload.h"
#include "braid/core/audit_log.h"
#include "braid/core/dp/gaussian_noise.h"
#include "braid/core/dp/rdp_accountant.h"

namespace braid::aggregator {

// Client-level DP-FedAvg with central noise (McMahan et al. 2018), from
// spec.privacy.differentialPrivacy. With `enabled`, each FIT update is
// clipped to clip_norm by the aggregator (workers clip too), folded with
// weight 1 (uniform, not by examples), N(0, (noise_multiplier *
// clip_norm)^2) is added to each coordinate of the round's sum, and the sum
// is divided by the fixed number of clients sampled for the round (not by
// how many reported: dropouts add zeros, so one client's influence on the
// average stays <= clip_norm / sampled). Before each round the RDP
// accountant (sampling rate q = sampled / live clients, one sampled
// Gaussian event per round) decides whether the round may run; if it would
// take epsilon at delta above max_epsilon, the job ends with reason
// PrivacyBudgetExhausted: Succeeded when at least one round was aggregated,
// Failed when none could run.
struct DpOptions {
  bool enabled = false;
  double clip_norm = 1;
  double noise_multiplier = 1;
  double delta = 1e-5;
  double max_epsilon = 1;
  // false: the clients add the noise (distributed DP under secure
  // aggregation); the aggregator then neither clips nor adds noise.
  bool central_noise = true;
  // Tests only: a seeded noise source; 0 = the OS CSPRNG (production).
  uint64_t noise_seed = 0;
};

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
  // FIT uploads received at once; each holds one model-sized buffer.
  int upload_slots = 2;
  // Updates whose L2 norm exceeds this are refused (InvalidArgument) before
  // they reach the sum; 0 = no bound.
  double max_update_norm = 0;
  uint64_t seed = 0;
  // Where completed rounds and the job's end are recorded (round_completed,
  // job_finished); not owned, may be null. audit_job names the job in the
  // entries ("<namespace>/<name>"). An append that fails is reported on
  // stderr and the job goes on.
  audit::AuditLog* audit = nullptr;
  std::string audit_job;
  // Differential privacy; off by default.
  DpOptions dp;
  // Secure aggregation; off by default. See "Secure aggregation" below.
  SecAggOptions secagg;
  // Testing only: every FIT upload, as received (masked under secure
  // aggregation), is written to <dir>/round<R>-<tenant>-<replica>.bin.
  std::string record_uploads_dir;
};

// Secure aggregation (options.secagg.enabled). A FIT round runs one
// SecAggRound over its sampled clients: their FIT tasks carry a SecAggTask,
// they run the key stages with SecAggStep, train, upload their masked input
// (BeginFit/CommitFit with masked = true) and answer the unmask request. The
// engine never holds an individual update in the clear: it gets the
// unmasked sum of the survivors' updates, each pre-scaled by the client by a
// public weight (examples / mean examples of the cohort, so that sum /
// (sum of the survivors' weights) is FedAvg by examples; 1 with DP, whose
// denominator is the number sampled), and the rest is as for plaintext.
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
};

struct ClientMetrics {
  double loss = 0;
  double accuracy = 0;
  int64_t num_examples = 0;
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

class RoundEngine {
 public:
  // `checkpoint` and `metrics` (nullable) must outlive the engine. Resumes
  // from the checkpoint's history: a round aggregated but not yet evaluated
  // is evaluated first; then the next round starts.
  RoundEngine(EngineOptions options, Checkpoint* checkpoint, AggregatorMetrics* metrics,
              std::function<absl::Time()> clock = [] { return absl::Now(); });
  RoundEngine(const RoundEngine&) = delete;
  RoundEngine& operator=(const RoundEngine&) = delete;

  // Registers a worker; returns its client id. FailedPrecondition once the
  // job has ended.
  absl::StatusOr<std::string> Join(const std::string& tenant, int replica,
                                   int64_t num_examples);
  // Marks the client alive. NotFound if unknown or declared lost (re-Join).
  absl::Status Touch(const std::string& client_id);
  // The tenant the client joined for. NotFound if the id was never issued.
  absl::StatusOr<std::string> ClientTenant(const std::string& client_id) const;

  // The client's next task, waiting up to `wait` for one (kWait if none).
  absl::StatusOr<Task> NextTask(const std::string& client_id, absl::Duration wait);

  // Starts receiving a FIT update. Waits up to `wait` for a free upload
  // slot (Unavailable after). NotFound: unknown client; Aborted: the round
  // is not (or no longer) this client's FIT round; InvalidArgument: sizes.
  // `masked`: a secure-aggregation masked input (uint32 ring elements,
  // total_bytes = the model's bytes); InvalidArgument if it does not match
  // the job's mode.
  absl::StatusOr<std::unique_ptr<Upload>> BeginFit(const std::string& client_id, int round,
                                                   uint64_t total_bytes, int64_t num_examples,
                                                   absl::Duration wait, bool masked = false);
  // Folds a complete upload into the round. Aborted if the round closed
  // meanwhile; InvalidArgument if the upload is incomplete or its norm is
  // above options.max_update_norm. Does not close the round when this was
  // the last update (the next Tick or NextTask does; AwaitCloseDue wakes
  // the thread that ticks), so the caller's acknowledgement does not wait
  // for the checkpoint to be written. Masked (secure-aggregation) inputs
  // still advance the protocol at once.
  absl::Status CommitFit(std::unique_ptr<Upload> upload, const ClientMetrics& train);
  // Secure aggregation: the client's message for `stage` of the attempt
  // `round_id` (empty payload: only wait), then waits up to `wait` for the
  // stage to close. Aborted: the attempt is over for this client (late,
  // refused message, or the attempt failed); InvalidArgument: a malformed
  // or refused message (the client is out of the attempt); NotFound:
  // unknown client.
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
  // Waits up to `wait` until a FIT round has every update it awaits and
  // should be closed by Tick.
  void AwaitCloseDue(absl::Duration wait);

  EngineStatus Status() const;
  bool Finished() const;
  const Checkpoint& checkpoint() const { return *checkpoint_; }

 private:
  enum class Phase { kWaiting, kFit, kEvaluate, kSucceeded, kFailed };
  struct Client {
    std::string tenant;
    int replica = 0;
    int64_t num_examples = 0;
    absl::Time last_seen;
    bool lost = false;
  };

  // The client if joined and not lost, else nullptr.
  Client* FindLive(const std::string& client_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FindLive, marked seen now; NotFound (join again) if unknown or lost.
  absl::StatusOr<Client*> Seen(const std::string& client_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the client was sampled for `phase` of `round`, which is the
  // current one, and has not reported yet.
  bool AwaitsResult(const std::string& client_id, Phase phase, int round) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Task TaskFor(const std::string& client_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int LiveClients() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // expected_clients less the workers (tenant, replica) that were declared
  // lost and have not joined again.
  int AwaitedClients() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> LiveClientIds() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Advance() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkLostClients() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PhaseComplete() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CloseDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartFit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartEvaluate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseFit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The common end of a FIT phase with `got` contributions in sum_.
  void FinishFit(int got) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Secure aggregation: starts an attempt over selected_ (false: job failed).
  bool StartSecAgg() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceSecAgg() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SecAggFailed(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordUpload(const Upload& upload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseEvaluate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Fail(const std::string& reason, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // With DP: whether a FIT round at sampling rate q stays within the
  // budget. If not, ends the job (PrivacyBudgetExhausted) and returns false.
  bool BudgetAllows(double q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The sampling rate of a FIT round of `live` clients, and its size.
  int SampleSize(int live) const;
  // With central DP: adds the round's noise to sum_. False (job failed) if
  // no noise source can be had.
  bool AddCentralNoise() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends an entry to options_.audit, if any.
  void Audit(const char* kind, nlohmann::json details) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string DescribeMissing() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineOptions options_;
  Checkpoint* const checkpoint_;
  AggregatorMetrics* const metrics_;
  const std::function<absl::Time()> clock_;
  UploadPool pool_;

  mutable absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kWaiting;
  std::string reason_ ABSL_GUARDED_BY(mu_);
  std::string message_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Client> clients_ ABSL_GUARDED_BY(mu_);
  int64_t next_client_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RoundRecord> history_ ABSL_GUARDED_BY(mu_);
  int round_ ABSL_GUARDED_BY(mu_) = 1;  // the round being run or awaited
  std::set<std::string> selected_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> reported_ ABSL_GUARDED_BY(mu_);
  absl::Time waiting_since_ ABSL_GUARDED_BY(mu_);
  absl::Time round_started_ ABSL_GUARDED_BY(mu_);
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);
  RoundRecord record_ ABSL_GUARDED_BY(mu_);  // the round in progress
  // FIT accumulation: the weighted sum of deltas and its weights.
  std::vector<float> sum_ ABSL_GUARDED_BY(mu_);
  double total_weight_ ABSL_GUARDED_BY(mu_) = 0;
  double examples_sum_ ABSL_GUARDED_BY(mu_) = 0;    // training examples behind the sum
  double train_loss_sum_ ABSL_GUARDED_BY(mu_) = 0;  // weighted by examples
  double norm_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> contributors_ ABSL_GUARDED_BY(mu_);
  // EVALUATE accumulation.
  // This evaluation's example-weighted loss and accuracy sums and example
  // counts, by tenant; the pooled figures are their totals.
  std::map<std::string, TenantEval> tenant_eval_ ABSL_GUARDED_BY(mu_);
  // Differential privacy: rounds aggregated so far, and the noise source
  // (created at the first noised round).
  dp::RdpAccountant accountant_ ABSL_GUARDED_BY(mu_);
  std::optional<dp::GaussianSampler> sampler_ ABSL_GUARDED_BY(mu_);
  // Secure aggregation: the attempt in progress, and failed attempts of round_.
  std::unique_ptr<SecAggRound> secagg_ ABSL_GUARDED_BY(mu_);
  int secagg_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int secagg_failures_round_ ABSL_GUARDED_BY(mu_) = 0;
  std::string secagg_last_failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_ROUND_ENGINE_H_
