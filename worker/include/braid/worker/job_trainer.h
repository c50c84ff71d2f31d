// The model a job names, bound to the data one worker command uses: the
// seam between braid-worker's commands (run, init, evaluate, local, export)
// and the model kinds.
//
//   kind mlp:          the MLP of local_trainer.h on CSV rows; the weights
//                      are every parameter.
//   kind llama / gpt2: a LoRA adapter (lora.h) on the frozen base checkpoint
//                      spec.model.base, on JSONL records (lm_data.h); the
//                      weights are the adapter tensors only (PEFT names, the
//                      adapter's fixed order), so only they travel.
//
// Not thread-safe; one trainer per worker process.
#ifndef BRAID_WORKER_JOB_TRAINER_H_
#define BRAID_WORKER_JOB_TRAINER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "braid/core/spec.h"
#include "braid/core/tensor.h"
#include "braid/worker/local_trainer.h"

namespace braid::worker {

// Where a trainer's model and data come from.
struct TrainerSource {
  // The base checkpoint folder of an LLM job; "" = spec.model.base.path
  // resolved against the job file (a PVC base needs this set: inside a pod
  // it is the mount path).
  std::string base_folder;
  // The data file; "" = no data (init, export).
  std::string data_file;
  // true: the whole file is the evaluation set (evaluate). false: the file is
  // split into train and eval (spec.data.evalFraction, seeded) and each part
  // sharded: this trainer keeps every `replicas`-th example from `replica`.
  bool evaluate_only = false;
  int replica = 0;
  int replicas = 1;
};

class JobTrainer {
 public:
  // Builds the job's model, initialized deterministically from
  // spec.training.seed (LLM jobs: the base loaded from its folder and a
  // fresh adapter whose lora_B is zero, so it computes what the base does),
  // and reads the data. Errors: InvalidArgument / NotFound naming the file
  // or field for a bad job, checkpoint, tokenizer or data file (unusable
  // lines of a JSONL file are skipped and reported on stderr); a data file
  // with no usable example is InvalidArgument.
  static absl::StatusOr<std::unique_ptr<JobTrainer>> Create(const spec::JobSpec& job,
                                                            const TrainerSource& source);
  virtual ~JobTrainer() = default;

  // The exchanged parameters (the wire layout), float32.
  virtual TensorList Weights() const = 0;
  // Replaces them. InvalidArgument naming the tensor when names, dtypes or
  // shapes differ from Weights()' layout; the model is unchanged then.
  virtual absl::Status SetWeights(const TensorList& weights) = 0;

  // Examples in the training part (the FedAvg weight).
  virtual int64_t num_train_examples() const = 0;
  // `epochs` passes over the training part with the job's batch size,
  // optimizer and learning rate (fresh optimizer state each call), shuffled
  // by (job seed, shuffle_seed). LLM jobs: the loss is the mean over the
  // tokens that carry a label (the response of prompt/response records).
  virtual absl::StatusOr<FitResult> Fit(int epochs, int64_t shuffle_seed) = 0;
  // Evaluates on the eval part without gradients. LLM jobs: loss is the mean
  // per-token cross-entropy over every labelled token, perplexity its exp,
  // accuracy 0. Internal on a LibTorch failure.
  virtual absl::StatusOr<EvalResult> Evaluate() = 0;

  // Writes the job's deliverable for the current weights into `dir`
  // (created): for LLM jobs `dir`/adapter/adapter_model.safetensors and
  // adapter_config.json in PEFT's layout, plus `dir`/merged/model.safetensors
  // with config.json and the tokenizer files of the base when
  // spec.model.adapter.writeMerged. Unimplemented for the MLP (its weights
  // file is the deliverable). Errors: the file system's, naming the path.
  virtual absl::Status Export(const std::string& dir) = 0;
};

}  // namespace braid::worker

#endif  // BRAID_WORKER_JOB_TRAINER_H_
