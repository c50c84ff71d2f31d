#include "braid/aggregator/federation_service.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/update_receiver.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/pki.h"
#include "braid/core/file_io.h"
#include "braid/core/wire_limits.h"

namespace braid::aggregator {
namespace {

constexpr absl::Duration kMaxTaskWait = absl::Seconds(30);
constexpr absl::Duration kUploadSlotWait = absl::Minutes(5);

v1::TaskKind ToProto(TaskKind kind) {
  switch (kind) {
    case TaskKind::kWait: return v1::TASK_KIND_WAIT;
    case TaskKind::kFit: return v1::TASK_KIND_FIT;
    case TaskKind::kEvaluate: return v1::TASK_KIND_EVALUATE;
    case TaskKind::kDone: return v1::TASK_KIND_DONE;
  }
  return v1::TASK_KIND_UNSPECIFIED;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

FederationService::FederationService(std::string job, RoundEngine* engine,
                                     AggregatorMetrics* metrics,
                                     absl::Duration heartbeat_interval, int download_slots,
                                     bool require_identity, ServiceLimits limits,
                                     PeerBinding binding)
    : job_(std::move(job)),
      engine_(engine),
      metrics_(metrics),
      heartbeat_interval_(heartbeat_interval),
      download_slots_(std::max(1, download_slots)),
      require_identity_(require_identity),
      limits_(std::move(limits)),
      binding_(std::move(binding)),
      watchdog_(limits_.progress_timeout, limits_.progress_bytes),
      calls_([this](const std::string& tenant) {
        auto it = limits_.tenants.find(tenant);
        return limits_.calls_per_replica * (it == limits_.tenants.end() ? 1 : it->second) + 2;
      }) {
  // A client-streaming handler over WireFrame for PutUpdate's slot (by its
  // index in the proto, the order the generated Service registers methods
  // in). MarkMethodStreamed installs it; it also calls the method
  // bidirectional, which on the server differs from client streaming in
  // name only: neither reads a request before the handler runs.
  MarkMethodStreamed(
      PutUpdateMethodIndex(),
      new grpc::internal::ClientStreamingHandler<FederationService, WireFrame, v1::UpdateAck>(
          [](FederationService* self, grpc::ServerContext* ctx,
             grpc::ServerReader<WireFrame>* reader, v1::UpdateAck* ack) {
            return self->PutUpdateFrames(ctx, reader, ack);
          },
          this));
}

int FederationService::PutUpdateMethodIndex() {
  return v1::UpdateMessage::descriptor()
      ->file()
      ->FindServiceByName("Federation")
      ->FindMethodByName("PutUpdate")
      ->index();
}

absl::StatusOr<std::string> FederationService::PeerTenant(
    const grpc::ServerContext& ctx) const {
  // The leaf certificate is read only when it can matter: which CA issued
  // it decides only once site certificates are admitted.
  return binding_.TenantOf(PeerCommonName(ctx),
                           binding_.admits_sites() ? PeerCertificatePem(ctx) : std::string());
}

absl::Status FederationService::MaySpeakFor(const grpc::ServerContext& ctx,
                                          const std::string& tenant) const {
  if (!require_identity_) return absl::OkStatus();
  absl::StatusOr<std::string> peer = PeerTenant(ctx);
  if (!peer.ok()) return peer.status();
  if (*peer != tenant) {
    return absl::PermissionDeniedError(absl::StrCat("the caller's certificate speaks for tenant '",
                                                    *peer, "', not '", tenant, "'"));
  }
  return absl::OkStatus();
}

int ServerThreadBudget(const ServiceLimits& limits, int reserve) {
  int threads = reserve;
  for (const auto& [tenant, replicas] : limits.tenants) {
    threads += limits.calls_per_replica * replicas + 2;
  }
  return threads;
}

std::string FederationService::TenantOfClient(const std::string& client_id) const {
  absl::StatusOr<std::string> tenant = engine_->ClientTenant(client_id);
  return tenant.ok() ? *tenant : std::string();
}

absl::StatusOr<CallLimiter::Permit> FederationService::Admit(const grpc::ServerContext& ctx,
                                                             const std::string& claimed) {
  std::string key = claimed;
  if (require_identity_) {
    absl::StatusOr<std::string> tenant = PeerTenant(ctx);
    key = tenant.ok() ? *tenant : absl::StrCat("CN=", PeerCommonName(ctx));
  }
  return calls_.Acquire(key);
}

absl::Status FederationService::MayActAs(const grpc::ServerContext& ctx,
                                         const std::string& client_id) const {
  if (!require_identity_) return absl::OkStatus();
  absl::StatusOr<std::string> tenant = engine_->ClientTenant(client_id);
  if (!tenant.ok()) return tenant.status();
  return MaySpeakFor(ctx, *tenant);
}

grpc::Status FederationService::Join(grpc::ServerContext* ctx, const v1::JoinRequest* req,
                                     v1::JoinResponse* resp) {
  if (req->job() != job_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("this aggregator runs job '", job_, "', not '", req->job(),
                                     "'; check the worker's --aggregator address"));
  }
  if (req->tenant().empty() || req->replica() < 0 || req->num_examples() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "join needs a tenant name, replica >= 0 and num_examples >= 0");
  }
  if (absl::Status s = MaySpeakFor(*ctx, req->tenant()); !s.ok()) return ToGrpc(s);
  absl::StatusOr<CallLimiter::Permit> permit = Admit(*ctx, req->tenant());
  if (!permit.ok()) return ToGrpc(permit.status());
  absl::StatusOr<std::string> id = engine_->Join(req->tenant(), req->replica(),
                                                 req->num_examples());
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_client_id(*id);
  resp->set_heartbeat_interval_seconds(absl::ToDoubleSeconds(heartbeat_interval_));
  return grpc::Status::OK;
}

grpc::Status FederationService::GetTask(grpc::ServerContext* ctx, const v1::TaskRequest* req,
                                        grpc::ServerWriter<v1::TaskMessage>* writer) {
  const absl::Duration wait =
      std::clamp(absl::Seconds(req->wait_seconds()), absl::ZeroDuration(), kMaxTaskWait);
  if (absl::Status s = MayActAs(*ctx, req->client_id()); !s.ok()) return ToGrpc(s);
  const Checkpoint& cp = engine_->checkpoint();
  const uint64_t total = cp.model_bytes();
  if (!req->resume_digest().empty() &&
      (req->resume_digest().size() != 32 || req->resume_offset() < 0 ||
       static_cast<uint64_t>(req->resume_offset()) > total)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("resume_digest must be the 32 bytes of a SHA-256 and "
                                     "resume_offset in [0, ", total, "]; got ",
                                     req->resume_digest().size(), " bytes and ",
                                     req->resume_offset()));
  }
  absl::StatusOr<CallLimiter::Permit> permit = Admit(*ctx, TenantOfClient(req->client_id()));
  if (!permit.ok()) return ToGrpc(permit.status());
  absl::StatusOr<Task> task = engine_->NextTask(req->client_id(), wait);
  if (!task.ok()) return ToGrpc(task.status());

  v1::TaskMessage msg;
  v1::TaskHeader* header = msg.mutable_header();
  header->set_kind(ToProto(task->kind));
  header->set_round(task->round);
  header->set_total_rounds(task->total_rounds);
  header->set_reason(task->reason);
  const bool with_weights = task->kind == TaskKind::kFit || task->kind == TaskKind::kEvaluate;
  if (!with_weights) {
    writer->Write(msg);
    return grpc::Status::OK;
  }
  for (const safetensors::Entry& e : cp.index().entries) {
    v1::TensorSpec* spec = header->add_layout();
    spec->set_name(e.name);
    spec->set_dtype(std::string(DTypeName(e.dtype)));
    for (int64_t d : e.shape) spec->add_shape(d);
  }
  header->set_total_bytes(static_cast<int64_t>(total));
  header->set_update_encoding(v1::ENCODING_FP32);
  header->set_weights_digest(task->weights_digest);
  // A resumed download goes on where it broke off when the weights are
  // still the ones it was receiving (same digest); otherwise from 0.
  uint64_t start = 0;
  if (!req->resume_digest().empty() && !task->weights_digest.empty() &&
      req->resume_digest() == task->weights_digest) {
    start = static_cast<uint64_t>(req->resume_offset());
  }
  header->set_offset(static_cast<int64_t>(start));
  if (task->secagg.has_value()) {
    const SecAggTask& t = *task->secagg;
    v1::SecAggConfig* c = header->mutable_secagg();
    c->set_round_id(t.config.round_id);
    c->set_self_id(t.self);
    for (secagg::ClientId id : t.config.clients) c->add_cohort(id);
    c->set_threshold(t.config.threshold);
    c->set_neighbours(t.config.neighbours);
    c->set_graph_seed(t.config.graph_seed);
    c->set_vector_length(t.config.vector_length);
    c->set_quantization_range(t.config.quantization.clip);
    c->set_max_summands(t.config.quantization.max_summands);
    c->set_weight(t.weight);
    c->set_noise_stddev(t.noise_stddev);
    c->set_stage_timeout_seconds(absl::ToDoubleSeconds(t.stage_timeout));
    header->set_update_encoding(v1::ENCODING_SECAGG_MASKED);
  }
  if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");

  // Wait for a download slot, keeping the client alive meanwhile.
  {
    absl::MutexLock lock(&download_mu_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(download_mu_) {
      return downloads_ < download_slots_;
    };
    while (!download_mu_.AwaitWithTimeout(absl::Condition(&free), absl::Seconds(1))) {
      if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      (void)engine_->Touch(req->client_id());
    }
    ++downloads_;
  }
  struct Release {
    FederationService* self;
    ~Release() {
      absl::MutexLock lock(&self->download_mu_);
      --self->downloads_;
    }
  } release{this};
  // The file the engine opened with the task: a checkpoint written
  // meanwhile replaces the path, not the version this stream reads (whose
  // digest the header gave).
  const FileReader* file = task->weights.get();
  v1::TaskMessage chunk_msg;
  v1::Chunk* chunk = chunk_msg.mutable_chunk();
  std::string* data = chunk->mutable_data();
  const uint64_t base = cp.index().data_begin;
  int64_t sent = 0;
  for (uint64_t off = start; off < total; off += kChunkDataBytes) {
    if (ctx->IsCancelled()) break;
    const uint64_t len = std::min<uint64_t>(kChunkDataBytes, total - off);
    data->resize(len);
    if (absl::Status s = file->ReadAt(base + off, data->data(), len); !s.ok()) return ToGrpc(s);
    chunk->set_offset(static_cast<int64_t>(off));
    if (!writer->Write(chunk_msg)) break;
    sent += static_cast<int64_t>(len);
  }
  engine_->AddBytesDown(task->round, sent);
  if (static_cast<uint64_t>(sent) != total - start) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "client went away mid-stream");
  }
  return grpc::Status::OK;
}

grpc::Status FederationService::PutUpdateFrames(grpc::ServerContext* ctx,
                                                grpc::ServerReader<WireFrame>* reader,
                                                v1::UpdateAck* ack) {
  // Under mTLS the caller's tenant is known before anything is read;
  // without, it is the tenant of the header's client id.
  std::optional<CallLimiter::Permit> permit;
  if (require_identity_) {
    absl::StatusOr<CallLimiter::Permit> p = Admit(*ctx, "");
    if (!p.ok()) return ToGrpc(p.status());
    permit.emplace(*std::move(p));
  }
  // Every stream, header included, must make progress or be cancelled. A
  // FIT upload's client is put out of the round before its call is
  // cancelled: the worker sees the cancellation at once and must not be
  // handed the same round's task again in between.
  const std::string stall_reason =
      absl::StrCat("upload stalled: less than ", limits_.progress_bytes >> 10, " KiB in ",
                   absl::FormatDuration(limits_.progress_timeout),
                   " (the server's progress deadline)");
  struct StallHook {
    absl::Mutex mu;
    std::function<void()> abandon ABSL_GUARDED_BY(mu);
  };
  auto hook = std::make_shared<StallHook>();
  const std::unique_ptr<StreamWatchdog::Watch> watch = watchdog_.Start([ctx, hook] {
    {
      absl::MutexLock lock(&hook->mu);
      if (hook->abandon) hook->abandon();
    }
    ctx->TryCancel();
  });
  UpdateStream stream;
  stream.read = [reader, &watch](grpc::ByteBuffer* frame) {
    WireFrame next;
    if (!reader->Read(&next)) return false;
    frame->Swap(&next.bytes);
    watch->Progress(frame->Length());
    return true;
  };
  stream.cancelled = [ctx] { return ctx->IsCancelled(); };
  stream.slot_wait = kUploadSlotWait;
  stream.queued = [&watch] { watch->Pause(); };
  stream.resume_from = [ctx](uint64_t offset) {
    ctx->AddInitialMetadata(std::string(kUploadOffsetKey), std::to_string(offset));
  };
  stream.admitted = [reader, &watch] {
    watch->Resume();
    reader->SendInitialMetadata();
  };
  stream.stalled = [&watch, &stall_reason]() -> std::string {
    return watch->expired() ? stall_reason : "";
  };
  stream.fit_started = [this, hook, &stall_reason](const std::string& client_id, int round) {
    absl::MutexLock lock(&hook->mu);
    hook->abandon = [engine = engine_, client_id, round, stall_reason] {
      engine->AbandonFit(client_id, round, stall_reason);
    };
  };
  stream.authorize = [this, ctx, &permit](const std::string& client_id) -> absl::Status {
    if (absl::Status s = MayActAs(*ctx, client_id); !s.ok()) return s;
    if (permit.has_value()) return absl::OkStatus();
    absl::StatusOr<CallLimiter::Permit> p = Admit(*ctx, TenantOfClient(client_id));
    if (!p.ok()) return p.status();
    permit.emplace(*std::move(p));
    return absl::OkStatus();
  };
  const absl::Status status = ReceiveUpdate(*engine_, stream);
  if (!status.ok() && metrics_) metrics_->UpdateRejected(status.code());
  ack->set_accepted(status.ok());
  ack->set_message(std::string(status.message()));
  return ToGrpc(status);
}

grpc::Status FederationService::Heartbeat(grpc::ServerContext* ctx,
                                          const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  if (absl::Status s = MayActAs(*ctx, req->client_id()); !s.ok() && !absl::IsNotFound(s)) {
    return ToGrpc(s);
  }
  absl::StatusOr<CallLimiter::Permit> permit = Admit(*ctx, TenantOfClient(req->client_id()));
  if (!permit.ok()) return ToGrpc(permit.status());
  resp->set_known(engine_->Touch(req->client_id()).ok());
  return grpc::Status::OK;
}

grpc::Status FederationService::SecAggStep(grpc::ServerContext* ctx,
                                           const v1::SecAggStepRequest* req,
                                           v1::SecAggStepResponse* resp) {
  if (absl::Status s = MayActAs(*ctx, req->client_id()); !s.ok()) return ToGrpc(s);
  absl::StatusOr<CallLimiter::Permit> permit = Admit(*ctx, TenantOfClient(req->client_id()));
  if (!permit.ok()) return ToGrpc(permit.status());
  const absl::Duration wait =
      std::clamp(absl::Seconds(req->wait_seconds()), absl::ZeroDuration(), kMaxTaskWait);
  absl::StatusOr<SecAggAnswer> answer =
      engine_->SecAggStep(req->client_id(), req->round(), req->round_id(),
                          static_cast<int>(req->stage()), req->payload(), wait);
  if (!answer.ok()) return ToGrpc(answer.status());
  resp->set_pending(answer->pending);
  resp->set_payload(std::move(answer->payload));
  return grpc::Status::OK;
}

grpc::Status FederationService::GetStatus(grpc::ServerContext* ctx, const v1::StatusRequest*,
                                          v1::JobStatus* resp) {
  // The federation CA's certificates reach every job's aggregator: a site
  // reads the status of the jobs that name it only.
  if (require_identity_ && binding_.admits_sites()) {
    if (absl::Status s = binding_.MayReadStatus(PeerCommonName(*ctx), PeerCertificatePem(*ctx));
        !s.ok()) {
      return ToGrpc(s);
    }
  }
  const EngineStatus s = engine_->Status();
  resp->set_job(job_);
  resp->set_phase(s.phase);
  resp->set_reason(s.reason);
  resp->set_message(s.message);
  resp->set_round(s.rounds_completed);
  resp->set_total_rounds(s.total_rounds);
  resp->set_clients(s.live_clients);
  resp->set_model_path(engine_->checkpoint().model_path());
  const audit::Anchor anchor = engine_->checkpoint().audit_anchor();
  resp->mutable_audit()->set_entries(anchor.entries);
  resp->mutable_audit()->set_head(anchor.head);
  for (const RoundRecord& r : s.history) {
    if (!r.evaluated) continue;
    v1::RoundRecord* out = resp->add_rounds();
    out->set_round(r.round);
    out->set_participants(r.participants);
    out->set_sampled(r.sampled);
    out->set_train_loss(r.train_loss);
    out->set_eval_loss(r.eval_loss);
    out->set_eval_accuracy(r.eval_accuracy);
    out->set_seconds(r.seconds);
    out->set_bytes_up(r.bytes_up);
    out->set_bytes_down(r.bytes_down);
    for (const std::string& t : r.tenants) out->add_tenants(t);
    out->set_epsilon(r.epsilon);
    for (const TenantEval& e : r.tenant_eval) {
      v1::TenantEval* t = out->add_tenant_eval();
      t->set_tenant(e.tenant);
      t->set_eval_loss(e.eval_loss);
      t->set_eval_accuracy(e.eval_accuracy);
      t->set_num_examples(e.eval_examples);
    }
  }
  if (s.privacy.enabled) {
    v1::PrivacyStatus* privacy = resp->mutable_privacy();
    privacy->set_enabled(true);
    privacy->set_epsilon(s.privacy.epsilon);
    privacy->set_delta(s.privacy.delta);
    privacy->set_max_epsilon(s.privacy.max_epsilon);
  }
  return grpc::Status::OK;
}

}  // namespace braid::aggregator
