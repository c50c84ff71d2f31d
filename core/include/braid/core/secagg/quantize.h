// Fixed-point encoding of float updates into the ring Z_{2^32}, so that
// masked values can be summed with wrap-around arithmetic and the sum of the
// unmasked values decoded back to floats.
//
// Encoding, for a round where at most n values are ever summed:
//   levels L = floor((2^32 - 1) / n)         (headroom: n * L <= 2^32 - 1, so a
//                                             sum of n encodings never wraps)
//   step   = 2c / L
//   encode(x) = round((clip(x, -c, c) + c) / step)   in [0, L]
//   decode(S, k) = S * step - k * c          (S: sum of k encodings, k <= n)
// Rounding (see Rounding below):
//   kNearest:    |decode(sum of k) - sum of clipped x| <= k * step / 2
//   kStochastic: unbiased (E[encode(x)] = (x + c) / step); the error is < k * step
// In both cases the decoded float adds its own rounding, <= |sum| * 2^-24.
// Example: c = 1, n = 100 gives step = 4.66e-8 and a worst case of 2.3e-6
// per element (kNearest) for a 100-client sum.
//
// Values outside [-c, c] are clipped (NaN encodes as 0.0, i.e. level L/2
// rounded); choose c to cover the update's range, including any DP noise
// added before encoding. Thread-safe: all functions are pure.
#ifndef BRAID_CORE_SECAGG_QUANTIZE_H_
#define BRAID_CORE_SECAGG_QUANTIZE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace braid::secagg {

enum class Rounding : uint8_t {
  kNearest = 0,     // deterministic, round half to even
  kStochastic = 1,  // round up with probability equal to the fraction (libsodium randombytes)
};

struct QuantizationParams {
  double clip = 1.0;             // c > 0: each element is clipped to [-c, c]
  uint32_t max_summands = 1;     // n >= 1: the most encodings ever added together
  Rounding rounding = Rounding::kNearest;
};

// OK, or kInvalidArgument naming the bad field.
absl::Status ValidateQuantization(const QuantizationParams& params);

// L = floor((2^32 - 1) / n) and step = 2c / L for `params` (assumed valid).
uint32_t QuantizationLevels(const QuantizationParams& params);
double QuantizationStep(const QuantizationParams& params);

// Encodes `values` into `out` (resized to values.size()).
// kInvalidArgument if the params are invalid.
absl::Status Quantize(const QuantizationParams& params, absl::Span<const float> values,
                      std::vector<uint32_t>* out);

// Quantize in place: `io` holds float32 values as their bit patterns
// (std::memcpy'd in) and receives their encodings, so an update is encoded
// without a second model-sized vector.
absl::Status QuantizeInPlace(const QuantizationParams& params, absl::Span<uint32_t> io);

// Decodes the ring sum of `summands` encodings. kInvalidArgument if summands
// is 0 or more than params.max_summands, or the params are invalid.
absl::StatusOr<std::vector<float>> DequantizeSum(const QuantizationParams& params,
                                                 absl::Span<const uint32_t> sum,
                                                 uint32_t summands);

}  // namespace braid::secagg

#endif  // BRAID_CORE_SECAGG_QUANTIZE_H_
