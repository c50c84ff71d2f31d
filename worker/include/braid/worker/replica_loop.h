// The federated loop of one worker replica, without LibTorch: join the
// aggregator, keep the membership alive with heartbeats, and answer tasks
// until the job is done.
//
//   Join        retried with backoff while the aggregator is unreachable
//   heartbeat   a thread of its own, every interval the aggregator names
//   GetTask     FIT      train (ReplicaTrainer::Fit) and upload the delta;
//                        under secure aggregation (the task carries a
//                        SecAggConfig) through RunSecAggFit (secagg_fit.h)
//               EVALUATE score the task's weights, report the metrics
//               WAIT     ask again
//               DONE     the job ended: return OK (reason "ClientLost...":
//                        the aggregator dropped this replica; join again)
//
// The retry contract is the wire contract's (docs/architecture.md), by
// status code:
//   UNAVAILABLE, DEADLINE_EXCEEDED  the aggregator is unreachable: retried
//       until it has been so for `give_up`; then the loop returns
//       Unavailable naming the give-up time and the last error.
//   NOT_FOUND          the aggregator no longer knows this replica (it
//       restarted): join again, then go on with the next task.
//   ABORTED            an upload or report the round no longer takes (it
//       moved on): logged and dropped; the next task follows.
//   INVALID_ARGUMENT, FAILED_PRECONDITION and any other code: not retried;
//       the loop returns the error.
// Where an upload or report fails with UNAVAILABLE it is dropped too (the
// round goes on without it) and the next GetTask meets the retry above.
#ifndef BRAID_WORKER_REPLICA_LOOP_H_
#define BRAID_WORKER_REPLICA_LOOP_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/cancel.h"
#include "braid/core/clock.h"
#include "braid/core/tensor.h"
#include "braid/worker/federation_client.h"
#include "braid/worker/secagg_fit.h"

namespace braid::worker {

// What the loop needs of local training. braid-worker's implementation is
// JobReplicaTrainer (job_replica_trainer.h: LibTorch); tests use fakes.
// Called from the loop's thread only, one call at a time.
class ReplicaTrainer {
 public:
  virtual ~ReplicaTrainer() = default;

  // This replica's training examples: announced at every Join (the FedAvg
  // weight).
  virtual int64_t num_train_examples() const = 0;
  // Local training for FIT round `round` from `global` (the task's weights,
  // in the wire layout). Returns the delta (local - global, same layout),
  // already clipped when the job asks for differential privacy, with the
  // examples trained on and the training metrics. An error ends the loop
  // with it (under secure aggregation it is first seen by RunSecAggFit and
  // then by the retry contract above, so give it a code that does not
  // retry, e.g. Internal or InvalidArgument).
  virtual absl::StatusOr<LocalUpdate> Fit(int round, const TensorList& global) = 0;
  // Scores `global` on this replica's eval split for EVALUATE round
  // `round`. An error ends the loop with it.
  virtual absl::StatusOr<UpdateMetrics> Evaluate(int round, const TensorList& global) = 0;
};

struct ReplicaLoopOptions {
  // The job, tenant and replica this worker joins as (JoinRequest). Required.
  std::string job;
  std::string tenant;
  int replica = 0;
  // How long the aggregator may stay unreachable (UNAVAILABLE or
  // DEADLINE_EXCEEDED on Join or GetTask, counted from the first failure in
  // a row) before the loop gives up. Default 2 minutes (braid-worker
  // --give-up): longer than an aggregator pod's restart.
  absl::Duration give_up = absl::Minutes(2);
  // Pause before the first Join retry; each further retry waits twice as
  // long, up to join_backoff_max. Defaults 200 ms and 2 s: quick after a
  // restart, and a few calls per second at most from each replica.
  absl::Duration join_backoff_initial = absl::Milliseconds(200);
  absl::Duration join_backoff_max = absl::Seconds(2);
  // Pause between GetTask calls while the aggregator is unreachable.
  // Default 500 ms.
  absl::Duration task_retry_pause = absl::Milliseconds(500);
  // How long one GetTask may wait on the server for a task (long poll).
  // Default 10 s. Bounds how late `cancel` is seen while waiting.
  absl::Duration task_wait = absl::Seconds(10);
  // Heartbeat period when the aggregator's JoinResponse names none.
  // Default 2 s (the aggregator's own default).
  absl::Duration default_heartbeat_interval = absl::Seconds(2);
  // Time for the give-up deadline, backoff pauses and heartbeat periods.
  // Not owned; must outlive the loop. Default the wall clock. (With a
  // FakeClock, core/testing, pauses take no time: heartbeats then go out
  // back to back, so such tests should not get as far as joining.)
  Clock* clock = RealClock();
};

// Runs the loop above for one replica until the job is done.
//
// Returns OK when the aggregator reports the job done (DONE, whatever the
// job's outcome: the aggregator's status says whether it succeeded).
// Errors: Unavailable when the aggregator stayed unreachable for
// options.give_up ("aggregator unreachable for <give_up>: <last error>");
// Cancelled when `cancel` (nullable) is cancelled, seen between calls and
// during pauses (a call in flight finishes first: a GetTask within
// options.task_wait, a Fit when the trainer returns); otherwise the first
// error that is not retried (see the contract above), from the aggregator
// or from `trainer`. InvalidArgument at once if options.job, .tenant or
// .clock is missing.
//
// `client` and `trainer` are used by this call only while it runs; `client`
// is shared with the heartbeat thread (FederationClient is thread-safe).
// Blocks the calling thread; log lines ("worker <tenant>/<replica>: ...")
// go through braid::LogInfo / LogWarning.
absl::Status RunReplicaLoop(FederationClient& client, ReplicaTrainer& trainer,
                            const ReplicaLoopOptions& options,
                            const CancelToken* cancel = nullptr);

}  // namespace braid::worker

#endif  // BRAID_WORKER_REPLICA_LOOP_H_
