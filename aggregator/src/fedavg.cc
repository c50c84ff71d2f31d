// Built with -O3 (aggregator/CMakeLists.txt) and no -ffast-math, so GCC may
// not reassociate a float reduction by itself. The loops below are written so
// that it needs to: kLanes independent accumulators, one per element of a
// fixed-size array, become whole vector registers (SSE2 on the default
// x86-64 target, wider with -march flags); each block's float partials are
// promoted to double, so rounding error stays that of summing
// kBlock / kLanes = 64 squares in float. Check with
//   g++ -O3 -fopt-info-vec-optimized -c fedavg.cc
// which reports the inner loops of FoldLanes and the Apply* kernels
// "vectorized using 16 byte vectors" (and 32 in their AVX2 copies,
// core/vector_clones.h; the lanes make both copies give the same bits).
#include "braid/aggregator/fedavg.h"

#include "braid/core/vector_clones.h"

namespace braid::aggregator {
namespace {

constexpr size_t kLanes = 16;    // independent sums of squares
constexpr size_t kBlock = 1024;  // floats per float-accumulated block (4 KiB)

// Folds the first (n / kLanes) * kLanes elements; returns their sum of
// squares, accumulated in float per lane and summed in double.
inline double FoldLanes(float* __restrict sum, const float* __restrict update, size_t n,
                        float weight) {
  float acc[kLanes] = {};
  for (size_t i = 0; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) {
      const float u = update[i + l];
      sum[i + l] += weight * u;
      acc[l] += u * u;
    }
  }
  double total = 0.0;
  for (size_t l = 0; l < kLanes; ++l) total += acc[l];
  return total;
}

BRAID_VECTOR_CLONES double Fold(float* __restrict sum, const float* __restrict update, size_t n,
                                float weight) {
  double total = 0.0;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    total += FoldLanes(sum + i, update + i, kBlock, weight);  // constant trip count
  }
  total += FoldLanes(sum + i, update + i, n - i, weight);
  for (i += (n - i) / kLanes * kLanes; i < n; ++i) {
    const float u = update[i];
    sum[i] += weight * u;
    total += static_cast<double>(u) * u;
  }
  return total;
}

// Sum of squares of the first (n / kLanes) * kLanes elements, like
// FoldLanes; adds to *nonfinite a value that stays 0 when all of them are
// finite and becomes NaN otherwise (u * 0 is NaN exactly for infinities and
// NaNs; without -ffast-math GCC must keep the multiply).
inline double SquareLanes(const float* __restrict x, size_t n, float* nonfinite) {
  float acc[kLanes] = {};
  float zero[kLanes] = {};
  for (size_t i = 0; i + kLanes <= n; i += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) {
      const float u = x[i + l];
      acc[l] += u * u;
      zero[l] += u * 0.0f;
    }
  }
  double total = 0.0;
  for (size_t l = 0; l < kLanes; ++l) {
    total += acc[l];
    *nonfinite += zero[l];
  }
  return total;
}

// out = base + sum * scale, rounded once from double. One kernel per aliasing
// case, so that every pointer a kernel writes through is __restrict and GCC
// vectorizes without runtime overlap checks (which would send the in-place
// case, out == sum, down the scalar path).
BRAID_VECTOR_CLONES void ApplyDistinct(float* __restrict out, const float* __restrict base,
                                       const float* __restrict sum, size_t n, double scale) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<double>(base[i]) + static_cast<double>(sum[i]) * scale);
  }
}

BRAID_VECTOR_CLONES void ApplyIntoSum(float* __restrict sum_out, const float* __restrict base,
                                      size_t n, double scale) {
  for (size_t i = 0; i < n; ++i) {
    sum_out[i] =
        static_cast<float>(static_cast<double>(base[i]) + static_cast<double>(sum_out[i]) * scale);
  }
}

BRAID_VECTOR_CLONES void ApplyIntoBase(float* __restrict base_out, const float* __restrict sum,
                                       size_t n, double scale) {
  for (size_t i = 0; i < n; ++i) {
    base_out[i] =
        static_cast<float>(static_cast<double>(base_out[i]) + static_cast<double>(sum[i]) * scale);
  }
}

BRAID_VECTOR_CLONES void ApplyAllSame(float* __restrict io, size_t n, double scale) {
  for (size_t i = 0; i < n; ++i) {
    const double v = io[i];
    io[i] = static_cast<float>(v + v * scale);
  }
}

}  // namespace

double FoldWeighted(float* sum, const float* update, size_t n, float weight) {
  return Fold(sum, update, n, weight);
}

BRAID_VECTOR_CLONES double SumSquares(const float* x, size_t n, bool* all_finite) {
  double total = 0.0;
  float nonfinite = 0.0f;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    total += SquareLanes(x + i, kBlock, &nonfinite);  // constant trip count
  }
  total += SquareLanes(x + i, n - i, &nonfinite);
  for (i += (n - i) / kLanes * kLanes; i < n; ++i) {
    total += static_cast<double>(x[i]) * x[i];
    nonfinite += x[i] * 0.0f;
  }
  *all_finite = nonfinite == 0.0f;
  return total;
}

void ApplyAverage(float* out, const float* base, const float* sum, size_t n, double scale) {
  if (out == sum && out == base) {
    ApplyAllSame(out, n, scale);
  } else if (out == sum) {
    ApplyIntoSum(out, base, n, scale);
  } else if (out == base) {
    ApplyIntoBase(out, sum, n, scale);
  } else {
    ApplyDistinct(out, base, sum, n, scale);  // base == sum is fine: both only read
  }
}

}  // namespace braid::aggregator
