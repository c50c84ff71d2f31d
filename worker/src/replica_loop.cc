#include "braid/worker/replica_loop.h"

#include <algorithm>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/log.h"
#include "braid/core/status_macros.h"

namespace braid::worker {
namespace {

std::string Elapsed(Clock& clock, absl::Time since) {
  return absl::FormatDuration(absl::Trunc(clock.Now() - since, absl::Milliseconds(1)));
}

// One replica's membership (client id, heartbeat period) and the steps of
// its loop; RunReplicaLoop below strings them together.
class ReplicaLoop {
 public:
  ReplicaLoop(FederationClient& client, ReplicaTrainer& trainer, const ReplicaLoopOptions& options,
              const CancelToken* cancel)
      : client_(client),
        trainer_(trainer),
        options_(options),
        clock_(*options.clock),
        cancel_(cancel),
        name_(absl::StrCat(options.tenant, "/", options.replica)) {}

  absl::Status Run() {
    BRAID_RETURN_IF_ERROR(JoinWithRetry());
    std::thread heartbeat([this] { HeartbeatLoop(); });
    absl::Status status = TaskLoop();
    stop_heartbeats_.Cancel();
    heartbeat.join();
    return status;
  }

 private:
  std::string client_id() const {
    absl::MutexLock lock(&mu_);
    return client_id_;
  }
  bool cancelled() const { return cancel_ != nullptr && cancel_->cancelled(); }
  absl::Status Cancelled() const {
    return absl::CancelledError(absl::StrCat("worker ", name_, ": stopped"));
  }
  absl::Status GiveUp(const absl::Status& last) const {
    return absl::UnavailableError(absl::StrCat("aggregator unreachable for ",
                                               absl::FormatDuration(options_.give_up), ": ",
                                               last.message()));
  }
  static bool Unreachable(const absl::Status& s) {
    // RESOURCE_EXHAUSTED: the server is at its thread or call limit
    // (another party's flood); retry like UNAVAILABLE.
    return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsResourceExhausted(s);
  }

  // Join, retried with doubling pauses while the aggregator is unreachable,
  // for at most options_.give_up.
  absl::Status JoinWithRetry() {
    const absl::Time give_up = clock_.Now() + options_.give_up;
    absl::Duration backoff = options_.join_backoff_initial;
    while (true) {
      if (cancelled()) return Cancelled();
      absl::StatusOr<JoinResult> joined = client_.Join(options_.job, options_.tenant,
                                                       options_.replica,
                                                       trainer_.num_train_examples());
      if (joined.ok()) {
        absl::MutexLock lock(&mu_);
        client_id_ = joined->client_id;
        heartbeat_interval_ = joined->heartbeat_interval;
        LogInfo(absl::StrCat("worker ", name_, ": joined as ", client_id_));
        return absl::OkStatus();
      }
      if (!Unreachable(joined.status())) return joined.status();
      if (clock_.Now() > give_up) return GiveUp(joined.status());
      if (!clock_.Sleep(backoff, cancel_)) return Cancelled();
      backoff = std::min(backoff * 2, options_.join_backoff_max);
    }
  }

  // Until Run() stops it. A failed heartbeat is not acted on here: the task
  // loop meets the same condition on its next call and handles it.
  void HeartbeatLoop() {
    while (true) {
      absl::Duration interval;
      {
        absl::MutexLock lock(&mu_);
        interval = heartbeat_interval_ > absl::ZeroDuration() ? heartbeat_interval_
                                                              : options_.default_heartbeat_interval;
      }
      if (!clock_.Sleep(interval, &stop_heartbeats_)) return;
      (void)client_.Heartbeat(client_id());
    }
  }

  absl::Status TaskLoop() {
    absl::Time unreachable_since = absl::InfiniteFuture();
    while (true) {
      if (cancelled()) return Cancelled();
      absl::StatusOr<ReceivedTask> task = client_.GetTask(client_id(), options_.task_wait);
      if (!task.ok()) {
        if (absl::IsNotFound(task.status())) {  // the aggregator restarted
          LogWarning(absl::StrCat("worker ", name_, ": ", task.status().message()));
          BRAID_RETURN_IF_ERROR(JoinWithRetry());
          continue;
        }
        if (!Unreachable(task.status())) return task.status();
        if (unreachable_since == absl::InfiniteFuture()) unreachable_since = clock_.Now();
        if (clock_.Now() - unreachable_since > options_.give_up) return GiveUp(task.status());
        if (!clock_.Sleep(options_.task_retry_pause, cancel_)) return Cancelled();
        continue;
      }
      unreachable_since = absl::InfiniteFuture();
      const v1::TaskHeader& h = task->header;
      switch (h.kind()) {
        case v1::TASK_KIND_DONE:
          LogInfo(absl::StrCat("worker ", name_, ": job ended: ", h.reason()));
          if (absl::StartsWith(h.reason(), "ClientLost")) {
            BRAID_RETURN_IF_ERROR(JoinWithRetry());
            continue;
          }
          return absl::OkStatus();
        case v1::TASK_KIND_FIT:
          if (h.has_secagg()) {
            BRAID_RETURN_IF_ERROR(SecAggFit(h, task->weights));
          } else {
            BRAID_RETURN_IF_ERROR(Fit(h.round(), task->weights));
          }
          break;
        case v1::TASK_KIND_EVALUATE:
          BRAID_RETURN_IF_ERROR(Evaluate(h.round(), task->weights));
          break;
        default:
          break;  // WAIT: ask again
      }
    }
  }

  // The outcome of an upload or report: what the round no longer takes
  // (ABORTED) or could not receive (UNAVAILABLE) is dropped; NOT_FOUND
  // joins again; any other error ends the loop.
  absl::Status Tolerate(const absl::Status& s, int round) {
    if (s.ok()) return s;
    if (absl::IsAborted(s) || absl::IsUnavailable(s) || absl::IsResourceExhausted(s)) {
      LogWarning(absl::StrCat("worker ", name_, ": round ", round, ": ", s.ToString()));
      return absl::OkStatus();
    }
    if (absl::IsNotFound(s)) return JoinWithRetry();
    return s;
  }

  absl::Status Fit(int round, const TensorList& global) {
    const absl::Time start = clock_.Now();
    BRAID_ASSIGN_OR_RETURN(LocalUpdate update, trainer_.Fit(round, global));
    absl::Status s =
        client_.PutFit(client_id(), round, update.delta, update.num_examples, update.train);
    LogInfo(absl::StrCat("worker ", name_, ": round ", round, " fit: loss ", update.train.loss,
                         " on ", update.num_examples, " examples in ", Elapsed(clock_, start)));
    return Tolerate(s, round);
  }

  // The same under secure aggregation: the update leaves the worker only
  // masked (see braid/worker/secagg_fit.h). The trainer runs between the
  // key stages and the masked input.
  absl::Status SecAggFit(const v1::TaskHeader& h, const TensorList& global) {
    const absl::Time start = clock_.Now();
    auto train = [&]() { return trainer_.Fit(h.round(), global); };
    SecAggFitOptions options;
    options.name = name_;
    absl::Status s = RunSecAggFit(client_, client_id(), h, train, options);
    LogInfo(absl::StrCat("worker ", name_, ": round ", h.round(),
                         " fit (secure aggregation) in ", Elapsed(clock_, start)));
    return Tolerate(s, h.round());
  }

  absl::Status Evaluate(int round, const TensorList& global) {
    BRAID_ASSIGN_OR_RETURN(const UpdateMetrics eval, trainer_.Evaluate(round, global));
    return Tolerate(client_.PutEval(client_id(), round, eval), round);
  }

  FederationClient& client_;
  ReplicaTrainer& trainer_;
  const ReplicaLoopOptions options_;
  Clock& clock_;
  const CancelToken* const cancel_;
  const std::string name_;
  CancelToken stop_heartbeats_;
  mutable absl::Mutex mu_;
  std::string client_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status RunReplicaLoop(FederationClient& client, ReplicaTrainer& trainer,
                            const ReplicaLoopOptions& options, const CancelToken* cancel) {
  if (options.job.empty() || options.tenant.empty() || options.clock == nullptr) {
    return absl::InvalidArgumentError("replica loop: job, tenant and clock are required");
  }
  return ReplicaLoop(client, trainer, options, cancel).Run();
}

}  // namespace braid::worker
