// The aggregation strategy seam, after Flower's Strategy but streaming: the
// round engine decides who trains and when a round closes; a strategy
// decides what the round's updates make of the global weights. Updates are
// folded one at a time as they arrive, so memory stays O(model) whatever
// the number of clients. A new strategy is a new file and a line in
// CreateStrategy (strategy_factory.h); the engine does not change.
#ifndef BRAID_AGGREGATOR_STRATEGY_H_
#define BRAID_AGGREGATOR_STRATEGY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "braid/aggregator/upload.h"

namespace braid::aggregator {

class SecAggRound;

// What the engine tells a strategy when a FIT round (or a new
// secure-aggregation attempt of it) begins.
struct RoundBegin {
  int round = 0;                // 1-based
  int sampled = 0;              // clients sampled for the round (>= 1)
  uint64_t model_floats = 0;    // float32 values in the model
  // Secure aggregation only: the attempt whose protocol the engine runs; the
  // masked inputs are summed in its ring. Owned by the engine; valid until
  // Finish returns or the next BeginRound. Null without secure aggregation.
  SecAggRound* secagg = nullptr;
  // The sampled clients' ids (Upload::client_id of their updates), sorted;
  // for strategies that keep per-client state (e.g. SCAFFOLD's variates).
  std::vector<std::string> cohort;
};

// What folding one update found.
struct FoldResult {
  // L2 norm of the update as received (before any weighting or clipping);
  // 0 when the strategy cannot know it (masked inputs).
  double norm = 0;
};

// Reads `len` bytes of the old global weights (the flat float32 data) at
// byte `offset` into `out`. An error fails the round.
using GlobalReader = std::function<absl::Status(uint64_t offset, void* out, uint64_t len)>;

// A streaming aggregation strategy. Lifecycle per FIT round:
// BeginRound, then Fold for each accepted update, then Finish (or
// BeginRound again, when the round is run again or a new one starts before
// any Finish: what was folded is dropped).
//
// Thread safety: the engine calls a strategy from one thread at a time (it
// serializes Fold calls under its fold mutex, and calls BeginRound, Finish,
// SaveState and RestoreState only when no Fold is in flight). Fold runs
// outside the engine's state lock, so it must not call back into the engine.
class AggregationStrategy {
 public:
  virtual ~AggregationStrategy() = default;

  // Short name for logs ("fedavg", "dp-fedavg", "secagg-sum").
  virtual absl::string_view name() const = 0;

  // Whether the strategy takes secure-aggregation masked inputs (uint32 ring
  // elements) rather than float32 deltas. The engine refuses uploads of the
  // other kind before they reach Fold.
  virtual bool masked_input() const = 0;

  // Starts accumulating a round: any earlier accumulation is dropped, and
  // the O(model) buffers are allocated (and faulted in) here, while the
  // clients train, not in the first upload's path. Errors fail the job
  // (reason: the status's reason payload, see WithReason, else
  // AggregationFailed).
  virtual absl::Status BeginRound(const RoundBegin& round) = 0;

  // Folds one complete, checked update (values finite, norm within the job's
  // bound, its client sampled and not yet counted, its weight() decided by
  // the engine: the weights of a round's updates sum to at most 1, so a
  // weighted sum stays within the range of the values) into the round. A
  // strategy that weighs updates uses weight(), never the client's claimed
  // num_examples(). The
  // engine has handed the upload's slot over: the strategy must mark what
  // it has read with update.Consumed(bytes), in order and as it goes (the
  // next upload overwrites only consumed bytes), and must not keep `update`
  // or its data after returning. Errors refuse the update (nothing of it
  // may remain in the round): InvalidArgument or Aborted, passed to the
  // client.
  virtual absl::StatusOr<FoldResult> Fold(Upload& update) = 0;

  // Computes the new global weights from the old ones (read through
  // `old_global`, in pieces, so memory stays O(model)) and what was folded.
  // Returns model_floats values, owned by the strategy and valid until the
  // next BeginRound or its destruction. The engine commits them only if
  // every one is finite (else the job fails, reason NonFiniteModel, and the
  // old global stays). Errors fail the job (reason as for
  // BeginRound; a failed read keeps the reader's).
  virtual absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) = 0;

  // State that must survive a restart between rounds (e.g. FedAdam's
  // moments, SCAFFOLD's control variates), as opaque bytes the checkpoint
  // keeps beside the weights. Called after each Finish; empty = none.
  virtual std::string SaveState() const = 0;
  // Restores what SaveState returned (empty: a fresh job, or a strategy
  // without state). Called once, before the first BeginRound.
  // InvalidArgument/DataLoss if the bytes are not this strategy's.
  virtual absl::Status RestoreState(absl::string_view state) = 0;
};

// The reason (CamelCase, as the job status shows it) a strategy's error
// fails the job with, carried as a payload of the status.
absl::Status WithReason(absl::Status status, absl::string_view reason);
// The reason WithReason attached, or `fallback`.
std::string ReasonOf(const absl::Status& status, absl::string_view fallback);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_STRATEGY_H_
