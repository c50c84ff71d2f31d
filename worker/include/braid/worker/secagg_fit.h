// A worker's FIT task under secure aggregation (the task header carries a
// SecAggConfig), without LibTorch: runs the client side of core/secagg over
// the Federation service.
//
//   1 AdvertiseKeys  fresh key pairs; SecAggStep answers with the neighbours' keys
//   2 ShareKeys      Shamir shares of the secrets, encrypted to each holder
//   - train          `train` runs here (between the key stages and the input)
//   3 MaskedInput    update * weight (+ distributed DP noise), quantized to
//                    [-quantization_range, quantization_range] and masked;
//                    streamed with PutUpdate (ENCODING_SECAGG_MASKED)
//   4 Unmasking      the shares the server asks for (survivors' mask seeds,
//                    dropped clients' masking keys), after the client's own
//                    refusal checks (core/secagg/client.h)
//
// Errors: Aborted when this client is out of the attempt (it was late, or
// the attempt failed; the caller fetches the next task); the FederationClient's
// codes for transport failures; InvalidArgument for a malformed config;
// PermissionDenied when the server asks for something an honest client
// refuses; `train`'s own error.
#ifndef BRAID_WORKER_SECAGG_FIT_H_
#define BRAID_WORKER_SECAGG_FIT_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/tensor.h"
#include "braid/worker/federation_client.h"

namespace braid::worker {

// What local training produced: the delta in the task's layout (already
// clipped for differential privacy, if the job asks), and its metrics.
struct LocalUpdate {
  TensorList delta;
  int64_t num_examples = 0;
  UpdateMetrics train;
};

struct SecAggFitOptions {
  // Names the worker in log lines ("tenant/replica"). Default empty.
  std::string name;
};

absl::Status RunSecAggFit(FederationClient& client, const std::string& client_id,
                          const v1::TaskHeader& header,
                          const std::function<absl::StatusOr<LocalUpdate>()>& train,
                          const SecAggFitOptions& options);

}  // namespace braid::worker

#endif  // BRAID_WORKER_SECAGG_FIT_H_
