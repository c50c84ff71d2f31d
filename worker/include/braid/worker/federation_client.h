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
#include "absl/synchronization/mutex.h"
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

// How a transfer that broke off mid-stream is resumed (GetTask's weights
// once their header has arrived; a FIT upload at any point). A stream
// broke off when its call ended UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED,
// RESOURCE_EXHAUSTED, INTERNAL or UNKNOWN (a connection reset, a proxy
// restarted, the call's deadline): the client calls again after a pause
// and goes on from the last byte the aggregator acknowledged (upload: the
// offset in PutUpdate's initial metadata; download: the bytes received, if
// the weights' digest is unchanged). Other codes are returned at once.
struct TransferRetry {
  // Calls per transfer, the first included. Default 8.
  int max_attempts = 8;
  // Pause before the first retry, doubling up to max_backoff. Defaults
  // 200 ms and 5 s.
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(5);
  // No retry starts later than this after the transfer's first break.
  // Default 2 minutes.
  absl::Duration give_up = absl::Minutes(2);
};

// What the last upload cost on the wire (for logs, tests and benchmarks).
struct UploadStats {
  int64_t total_bytes = 0;  // the update's size
  int64_t sent_bytes = 0;   // update bytes handed to gRPC, over every call
  int attempts = 0;         // calls made
  int64_t resumed_at = 0;   // where the last call started (0: the start)
};

class FederationClient {
 public:
  // A client for the aggregator at `address` (host:port): mTLS with `tls`
  // (the job's CA, this tenant's certificate and key), plaintext without.
  // Does not connect until the first call.
  explicit FederationClient(const std::string& address,
                            const std::optional<pki::TlsMaterial>& tls = std::nullopt,
                            TransferRetry retry = {});

  absl::StatusOr<JoinResult> Join(const std::string& job, const std::string& tenant,
                                  int replica, int64_t num_examples);
  // Waits up to `wait` server-side for a task; validates the streamed
  // weights against the header (layout sizes, contiguous offsets, total,
  // and their SHA-256 when the header gives it: DataLoss if they do not
  // match it even when received in one stream). A weights stream that
  // breaks off is resumed (TransferRetry).
  absl::StatusOr<ReceivedTask> GetTask(const std::string& client_id, absl::Duration wait);
  // Streams a FIT update: `delta` in the task's layout order. The header
  // carries the update's SHA-256, so a stream that breaks off is resumed
  // from the bytes the aggregator holds (TransferRetry).
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

  // What the last FIT upload (PutFit, PutMasked) of this client cost.
  UploadStats last_upload() const;

 private:
  using Parts = std::vector<std::pair<const char*, size_t>>;
  struct Download;
  // Streams `header` (its digest set here) then the bytes of `parts`, back
  // to back, in chunks, resuming as TransferRetry says.
  absl::Status PutChunks(v1::UpdateMessage header, const Parts& parts, int round);
  // One PutUpdate call: sends from the offset the aggregator names.
  absl::Status PutOnce(const v1::UpdateMessage& header, const Parts& parts, int round,
                       UploadStats* stats);
  // One GetTask call, resuming `d` when it holds part of some weights.
  absl::Status GetTaskOnce(const std::string& client_id, absl::Duration wait, Download* d);
  // Whether a transfer that failed with `s` is tried again.
  static bool BrokeOff(const absl::Status& s);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Federation::Stub> stub_;
  const TransferRetry retry_;
  mutable absl::Mutex stats_mu_;
  UploadStats last_upload_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace braid::worker

#endif  // BRAID_WORKER_FEDERATION_CLIENT_H_
