#include "braid/core/secagg/quantize.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"

namespace braid::secagg {

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
  if (absl::Status s = ValidateQuantization(params); !s.ok()) return s;
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  const double c = params.clip;
  const double inv_step = 1.0 / QuantizationStep(params);
  const double levels = QuantizationLevels(params);
  out->resize(values.size());
  constexpr size_t kChunk = 4096;
  uint32_t random[kChunk];
  for (size_t start = 0; start < values.size(); start += kChunk) {
    const size_t len = std::min(kChunk, values.size() - start);
    if (params.rounding == Rounding::kStochastic) randombytes_buf(random, len * sizeof(uint32_t));
    for (size_t i = 0; i < len; ++i) {
      double x = values[start + i];
      if (std::isnan(x)) x = 0;
      x = std::clamp(x, -c, c);
      double level = (x + c) * inv_step;
      double q;
      if (params.rounding == Rounding::kNearest) {
        q = std::floor(level + 0.5);
      } else {
        const double floor = std::floor(level);
        const double u = random[i] * (1.0 / 4294967296.0);  // in [0, 1)
        q = floor + (u < level - floor ? 1.0 : 0.0);
      }
      (*out)[start + i] = static_cast<uint32_t>(std::clamp(q, 0.0, levels));
    }
  }
  return absl::OkStatus();
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
