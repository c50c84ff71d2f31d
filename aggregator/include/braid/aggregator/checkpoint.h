// The aggregator's durable state in one directory:
//   model.safetensors  the global weights after the last aggregated round
//   state.json         job name, phase, the history of rounds, and the
//                      audit log's head after the aggregator's last append
//                      ("audit": {"entries", "head"}; see audit_log.h)
//   strategy.state     the aggregation strategy's state after that round
//                      (opaque bytes; absent when the strategy keeps none)
// Each is replaced atomically (write, fsync, rename), so a killed
// aggregator restarts from the last complete round and loses none.
#ifndef BRAID_AGGREGATOR_CHECKPOINT_H_
#define BRAID_AGGREGATOR_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/audit_log.h"
#include "braid/core/safetensors.h"

namespace braid::aggregator {

// One round as the summary, status and dashboard show it.
// One tenant's evaluation of a round's aggregated model on its own eval
// split, over all its replicas (weighted by examples).
struct TenantEval {
  std::string tenant;
  double eval_loss = 0;
  double eval_accuracy = 0;
  int64_t eval_examples = 0;
};

struct RoundRecord {
  int round = 0;
  int sampled = 0;
  int participants = 0;            // FIT updates folded in
  std::vector<std::string> tenants;  // tenants that contributed, sorted, unique
  double train_loss = 0;           // weighted by examples
  double eval_loss = 0;            // of the aggregated model, weighted by examples
  double eval_accuracy = 0;
  int64_t eval_examples = 0;       // 0 until evaluation has finished
  std::vector<TenantEval> tenant_eval;  // per tenant that reported, by name
  bool evaluated = false;
  double seconds = 0;              // from the round's start to its evaluation
  int64_t bytes_up = 0;
  int64_t bytes_down = 0;
  double update_norm_mean = 0;     // mean L2 norm of the clients' deltas
  // Differential privacy only (0 otherwise): the round's sampling rate as
  // the accountant composed it, and epsilon spent after it (at the job's
  // delta), all rounds so far included.
  double sampling_rate = 0;
  double epsilon = 0;
};

struct CheckpointState {
  std::string job;
  std::string phase = "Pending";  // Pending | Running | Succeeded | Failed
  std::string reason;
  std::string message;
  std::vector<RoundRecord> history;  // rounds 1..n in order
};

// The on-disk model plus its layout. Not thread-safe for writers, except
// that WriteAuditAnchor and audit_anchor() may be called from any thread,
// also while another writes the state; readers open their own file
// descriptors (ReadAt), so a writer's rename never disturbs a stream in
// progress: it keeps reading the version it opened.
class Checkpoint {
 public:
  // Opens `dir` (created if missing). If it holds a checkpoint for a
  // different job, FailedPrecondition. If it holds none, seeds it from
  // `initial_model` (a safetensors file of F32 tensors); if that is empty
  // too, FailedPrecondition saying what to pass.
  static absl::StatusOr<Checkpoint> Open(const std::string& dir, const std::string& job,
                                         const std::string& initial_model);

  const std::string& model_path() const { return model_path_; }
  const safetensors::Index& index() const { return index_; }
  uint64_t model_bytes() const { return model_bytes_; }
  const CheckpointState& state() const { return state_; }

  // Reads `len` bytes of the flat weights (the data section) at `offset`.
  absl::Status ReadWeights(uint64_t offset, void* out, uint64_t len) const;

  // Replaces the weights with `data` (model_bytes() bytes, same layout).
  absl::Status WriteWeights(const void* data);
  // Replaces state.json (with the current audit anchor).
  absl::Status WriteState(const CheckpointState& state);

  // The audit log's head after the aggregator's last append, as read from
  // state.json at Open ({0, ""} when it holds none: a new job, or one
  // checkpointed before anchors were kept) and then as last written.
  audit::Anchor audit_anchor() const;
  // Records `anchor` and replaces state.json with it (and the last state
  // written). Called after each append to the audit log, in append order.
  absl::Status WriteAuditAnchor(const audit::Anchor& anchor);

  // The strategy's saved state (AggregationStrategy::SaveState); empty if
  // none was saved.
  absl::StatusOr<std::string> ReadStrategyState() const;
  // Replaces it; empty removes it (no file is written for a strategy that
  // keeps no state).
  absl::Status WriteStrategyState(std::string_view state);

 private:
  std::string dir_;
  std::string model_path_;
  std::string state_path_;
  std::string strategy_path_;
  safetensors::Index index_;
  uint64_t model_bytes_ = 0;
  std::string header_;  // the model file's bytes before its data section
  CheckpointState state_;
  // Serializes writes of state.json between the engine (WriteState) and
  // the audit log's appenders (WriteAuditAnchor). Boxed so that a
  // Checkpoint stays movable.
  struct AnchorBox {
    absl::Mutex mu;
    audit::Anchor anchor ABSL_GUARDED_BY(mu);
  };
  std::unique_ptr<AnchorBox> audit_ = std::make_unique<AnchorBox>();

  absl::Status WriteStateFile(const CheckpointState& state, const audit::Anchor& anchor);
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_CHECKPOINT_H_
