#include "braid/core/dp/clip.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace braid::dp {

absl::StatusOr<double> ClipToL2Norm(absl::Span<float> update, double clip_norm) {
  const absl::Span<float> parts[] = {update};
  return ClipToL2Norm(absl::MakeConstSpan(parts), clip_norm);
}

absl::StatusOr<double> ClipToL2Norm(absl::Span<const absl::Span<float>> parts,
                                    double clip_norm) {
  if (!(clip_norm > 0) || !std::isfinite(clip_norm)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "differentialPrivacy.clipNorm: must be a finite number > 0, got %g", clip_norm));
  }
  double sq = 0;
  size_t index = 0;  // across parts, for the message
  for (absl::Span<float> update : parts) {
    for (float value : update) {
      const double x = value;
      if (!std::isfinite(x)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("dp clip: update element %u is not finite", index));
      }
      sq += x * x;
      ++index;
    }
  }
  const double norm = std::sqrt(sq);
  if (norm <= clip_norm) return 1.0;
  const double factor = clip_norm / norm;
  for (absl::Span<float> update : parts) {
    for (float& x : update) x = static_cast<float>(x * factor);
  }
  return factor;
}

}  // namespace braid::dp
