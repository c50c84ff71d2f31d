#include "braid/worker/job_replica_trainer.h"

#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "braid/core/dp/clip.h"
#include "braid/core/status_macros.h"

namespace braid::worker {

TensorList Delta(const TensorList& local, const TensorList& global) {
  TensorList delta = local;
  for (size_t i = 0; i < delta.size(); ++i) {
    float* d = delta[i].f32();
    const float* g = global[i].f32();
    const int64_t n = delta[i].NumElements();
    for (int64_t j = 0; j < n; ++j) d[j] -= g[j];
  }
  return delta;
}

absl::Status ClipForPrivacy(const spec::JobSpec& job, TensorList& delta) {
  if (!job.privacy.differential_privacy) return absl::OkStatus();
  std::vector<absl::Span<float>> parts;
  for (Tensor& t : delta) parts.push_back(absl::MakeSpan(t.f32(), t.NumElements()));
  return dp::ClipToL2Norm(parts, job.privacy.dp.clip_norm).status();
}

JobReplicaTrainer::JobReplicaTrainer(const spec::JobSpec& job, int replica,
                                     std::unique_ptr<JobTrainer> trainer)
    : job_(job), replica_(replica), trainer_(std::move(trainer)) {}

int64_t JobReplicaTrainer::num_train_examples() const { return trainer_->num_train_examples(); }

absl::StatusOr<LocalUpdate> JobReplicaTrainer::Fit(int round, const TensorList& global) {
  BRAID_RETURN_IF_ERROR(trainer_->SetWeights(global));
  BRAID_ASSIGN_OR_RETURN(FitResult fit,
                         trainer_->Fit(job_.training.local_epochs, round * 1000 + replica_));
  LocalUpdate update;
  update.delta = Delta(trainer_->Weights(), global);
  BRAID_RETURN_IF_ERROR(ClipForPrivacy(job_, update.delta));
  update.num_examples = fit.num_examples;
  update.train = {fit.loss, 0, fit.num_examples};
  return update;
}

absl::StatusOr<UpdateMetrics> JobReplicaTrainer::Evaluate(int round, const TensorList& global) {
  BRAID_RETURN_IF_ERROR(trainer_->SetWeights(global));
  BRAID_ASSIGN_OR_RETURN(const EvalResult r, trainer_->Evaluate());
  return UpdateMetrics{r.loss, r.accuracy, r.num_examples};
}

}  // namespace braid::worker
