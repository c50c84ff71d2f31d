// What a job costs the machine that runs it: processes, model size and an
// estimate of memory, computed from the job alone (and, for a language
// model whose base is a local folder, its config.json), so that `braid
// validate` and `braid run` refuse a job that cannot run here before
// starting a single process.
#ifndef BRAID_CORE_JOB_FOOTPRINT_H_
#define BRAID_CORE_JOB_FOOTPRINT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "braid/core/spec.h"

namespace braid::spec {

// Parameters of an MLP with `inputs` inputs, the hidden widths and
// `classes` outputs (weights and biases of each Linear layer). Saturates at
// INT64_MAX instead of overflowing.
int64_t MlpParameters(int64_t inputs, const std::vector<int>& hidden, int64_t classes);

// About how many parameters a Hugging Face decoder's config.json describes
// (model_type llama, qwen2, mistral or gpt2: embeddings, attention, MLP,
// norms, an untied lm_head). InvalidArgument when the text is not a JSON
// object or lacks the sizes (vocab_size, hidden_size / n_embd, ...); the
// worker's own parser (worker/llm_config.h) says precisely what is wrong.
absl::StatusOr<int64_t> DecoderParameters(std::string_view config_json);

struct Footprint {
  int64_t worker_processes = 0;  // the sum of the tenants' replicas
  int64_t processes = 0;         // worker_processes + the aggregator
  // The model's parameters: the MLP's from its layer sizes; a language
  // model's from the config.json of a local base folder; -1 when unknown
  // (a base on a persistentVolumeClaim, an unreadable config).
  int64_t parameters = -1;
  // Estimated resident memory of the whole run (every worker and the
  // aggregator), in bytes; -1 when parameters are unknown.
  int64_t memory_bytes = -1;
};

// The footprint of a parsed job (`job.base_dir` resolves the base folder).
Footprint ComputeFootprint(const JobSpec& job);

// What `braid run` (and `braid validate`) allows on this machine.
struct MachineLimits {
  // Worker processes; default max(64, 16 x CPUs) (--max-workers).
  int64_t max_worker_processes = 64;
  // Estimated memory of the whole run; default the machine's MemTotal
  // (/proc/meminfo) (--max-memory-mib). 0 = no bound.
  int64_t max_memory_bytes = 0;
};

// The defaults above for this machine.
MachineLimits DefaultMachineLimits();

// Problems of `job` against `limits`, each naming the field, both values and
// the limit with the flag that raises it, e.g.
//   spec.tenants: 1000 tenants x 1000 replicas = 1000000 worker processes;
//   braid run allows at most 64 (raise with --max-workers)
// Empty when the job fits.
std::vector<FieldError> CheckMachineLimits(const JobSpec& job, const MachineLimits& limits);

// "1.1 TB", "512.0 MB": bytes for people (powers of 1000).
std::string HumanBytes(double bytes);
// "275,000,000,000".
std::string GroupedDigits(int64_t n);

}  // namespace braid::spec

#endif  // BRAID_CORE_JOB_FOOTPRINT_H_
