// Local training and evaluation of the job's model on one worker's data.
//
// The model's parameters are exchanged as a braid::TensorList whose order
// and names are fixed by the model (the wire layout): for the MLP,
// "layers.0.weight", "layers.0.bias", "layers.1.weight", ... (Linear layers
// in order). Not thread-safe; one trainer per worker process.
#ifndef BRAID_WORKER_LOCAL_TRAINER_H_
#define BRAID_WORKER_LOCAL_TRAINER_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "braid/core/spec.h"
#include "braid/core/tensor.h"
#include "braid/worker/tabular_data.h"

namespace braid::worker {

struct FitResult {
  double loss = 0;          // mean training loss over the last local epoch
  int64_t num_examples = 0; // training rows used (the FedAvg weight)
};

struct EvalResult {
  double loss = 0;          // mean cross-entropy
  double accuracy = 0;      // fraction correct (classifiers; 0 for language models)
  double perplexity = 0;    // exp(loss) for language models (loss per token); 0 otherwise
  int64_t num_tokens = 0;   // language models: labelled tokens evaluated
  int64_t num_examples = 0;
};

class LocalTrainer {
 public:
  // Builds the model of `job.model` with `num_features` inputs, initialized
  // deterministically from job.training.seed. InvalidArgument for a model
  // kind this trainer does not support.
  static absl::StatusOr<std::unique_ptr<LocalTrainer>> Create(const spec::JobSpec& job,
                                                              int num_features);
  virtual ~LocalTrainer() = default;

  // Current parameters, in layout order, as float32 tensors.
  virtual TensorList Weights() const = 0;
  // Replaces the parameters. InvalidArgument (naming the tensor) if names,
  // order, dtypes or shapes differ from Weights()' layout, or a value is not
  // finite.
  virtual absl::Status SetWeights(const TensorList& weights) = 0;

  // Trains `epochs` passes over `train` with the job's batch size, optimizer
  // and learning rate (optimizer state is fresh each call, as FedAvg does).
  // Shuffling is seeded by (job seed, `shuffle_seed`).
  virtual absl::StatusOr<FitResult> Fit(const TabularData& train, int epochs,
                                        int64_t shuffle_seed) = 0;

  // Evaluates without gradients. An empty set gives num_examples 0, loss 0.
  virtual EvalResult Evaluate(const TabularData& data) = 0;
};

}  // namespace braid::worker

#endif  // BRAID_WORKER_LOCAL_TRAINER_H_
