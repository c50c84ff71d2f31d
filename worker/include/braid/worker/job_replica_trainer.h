// The ReplicaTrainer braid-worker runs: a job's JobTrainer (LibTorch) bound
// to one replica's federated rounds.
//
//   Fit(round, global)       SetWeights(global), spec.training.localEpochs
//                            epochs shuffled by round * 1000 + replica (so
//                            replicas and rounds shuffle differently, and a
//                            rerun alike), delta = local - global; with
//                            differential privacy the whole delta is
//                            clipped to spec.privacy.differentialPrivacy
//                            clipNorm before it leaves the worker.
//   Evaluate(round, global)  SetWeights(global), the eval split's metrics.
//
// Errors are the JobTrainer's (InvalidArgument for weights that do not fit
// the model's layout, Internal for a LibTorch failure). Not thread-safe,
// like the JobTrainer it owns.
#ifndef BRAID_WORKER_JOB_REPLICA_TRAINER_H_
#define BRAID_WORKER_JOB_REPLICA_TRAINER_H_

#include <memory>

#include "absl/status/status.h"
#include "braid/core/spec.h"
#include "braid/core/tensor.h"
#include "braid/worker/job_trainer.h"
#include "braid/worker/replica_loop.h"

namespace braid::worker {

class JobReplicaTrainer final : public ReplicaTrainer {
 public:
  // `trainer` holds `replica`'s shard of the tenant's data (TrainerSource).
  JobReplicaTrainer(const spec::JobSpec& job, int replica, std::unique_ptr<JobTrainer> trainer);
  JobReplicaTrainer(const JobReplicaTrainer&) = delete;
  JobReplicaTrainer& operator=(const JobReplicaTrainer&) = delete;

  int64_t num_train_examples() const override;
  absl::StatusOr<LocalUpdate> Fit(int round, const TensorList& global) override;
  absl::StatusOr<UpdateMetrics> Evaluate(int round, const TensorList& global) override;

 private:
  const spec::JobSpec job_;
  const int replica_;
  const std::unique_ptr<JobTrainer> trainer_;
};

// local - global, tensor by tensor. Precondition: the same layout, float32.
TensorList Delta(const TensorList& local, const TensorList& global);

// With differential privacy (job.privacy.differential_privacy) scales
// `delta` so that its L2 norm over all tensors together is at most
// clip_norm; the aggregator clips again in central mode, so a worker that
// skips this gains nothing. Without, leaves it alone.
absl::Status ClipForPrivacy(const spec::JobSpec& job, TensorList& delta);

}  // namespace braid::worker

#endif  // BRAID_WORKER_JOB_REPLICA_TRAINER_H_
