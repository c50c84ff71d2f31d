// proto/braid/v1 Federation served over a RoundEngine (gRPC sync API: one
// thread per call in flight; FIT uploads in flight are bounded by the
// engine's upload slots, so memory is bounded however many clients wait).
#ifndef BRAID_AGGREGATOR_FEDERATION_SERVICE_H_
#define BRAID_AGGREGATOR_FEDERATION_SERVICE_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/chunk_frame.h"
#include "braid/v1/federation.grpc.pb.h"

namespace braid::aggregator {

class FederationService final : public v1::Federation::Service {
 public:
  // `engine` and `metrics` (nullable) must outlive the service.
  // At most `download_slots` weight downloads stream at once; the others
  // wait their turn (their clients are kept alive meanwhile), so send
  // buffers do not grow with the number of clients.
  //
  // With `require_identity` (the server runs mTLS), every call for a tenant
  // must come with that tenant's certificate (CN "tenant:<name>", see
  // core/pki.h): Join for another tenant, or GetTask/PutUpdate/Heartbeat/SecAggStep
  // for another tenant's client id, is PERMISSION_DENIED. GetStatus is open
  // to any verified peer (the operator, tenants).
  FederationService(std::string job, RoundEngine* engine, AggregatorMetrics* metrics,
                    absl::Duration heartbeat_interval, int download_slots = 4,
                    bool require_identity = false);

  grpc::Status Join(grpc::ServerContext* ctx, const v1::JoinRequest* req,
                    v1::JoinResponse* resp) override;
  grpc::Status GetTask(grpc::ServerContext* ctx, const v1::TaskRequest* req,
                       grpc::ServerWriter<v1::TaskMessage>* writer) override;
  // PutUpdate, reading its messages as bytes (core/chunk_frame.h): the
  // constructor installs it in place of the generated handler, so an
  // update's payload is copied once, from what gRPC received into its
  // upload buffer, not first into a protobuf.
  grpc::Status PutUpdateFrames(grpc::ServerContext* ctx, grpc::ServerReader<WireFrame>* reader,
                               v1::UpdateAck* ack);
  // PutUpdate's index among the Federation service's methods (the order the
  // generated Service registers them in), for MarkMethodStreamed.
  static int PutUpdateMethodIndex();
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status SecAggStep(grpc::ServerContext* ctx, const v1::SecAggStepRequest* req,
                          v1::SecAggStepResponse* resp) override;
  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::StatusRequest* req,
                         v1::JobStatus* resp) override;

 private:
  // OK when the peer may speak for `tenant` (always without identity).
  absl::Status MaySpeakFor(const grpc::ServerContext& ctx, const std::string& tenant) const;
  // OK when the peer may act as `client_id` (its tenant's certificate).
  absl::Status MayActAs(const grpc::ServerContext& ctx, const std::string& client_id) const;

  const std::string job_;
  RoundEngine* const engine_;
  AggregatorMetrics* const metrics_;
  const absl::Duration heartbeat_interval_;
  const int download_slots_;
  const bool require_identity_;
  absl::Mutex download_mu_;
  int downloads_ ABSL_GUARDED_BY(download_mu_) = 0;
};

// absl::Status to grpc::Status, keeping code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_FEDERATION_SERVICE_H_
