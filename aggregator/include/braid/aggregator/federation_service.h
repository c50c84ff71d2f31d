// proto/braid/v1 Federation served over a RoundEngine (gRPC sync API: one
// thread per call in flight; FIT uploads in flight are bounded by the
// engine's upload slots, so memory is bounded however many clients wait).
// What one party can hold is bounded by ServiceLimits: calls in flight per
// tenant, and a progress deadline on every PutUpdate stream.
#ifndef BRAID_AGGREGATOR_FEDERATION_SERVICE_H_
#define BRAID_AGGREGATOR_FEDERATION_SERVICE_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/aggregator/metrics.h"
#include "braid/aggregator/peer_binding.h"
#include "braid/aggregator/round_engine.h"
#include "braid/aggregator/stream_guard.h"
#include "braid/core/chunk_frame.h"
#include "braid/v1/federation.grpc.pb.h"

namespace braid::aggregator {

struct ServiceLimits {
  // A PutUpdate stream must deliver its header, and then at least
  // `progress_bytes` per `progress_timeout` on average once it holds an
  // upload slot (time queued for a slot does not count); otherwise it is
  // cancelled, its slot freed for the next in line, and (FIT) its client is
  // out of the round (RoundEngine::AbandonFit).
  absl::Duration progress_timeout = absl::Seconds(30);
  uint64_t progress_bytes = 1 << 20;
  // Calls in flight per tenant (Join, GetTask, PutUpdate, Heartbeat,
  // SecAggStep): calls_per_replica x the tenant's replicas (from
  // `tenants`, replicas by name; 1 if unknown) + 2. An honest worker has at
  // most two at once (its task loop and its heartbeat). Beyond the limit a
  // call is RESOURCE_EXHAUSTED at once, so one tenant holds a bounded
  // number of server threads. The tenant is the certificate's under mTLS,
  // the one the call claims without. GetStatus is not limited.
  int calls_per_replica = 4;
  std::map<std::string, int> tenants;
};

// Server threads braid-aggregator allows gRPC (grpc::ResourceQuota): every
// tenant's call limit, plus `reserve` for GetStatus and calls being refused.
int ServerThreadBudget(const ServiceLimits& limits, int reserve = 32);

class FederationService final : public v1::Federation::Service {
 public:
  // `engine` and `metrics` (nullable) must outlive the service.
  // At most `download_slots` weight downloads stream at once; the others
  // wait their turn (their clients are kept alive meanwhile), so send
  // buffers do not grow with the number of clients.
  //
  // With `require_identity` (the server runs mTLS), every call for a tenant
  // must come with that tenant's certificate (CN "tenant:<name>", see
  // core/pki.h), or, for a site tenant, its site's (CN "site:<site>", as
  // `binding` decides: peer_binding.h): Join for another tenant, or
  // GetTask/PutUpdate/Heartbeat/SecAggStep for another tenant's client id,
  // is PERMISSION_DENIED. GetStatus is open to any peer the job's CA
  // verified (the operator, tenants) and to the sites the job names.
  FederationService(std::string job, RoundEngine* engine, AggregatorMetrics* metrics,
                    absl::Duration heartbeat_interval, int download_slots = 4,
                    bool require_identity = false, ServiceLimits limits = {},
                    PeerBinding binding = {});

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
  // The tenant the peer's certificate speaks for (binding_), or
  // PermissionDenied.
  absl::StatusOr<std::string> PeerTenant(const grpc::ServerContext& ctx) const;
  // OK when the peer may speak for `tenant` (always without identity).
  absl::Status MaySpeakFor(const grpc::ServerContext& ctx, const std::string& tenant) const;
  // OK when the peer may act as `client_id` (its tenant's certificate).
  absl::Status MayActAs(const grpc::ServerContext& ctx, const std::string& client_id) const;
  // A place for one more call of the caller's tenant (the certificate's;
  // without identity `claimed`, the tenant the call names).
  absl::StatusOr<CallLimiter::Permit> Admit(const grpc::ServerContext& ctx,
                                            const std::string& claimed);
  // The tenant a client id was issued to, or "" if unknown.
  std::string TenantOfClient(const std::string& client_id) const;

  const std::string job_;
  RoundEngine* const engine_;
  AggregatorMetrics* const metrics_;
  const absl::Duration heartbeat_interval_;
  const int download_slots_;
  const bool require_identity_;
  const ServiceLimits limits_;
  const PeerBinding binding_;
  StreamWatchdog watchdog_;
  CallLimiter calls_;
  absl::Mutex download_mu_;
  int downloads_ ABSL_GUARDED_BY(download_mu_) = 0;
};

// PutUpdate's initial metadata key for a resumable upload: the bytes of
// the update the aggregator already holds, in decimal (proto/braid/v1).
inline constexpr std::string_view kUploadOffsetKey = "braid-upload-offset";

// absl::Status to grpc::Status, keeping code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_FEDERATION_SERVICE_H_
