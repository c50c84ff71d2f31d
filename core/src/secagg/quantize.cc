#include "braid/core/secagg/quantize.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"
#include "braid/core/vector_clones.h"

namespace braid::secagg {

namespace {

// x clipped to [-c, c] (NaN as 0), in steps above -c: in [0, 2c / step].
inline double Level(float value, double c, double inv_step) {
  double x = value;
  if (std::isnan(x)) x = 0;
  x = std::clamp(x, -c, c);
  return (x + c) * inv_step;
}

// Round-to-nearest quantization of one value, written so that GCC
// vectorizes the loops below (-O3 -fno-trapping-math, core/CMakeLists.txt):
// no calls, only selects (the same clipping as Level). A level is in
// [0, levels] with levels < 2^32, so adding 2^52 rounds it to an integer (to
// nearest, ties to even, in the default rounding mode) held in the low 32
// bits of the double's mantissa.
inline uint32_t NearestLevel(float value, double c, double inv_step, double levels) {
  constexpr double kRoundingBias = 0x1p52;
  double x = value;
  x = x != x ? 0.0 : x;  // NaN as 0
  x = x < -c ? -c : x;
  x = x > c ? c : x;
  double level = (x + c) * inv_step;
  level = level > levels ? levels : level;
  uint64_t bits;
  const double biased = level + kRoundingBias;
  std::memcpy(&bits, &biased, sizeof(bits));
  return static_cast<uint32_t>(bits);
}

// Stochastic rounding of one value with `random` uniform bits.
inline uint32_t StochasticLevel(float value, double c, double inv_step, double levels,
                                uint32_t random) {
  const double level = Level(value, c, inv_step);
  const double floor = std::floor(level);
  const double u = random * (1.0 / 4294967296.0);  // in [0, 1)
  const double q = floor + (u < level - floor ? 1.0 : 0.0);
  return static_cast<uint32_t>(std::min(q, levels));
}

// Round-to-nearest over a whole vector: from float storage into a separate
// output (Quantize), and in place over float bits (QuantizeInPlace).
BRAID_VECTOR_CLONES void NearestFromFloats(const float* __restrict in, size_t n, double c,
                                           double inv_step, double levels,
                                           uint32_t* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = NearestLevel(in[i], c, inv_step, levels);
}

BRAID_VECTOR_CLONES void NearestInPlace(uint32_t* io, size_t n, double c, double inv_step,
                                        double levels) {
  for (size_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, io + i, sizeof(x));
    io[i] = NearestLevel(x, c, inv_step, levels);
  }
}

float FloatFromBits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

// Encodes n values: value(i) gives the i-th, out[i] receives its encoding
// (out may be where the values are read from); nearest(c, inv_step, levels)
// encodes them all with round-to-nearest.
template <typename ValueAt, typename Nearest>
absl::Status Encode(const QuantizationParams& params, size_t n, ValueAt value, uint32_t* out,
                    Nearest nearest) {
  if (absl::Status s = ValidateQuantization(params); !s.ok()) return s;
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  const double c = params.clip;
  const double inv_step = 1.0 / QuantizationStep(params);
  const double levels = QuantizationLevels(params);
  if (params.rounding == Rounding::kNearest) {
    nearest(c, inv_step, levels);
    return absl::OkStatus();
  }
  constexpr size_t kChunk = 4096;
  uint32_t random[kChunk];
  for (size_t start = 0; start < n; start += kChunk) {
    const size_t len = std::min(kChunk, n - start);
    randombytes_buf(random, len * sizeof(uint32_t));
    for (size_t i = 0; i < len; ++i) {
      out[start + i] = StochasticLevel(value(start + i), c, inv_step, levels, random[i]);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateQuantization(const QuantizationParams& params) {
  if (!(params.clip > 0) || !std::isfinite(params.clip)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("quantization.clip: must be a finite number > 0, got %g", params.clip));
  }
  if (params.max_summands == 0) {
    return absl::InvalidArgumentError("quantization.max_summands: must be >= 1");
  }
  if (params.rounding != Rounding::kNearest && params.rounding != Rounding::kStochastic) {
    return absl::InvalidArgumentError("quantization.rounding: unknown rounding mode");
  }
  return absl::OkStatus();
}

uint32_t QuantizationLevels(const QuantizationParams& params) {
  return std::numeric_limits<uint32_t>::max() / params.max_summands;
}

double QuantizationStep(const QuantizationParams& params) {
  return 2.0 * params.clip / static_cast<double>(QuantizationLevels(params));
}

absl::Status Quantize(const QuantizationParams& params, absl::Span<const float> values,
                      std::vector<uint32_t>* out) {
  out->resize(values.size());
  const float* in = values.data();
  uint32_t* bits = out->data();
  const size_t n = values.size();
  return Encode(params, n, [in](size_t i) { return in[i]; }, bits,
                [&](double c, double inv_step, double levels) {
                  NearestFromFloats(in, n, c, inv_step, levels, bits);
                });
}

absl::Status QuantizeInPlace(const QuantizationParams& params, absl::Span<uint32_t> io) {
  uint32_t* bits = io.data();
  const size_t n = io.size();
  return Encode(params, n, [bits](size_t i) { return FloatFromBits(bits[i]); }, bits,
                [&](double c, double inv_step, double levels) {
                  NearestInPlace(bits, n, c, inv_step, levels);
                });
}

absl::StatusOr<std::vector<float>> DequantizeSum(const QuantizationParams& params,
                                                 absl::Span<const uint32_t> sum,
                                                 uint32_t summands) {
  if (absl::Status s = ValidateQuantization(params); !s.ok()) return s;
  if (summands == 0 || summands > params.max_summands) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "dequantize: summands must be in [1, %u], got %u", params.max_summands, summands));
  }
  const double step = QuantizationStep(params);
  const double offset = summands * params.clip;
  std::vector<float> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) {
    out[i] = static_cast<float>(static_cast<double>(sum[i]) * step - offset);
  }
  return out;
}

}  // namespace braid::secagg
