// The worker's side of proto/braid/v1 Federation, without LibTorch: join,
// fetch a task with its weights, upload an update, heartbeat, status.
// Weights and updates are braid::TensorLists streamed in chunks of at most
// kChunkDataBytes, so no message nears gRPC's limits.
//
// Thread-safe: gRPC stubs may be used from several threads (the worker's
// heartbeat thread shares the client with its main loop).
#ifndef BRAID_WORKER_FEDERATION_CLIENT_H_
#define BRAID_WORKER_FEDERATION_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "braid/core/tensor.h"
#include "braid/core/pki.h"
#include "braid/v1/federation.grpc.pb.h"

namespace braid::worker {

struct JoinResult {
  std::string client_id;
  absl::Duration heartbeat_interval;
};

struct ReceivedTask {
  v1::TaskHeader header;
  TensorList weights;  // empty for WAIT and DONE
  int64_t bytes = 0;   // weight bytes received
};

struct UpdateMetrics {
  double loss = 0;
  double accuracy = 0;
  int64_t num_examples = 0;
};

// gRPC status turned into absl::Status, keeping the code and message.
absl::Status FromGrpc(const grpc::Status& status, const std::string& what);

class FederationClient {
 public:
  // A client for the aggregator at `address` (host:port): mTLS with `tls`
  // (the job's CA, this tenant's certificate and key), plaintext without.
  // Does not connect until the first call.
  explicit FederationClient(const std::string& address,
                            const std::optional<pki::TlsMaterial>& tls = std::nullopt);

  absl::StatusOr<JoinResult> Join(const std::string& job, const std::string& tenant,
                                  int replica, int64_t num_examples);
  // Waits up to `wait` server-side for a task; validates the streamed
  // weights against the header (layout sizes, contiguous offsets, total).
  absl::StatusOr<ReceivedTask> GetTask(const std::string& client_id, absl::Duration wait);
  // Streams a FIT update: `delta` in the task's layout order.
  absl::Status PutFit(const std::string& client_id, int round, const TensorList& delta,
                      int64_t num_examples, const UpdateMetrics& train);
  // Streams a secure-aggregation masked input (ENCODING_SECAGG_MASKED): one
  // little-endian uint32 per element of the task's layout.
  absl::Status PutMasked(const std::string& client_id, int round,
                         const std::vector<uint32_t>& values, int64_t num_examples,
                         const UpdateMetrics& train);
  absl::Status PutEval(const std::string& client_id, int round, const UpdateMetrics& eval);
  // One SecAggStep call; the server holds it up to request.wait_seconds.
  absl::StatusOr<v1::SecAggStepResponse> SecAggStep(const v1::SecAggStepRequest& request);
  // OK if known; NotFound if the aggregator no longer knows the client.
  absl::Status Heartbeat(const std::string& client_id);
  absl::StatusOr<v1::JobStatus> GetStatus(absl::Duration timeout = absl::Seconds(5));

 private:
  // Streams `header` then the bytes of `parts`, back to back, in chunks.
  absl::Status PutChunks(const v1::UpdateMessage& header,
                         const std::vector<std::pair<const char*, size_t>>& parts, int round);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
};

}  // namespace braid::worker

#endif  // BRAID_WORKER_FEDERATION_CLIENT_H_
