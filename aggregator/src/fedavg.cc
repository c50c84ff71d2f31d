// Built with -O3 (aggregator/CMakeLists.txt) and no -ffast-math, so the
// compiler may not reassociate a float reduction by itself. The loops below
// are written so that it needs to: kLanes independent accumulators, held in
// two 8-float vector values (one AVX2 register each, two SSE2 ones), lane l
// taking elements l, l + kLanes, ... in order, so that both copies of
// core/vector_clones.h give the same bits; each block's float partials are
// promoted to double, so rounding error stays that of summing
// kBlock / kLanes = 64 squares in float. The Apply* kernels are left to the
// auto-vectorizer: `g++ -O3 -fopt-info-vec-optimized -c fedavg.cc` reports
// them "vectorized using 16 byte vectors" (32 in their AVX2 copies).
#include "braid/aggregator/fedavg.h"

#include <cstring>
#include <limits>

#include "braid/core/vector_clones.h"

namespace braid::aggregator {
namespace {

constexpr size_t kLanes = 16;    // independent sums of squares
constexpr size_t kBlock = 1024;  // floats per float-accumulated block (4 KiB)

// Eight float lanes as one value (a GCC/Clang vector type): one AVX2
// register, two SSE2 ones. Two of them hold the kLanes lanes. Written with
// vector types rather than left to the auto-vectorizer, which turned the
// lane arrays of the AVX2 copy into shuffles and stack spills.
typedef float Lanes8 __attribute__((vector_size(32)));
static_assert(kLanes == 2 * 8, "the lane loops hold kLanes as two Lanes8");

inline Lanes8 Load8(const float* p) {
  Lanes8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void Store8(float* p, Lanes8 v) { std::memcpy(p, &v, sizeof(v)); }

// Sums the lanes in lane order, in double.
inline double SumLanes(Lanes8 lo, Lanes8 hi) {
  double total = 0.0;
  for (int l = 0; l < 8; ++l) total += lo[l];
  for (int l = 0; l < 8; ++l) total += hi[l];
  return total;
}

// Folds the first (n / kLanes) * kLanes elements; returns their sum of
// squares, accumulated in float per lane (lane l takes the elements i with
// i % kLanes == l, in order) and summed in double.
inline double FoldLanes(float* __restrict sum, const float* __restrict update, size_t n,
                        float weight) {
  const Lanes8 w = weight - Lanes8{};  // weight in every lane
  Lanes8 acc_lo = {}, acc_hi = {};
  for (size_t i = 0; i + kLanes <= n; i += kLanes) {
    const Lanes8 lo = Load8(update + i), hi = Load8(update + i + 8);
    Store8(sum + i, Load8(sum + i) + w * lo);
    Store8(sum + i + 8, Load8(sum + i + 8) + w * hi);
    acc_lo += lo * lo;
    acc_hi += hi * hi;
  }
  return SumLanes(acc_lo, acc_hi);
}

// Sum of squares of the first (n / kLanes) * kLanes floats at `x` (any
// alignment), like FoldLanes; adds to *nonfinite a value that stays 0 when
// all of them are finite and becomes NaN otherwise (u * 0 is NaN exactly for
// infinities and NaNs; without -ffast-math the compiler must keep the
// multiply). kCopy: also stores them to `copy_to`, in the same pass.
template <bool kCopy>
inline double SquareLanes(const char* __restrict x, size_t n, float* nonfinite,
                          float* __restrict copy_to) {
  Lanes8 acc_lo = {}, acc_hi = {}, zero_lo = {}, zero_hi = {};
  for (size_t i = 0; i + kLanes <= n; i += kLanes) {
    Lanes8 lo, hi;
    std::memcpy(&lo, x + i * sizeof(float), sizeof(lo));
    std::memcpy(&hi, x + (i + 8) * sizeof(float), sizeof(hi));
    if constexpr (kCopy) {
      Store8(copy_to + i, lo);
      Store8(copy_to + i + 8, hi);
    }
    acc_lo += lo * lo;
    acc_hi += hi * hi;
    zero_lo += lo * 0.0f;
    zero_hi += hi * 0.0f;
  }
  *nonfinite += static_cast<float>(SumLanes(zero_lo, zero_hi));
  return SumLanes(acc_lo, acc_hi);
}

// The sum of squares of n floats at `x` (any alignment), each squared and
// summed in double: the slow path for a block whose float lanes overflowed
// (finite values above about 1.8e19 have squares beyond float's range, but
// not double's).
double SquaresInDouble(const char* x, size_t n) {
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, x + i * sizeof(float), sizeof(v));
    total += static_cast<double>(v) * v;
  }
  return total;
}

// A block's sum of squares from its float lanes, or, when those overflowed
// (to infinity: never for values below about 1.8e19), the block's again in
// double, so that the norm of finite values is finite.
inline double Exact(double lanes, const char* x, size_t n) {
  return lanes <= std::numeric_limits<double>::max() ? lanes : SquaresInDouble(x, n);
}

// SumSquares over n floats at `x`, also copied to `copy_to` when kCopy.
template <bool kCopy>
inline double SquareBlocks(const char* __restrict x, size_t n, bool* all_finite,
                           float* __restrict copy_to) {
  // (No offset is added to a null copy_to.)
  auto copy_at = [copy_to](size_t i) { return kCopy ? copy_to + i : nullptr; };
  double total = 0.0;
  float nonfinite = 0.0f;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {  // constant trip count
    const char* block = x + i * sizeof(float);
    total += Exact(SquareLanes<kCopy>(block, kBlock, &nonfinite, copy_at(i)), block, kBlock);
  }
  const char* tail = x + i * sizeof(float);
  total += Exact(SquareLanes<kCopy>(tail, n - i, &nonfinite, copy_at(i)), tail,
                 (n - i) / kLanes * kLanes);
  for (i += (n - i) / kLanes * kLanes; i < n; ++i) {
    float v;
    std::memcpy(&v, x + i * sizeof(float), sizeof(v));
    if constexpr (kCopy) copy_to[i] = v;
    total += static_cast<double>(v) * v;
    nonfinite += v * 0.0f;
  }
  *all_finite = nonfinite == 0.0f;
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

BRAID_VECTOR_CLONES double FoldWeighted(float* __restrict sum, const float* __restrict update,
                                        size_t n, float weight) {
  double total = 0.0;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    const double lanes = FoldLanes(sum + i, update + i, kBlock, weight);  // constant trip count
    total += Exact(lanes, reinterpret_cast<const char*>(update + i), kBlock);
  }
  const double lanes = FoldLanes(sum + i, update + i, n - i, weight);
  total += Exact(lanes, reinterpret_cast<const char*>(update + i), (n - i) / kLanes * kLanes);
  for (i += (n - i) / kLanes * kLanes; i < n; ++i) {
    const float u = update[i];
    sum[i] += weight * u;
    total += static_cast<double>(u) * u;
  }
  return total;
}

BRAID_VECTOR_CLONES double SumSquares(const float* x, size_t n, bool* all_finite) {
  return SquareBlocks<false>(reinterpret_cast<const char*>(x), n, all_finite, nullptr);
}

BRAID_VECTOR_CLONES double CopySumSquares(float* __restrict dst, const void* __restrict src,
                                          size_t n, bool* all_finite) {
  return SquareBlocks<true>(static_cast<const char*>(src), n, all_finite, dst);
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
