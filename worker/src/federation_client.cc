#include "braid/worker/federation_client.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "braid/core/chunk_frame.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/wire_limits.h"

namespace braid::worker {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

absl::StatusCode ToAbslCode(grpc::StatusCode code) {
  return static_cast<absl::StatusCode>(static_cast<int>(code));
}

// The UpdateMessage that opens an upload stream.
v1::UpdateMessage UpdateHeaderMessage(const std::string& client_id, int round,
                                      v1::TaskKind kind) {
  v1::UpdateMessage msg;
  v1::UpdateHeader* header = msg.mutable_header();
  header->set_client_id(client_id);
  header->set_round(round);
  header->set_kind(kind);
  return msg;
}

void SetMetrics(const UpdateMetrics& from, v1::Metrics* to) {
  to->set_loss(from.loss);
  to->set_accuracy(from.accuracy);
  to->set_num_examples(from.num_examples);
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(ToAbslCode(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

FederationClient::FederationClient(const std::string& address,
                                   const std::optional<pki::TlsMaterial>& tls) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after an aggregator restart.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // One connection per client, as separate worker processes would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (tls.has_value() && !tls->server_name.empty()) {
    args.SetSslTargetNameOverride(tls->server_name);
  }
  channel_ = grpc::CreateCustomChannel(address, ChannelCredentials(tls), args);
  stub_ = v1::Federation::NewStub(channel_);
}

absl::StatusOr<JoinResult> FederationClient::Join(const std::string& job,
                                                  const std::string& tenant, int replica,
                                                  int64_t num_examples) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(absl::Seconds(10)));
  v1::JoinRequest req;
  req.set_job(job);
  req.set_tenant(tenant);
  req.set_replica(replica);
  req.set_num_examples(num_examples);
  v1::JoinResponse resp;
  if (grpc::Status s = stub_->Join(&ctx, req, &resp); !s.ok()) return FromGrpc(s, "join");
  return JoinResult{resp.client_id(), absl::Seconds(resp.heartbeat_interval_seconds())};
}

absl::StatusOr<ReceivedTask> FederationClient::GetTask(const std::string& client_id,
                                                       absl::Duration wait) {
  grpc::ClientContext ctx;
  // Generous: the wait, then the weights themselves.
  ctx.set_deadline(Deadline(wait + absl::Minutes(30)));
  v1::TaskRequest req;
  req.set_client_id(client_id);
  req.set_wait_seconds(absl::ToDoubleSeconds(wait));
  auto reader = stub_->GetTask(&ctx, req);

  ReceivedTask task;
  v1::TaskMessage msg;
  if (!reader->Read(&msg) || !msg.has_header()) {
    grpc::Status s = reader->Finish();
    if (!s.ok()) return FromGrpc(s, "get task");
    return absl::DataLossError("get task: the stream did not start with a header");
  }
  task.header = msg.header();
  uint64_t expected = 0;
  for (const v1::TensorSpec& spec : task.header.layout()) {
    Tensor t;
    t.name = spec.name();
    absl::StatusOr<DType> dtype = DTypeFromName(spec.dtype());
    if (!dtype.ok()) return dtype.status();
    t.dtype = *dtype;
    t.shape.assign(spec.shape().begin(), spec.shape().end());
    // Bound the element count by the announced total before allocating.
    uint64_t n = 1;
    const uint64_t limit = static_cast<uint64_t>(std::max<int64_t>(task.header.total_bytes(), 0));
    for (int64_t dim : t.shape) {
      if (dim < 0 || (dim > 0 && n > limit / static_cast<uint64_t>(dim))) {
        return absl::DataLossError(absl::StrCat("get task: tensor '", t.name,
                                                "' has a shape that does not fit the announced size"));
      }
      n *= static_cast<uint64_t>(dim);
    }
    if (n * DTypeSize(t.dtype) > limit - expected) {
      return absl::DataLossError(absl::StrCat("get task: tensor '", t.name,
                                              "' does not fit the announced size"));
    }
    t.data.resize(static_cast<size_t>(n) * DTypeSize(t.dtype));
    expected += t.data.size();
    task.weights.push_back(std::move(t));
  }
  if (expected != static_cast<uint64_t>(task.header.total_bytes())) {
    return absl::DataLossError(absl::StrCat("get task: layout holds ", expected,
                                            " bytes but the header announces ",
                                            task.header.total_bytes()));
  }
  // Fill tensors in order from the chunk stream.
  size_t tensor = 0, within = 0;
  uint64_t received = 0;
  while (reader->Read(&msg)) {
    if (!msg.has_chunk()) return absl::DataLossError("get task: a second header in the stream");
    const v1::Chunk& chunk = msg.chunk();
    if (static_cast<uint64_t>(chunk.offset()) != received ||
        chunk.data().size() > expected - received) {
      return absl::DataLossError(absl::StrCat("get task: chunk at offset ", chunk.offset(),
                                              " does not follow byte ", received));
    }
    const char* p = chunk.data().data();
    size_t left = chunk.data().size();
    while (left > 0) {
      while (task.weights[tensor].data.size() == within) {
        ++tensor;
        within = 0;
      }
      std::vector<uint8_t>& dst = task.weights[tensor].data;
      const size_t n = std::min(left, dst.size() - within);
      std::memcpy(dst.data() + within, p, n);
      within += n;
      p += n;
      left -= n;
    }
    received += chunk.data().size();
  }
  if (grpc::Status s = reader->Finish(); !s.ok()) return FromGrpc(s, "get task");
  if (received != expected) {
    return absl::DataLossError(absl::StrCat("get task: stream ended after ", received, " of ",
                                            expected, " bytes"));
  }
  task.bytes = static_cast<int64_t>(received);
  return task;
}

absl::Status FederationClient::PutFit(const std::string& client_id, int round,
                                      const TensorList& delta, int64_t num_examples,
                                      const UpdateMetrics& train) {
  v1::UpdateMessage msg = UpdateHeaderMessage(client_id, round, v1::TASK_KIND_FIT);
  v1::UpdateHeader* header = msg.mutable_header();
  header->set_encoding(v1::ENCODING_FP32);
  header->set_total_bytes(static_cast<int64_t>(TotalBytes(delta)));
  header->set_num_examples(num_examples);
  SetMetrics(train, header->mutable_train());
  std::vector<std::pair<const char*, size_t>> parts;
  for (const Tensor& t : delta) {
    parts.emplace_back(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return PutChunks(msg, parts, round);
}

absl::Status FederationClient::PutMasked(const std::string& client_id, int round,
                                         const std::vector<uint32_t>& values,
                                         int64_t num_examples, const UpdateMetrics& train) {
  v1::UpdateMessage msg = UpdateHeaderMessage(client_id, round, v1::TASK_KIND_FIT);
  v1::UpdateHeader* header = msg.mutable_header();
  header->set_encoding(v1::ENCODING_SECAGG_MASKED);
  header->set_total_bytes(static_cast<int64_t>(values.size() * sizeof(uint32_t)));
  header->set_num_examples(num_examples);
  SetMetrics(train, header->mutable_train());
  // Ring elements travel little-endian, as x86 and arm64 hold them.
  return PutChunks(msg,
                   {{reinterpret_cast<const char*>(values.data()), values.size() * sizeof(uint32_t)}},
                   round);
}

absl::Status FederationClient::PutChunks(const v1::UpdateMessage& msg,
                                         const std::vector<std::pair<const char*, size_t>>& parts,
                                         int round) {
  // The chunks' data go to gRPC by reference (core/chunk_frame.h). `lease`
  // is destroyed last, after the call (owned by `ctx`), and waits until gRPC
  // has let go of `parts`.
  PayloadLease lease;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(absl::Minutes(30)));
  v1::UpdateAck ack;
  static const std::string kMethod =
      absl::StrCat("/", v1::Federation::service_full_name(), "/PutUpdate");
  const grpc::internal::RpcMethod method(kMethod.c_str(),
                                         grpc::internal::RpcMethod::CLIENT_STREAMING);
  std::unique_ptr<grpc::ClientWriter<WireFrame>> writer(
      grpc::internal::ClientWriterFactory<WireFrame>::Create(channel_.get(), method, &ctx, &ack));
  bool open = writer->Write(EncodeFrame(msg));
  // The aggregator answers the header with initial metadata once the update
  // holds an upload slot (or ends the call at once if it refuses it); the
  // bytes go only then, so a queued upload occupies no transport buffers.
  if (open) writer->WaitForInitialMetadata();
  // Cut the parts, back to back, into chunks of kChunkDataBytes.
  std::vector<ChunkPiece> pieces;
  size_t in_chunk = 0;
  uint64_t offset = 0;
  auto flush = [&] {
    if (in_chunk == 0 || !open) return;
    open = writer->Write(EncodeChunkFrame(static_cast<int64_t>(offset), pieces, lease));
    offset += in_chunk;
    pieces.clear();
    in_chunk = 0;
  };
  for (const auto& [data, size] : parts) {
    const char* p = data;
    size_t left = size;
    while (left > 0 && open) {
      const size_t n = std::min(left, kChunkDataBytes - in_chunk);
      pieces.push_back({p, n});
      p += n;
      left -= n;
      in_chunk += n;
      if (in_chunk == kChunkDataBytes) flush();
    }
  }
  flush();
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  return FromGrpc(s, absl::StrCat("upload of round ", round));
}

absl::StatusOr<v1::SecAggStepResponse> FederationClient::SecAggStep(
    const v1::SecAggStepRequest& request) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(absl::Seconds(request.wait_seconds()) + absl::Seconds(30)));
  v1::SecAggStepResponse resp;
  if (grpc::Status s = stub_->SecAggStep(&ctx, request, &resp); !s.ok()) {
    return FromGrpc(s, absl::StrCat("secure aggregation, round ", request.round(), " stage ",
                                    v1::SecAggStage_Name(request.stage())));
  }
  return resp;
}

absl::Status FederationClient::PutEval(const std::string& client_id, int round,
                                       const UpdateMetrics& eval) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(absl::Minutes(1)));
  v1::UpdateAck ack;
  auto writer = stub_->PutUpdate(&ctx, &ack);
  v1::UpdateMessage msg = UpdateHeaderMessage(client_id, round, v1::TASK_KIND_EVALUATE);
  SetMetrics(eval, msg.mutable_header()->mutable_eval());
  writer->Write(msg);
  writer->WritesDone();
  return FromGrpc(writer->Finish(), absl::StrCat("evaluation report of round ", round));
}

absl::Status FederationClient::Heartbeat(const std::string& client_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(absl::Seconds(5)));
  v1::HeartbeatRequest req;
  req.set_client_id(client_id);
  v1::HeartbeatResponse resp;
  if (grpc::Status s = stub_->Heartbeat(&ctx, req, &resp); !s.ok()) {
    return FromGrpc(s, "heartbeat");
  }
  if (!resp.known()) return absl::NotFoundError("heartbeat: the aggregator does not know us");
  return absl::OkStatus();
}

absl::StatusOr<v1::JobStatus> FederationClient::GetStatus(absl::Duration timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(timeout));
  v1::StatusRequest req;
  v1::JobStatus resp;
  if (grpc::Status s = stub_->GetStatus(&ctx, req, &resp); !s.ok()) {
    return FromGrpc(s, "status");
  }
  return resp;
}

}  // namespace braid::worker
