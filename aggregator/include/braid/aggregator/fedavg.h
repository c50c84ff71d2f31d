// FedAvg arithmetic on flat float32 buffers: the aggregator's hot loop.
#ifndef BRAID_AGGREGATOR_FEDAVG_H_
#define BRAID_AGGREGATOR_FEDAVG_H_

#include <cstddef>

namespace braid::aggregator {

// sum[i] += weight * update[i] for i in [0, n), in one pass that also
// returns sum over i of update[i]^2 (accumulated in double) so the update's
// L2 norm costs no second pass. Memory-bound: reads update and sum once,
// writes sum once. Buffers must not overlap. Thread-compatible: callers
// serialize writers of the same `sum`.
// (Precision: squares are summed in float within blocks of 1024 elements,
// 16 lanes of 64 terms each, and the block sums in double: the relative
// error is bounded by that of 64-term float sums, about 4e-6. A block whose
// float sum overflows, as for values above about 1.8e19, is summed again in
// double: the norm of finite values is always finite.)
double FoldWeighted(float* sum, const float* update, size_t n, float weight);

// The sum over i of x[i]^2 (precision as FoldWeighted's), and in
// *all_finite whether every x[i] is finite (no NaN, no infinity): how the
// aggregator checks an update's values as they arrive.
double SumSquares(const float* x, size_t n, bool* all_finite);

// Copies n floats from `src` (any alignment: a received frame's bytes) to
// `dst` and returns SumSquares of them (the same bits), in one pass. The
// buffers must not overlap.
double CopySumSquares(float* dst, const void* src, size_t n, bool* all_finite);

// out[i] = base[i] + sum[i] * scale for i in [0, n): turns a weighted sum of
// deltas into the next global weights (scale = 1 / total weight). `out` may
// alias `sum` or `base` (the same pointer; partially overlapping ranges are
// not supported). Computed in double and rounded once to float.
void ApplyAverage(float* out, const float* base, const float* sum, size_t n, double scale);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_FEDAVG_H_
