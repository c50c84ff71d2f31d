// The running sum a plaintext strategy folds updates into, and the step that
// turns a sum into the next global weights. Internal to the aggregator.
#ifndef BRAID_AGGREGATOR_SRC_WEIGHTED_SUM_H_
#define BRAID_AGGREGATOR_SRC_WEIGHTED_SUM_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "braid/aggregator/strategy.h"
#include "braid/aggregator/upload.h"

namespace braid::aggregator {

// sum += weight * update over a model-sized buffer. Thread-compatible.
class WeightedSum {
 public:
  // Allocates (and faults in) `floats` zeros, or zeroes the buffer kept
  // from an earlier round.
  void Reset(uint64_t floats);
  // Folds `update` with `weight`, a piece at a time, marking each piece
  // consumed as soon as it is folded (so the next upload may overwrite it);
  // returns the update's L2 norm. Precondition: update holds Reset's floats.
  double Fold(Upload& update, float weight);
  std::vector<float>& values() { return sum_; }

 private:
  std::vector<float> sum_;
};

// sum = old global + sum * scale, reading the old global a bounded piece at
// a time through `old_global` (so memory stays O(model)). The reader's
// error is returned as it is.
absl::Status ApplyToGlobal(std::vector<float>& sum, const GlobalReader& old_global, double scale);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SRC_WEIGHTED_SUM_H_
