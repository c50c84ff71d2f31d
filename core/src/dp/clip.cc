#include "braid/core/dp/clip.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace braid::dp {

absl::StatusOr<double> ClipToL2Norm(absl::Span<float> update, double clip_norm) {
  if (!(clip_norm > 0) || !std::isfinite(clip_norm)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "differentialPrivacy.clipNorm: must be a finite number > 0, got %g", clip_norm));
  }
  double sq = 0;
  for (size_t i = 0; i < update.size(); ++i) {
    const double x = update[i];
    if (!std::isfinite(x)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("dp clip: update element %u is not finite", i));
    }
    sq += x * x;
  }
  const double norm = std::sqrt(sq);
  if (norm <= clip_norm) return 1.0;
  const double factor = clip_norm / norm;
  for (float& x : update) x = static_cast<float>(x * factor);
  return factor;
}

}  // namespace braid::dp
