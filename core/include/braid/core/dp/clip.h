// Client-level DP-FedAvg, step 1: bound each client's contribution by
// clipping its whole update to L2 norm C (McMahan et al. 2018).
#ifndef BRAID_CORE_DP_CLIP_H_
#define BRAID_CORE_DP_CLIP_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace braid::dp {

// Scales `update` in place by min(1, clip_norm / ||update||_2) and returns
// that factor (1 when the norm is already <= clip_norm, including a zero
// update). The norm is accumulated in double.
// kInvalidArgument: clip_norm not finite and > 0, or a NaN/Inf element
// (the update is then left unchanged).
absl::StatusOr<double> ClipToL2Norm(absl::Span<float> update, double clip_norm);

// The same for an update held in several buffers (one per tensor): the norm
// is that of all parts together, and every part is scaled by the one factor.
// Errors as above; nothing is scaled then.
absl::StatusOr<double> ClipToL2Norm(absl::Span<const absl::Span<float>> parts,
                                    double clip_norm);

}  // namespace braid::dp

#endif  // BRAID_CORE_DP_CLIP_H_
