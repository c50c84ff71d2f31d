#include "braid/worker/federation_client.h"

#include <algorithm>
#include <cstring>

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "braid/core/chunk_frame.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/log.h"
#include "braid/core/wire_limits.h"

namespace braid::worker {
namespace {

// PutUpdate's initial metadata: the bytes of the update the aggregator
// already holds (proto/braid/v1/federation.proto, PutUpdate).
constexpr absl::string_view kUploadOffsetKey = "braid-upload-offset";

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
                                   const std::optional<pki::TlsMaterial>& tls,
                                   TransferRetry retry)
    : retry_(retry) {
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

// A task's weights being received, kept across the calls that resume them.
struct FederationClient::Download {
  ReceivedTask task;
  bool has_header = false;  // task.header and the tensors are set
  uint64_t expected = 0;    // bytes of weights the header announced
  uint64_t received = 0;    // of them, received so far
  bool resumed = false;     // some came in an earlier call
  uint64_t resumed_at = 0;  // where the last call started
};

namespace {

// Allocates `task.weights` from its header's layout; returns their bytes.
absl::StatusOr<uint64_t> AllocateWeights(ReceivedTask& task) {
  task.weights.clear();
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
  return expected;
}

std::string DigestOf(const TensorList& tensors) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const Tensor& t : tensors) EVP_DigestUpdate(ctx, t.data.data(), t.data.size());
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string DigestOf(const std::vector<std::pair<const char*, size_t>>& parts) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& [data, size] : parts) EVP_DigestUpdate(ctx, data, size);
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<const char*>(out), n);
}

bool HasWeights(const v1::TaskHeader& h) {
  return h.kind() == v1::TASK_KIND_FIT || h.kind() == v1::TASK_KIND_EVALUATE;
}

}  // namespace

bool FederationClient::BrokeOff(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsCancelled(s) ||
         absl::IsResourceExhausted(s) || absl::IsInternal(s) || absl::IsUnknown(s);
}

absl::StatusOr<ReceivedTask> FederationClient::GetTask(const std::string& client_id,
                                                       absl::Duration wait) {
  Download d;
  absl::Duration backoff = retry_.initial_backoff;
  absl::Time first_break = absl::InfiniteFuture();
  for (int attempt = 1;; ++attempt) {
    absl::Status s = GetTaskOnce(client_id, wait, &d);
    if (s.ok()) {
      const std::string& want = d.task.header.weights_digest();
      if (!HasWeights(d.task.header) || want.empty() || DigestOf(d.task.weights) == want) {
        if (d.resumed) {
          LogInfo(absl::StrCat("worker: weights download of round ", d.task.header.round(),
                               " resumed at byte ", d.resumed_at, " of ", d.expected,
                               "; digest checked"));
        }
        d.task.bytes = static_cast<int64_t>(d.expected);
        return std::move(d.task);
      }
      s = absl::DataLossError(absl::StrCat(
          "get task: the weights of round ", d.task.header.round(),
          " do not match the SHA-256 their header announced (",
          absl::BytesToHexString(want), ")"));
      if (!d.resumed) return s;
      // The pieces did not add up: once more, from the start.
      LogWarning(absl::StrCat("worker: ", s.message(), "; fetching them again from the start"));
      d = Download{};
    } else if (!d.has_header || !HasWeights(d.task.header) || !BrokeOff(s)) {
      return s;
    }
    const absl::Time now = absl::Now();
    if (first_break == absl::InfiniteFuture()) first_break = now;
    if (attempt >= retry_.max_attempts || now - first_break > retry_.give_up) return s;
    LogWarning(absl::StrCat("worker: weights download of round ", d.task.header.round(),
                            " broke off after ", d.received, " of ", d.expected, " bytes (",
                            s.message(), "); resuming in ", absl::FormatDuration(backoff)));
    absl::SleepFor(backoff);  // backoff between calls, not synchronization
    backoff = std::min(backoff * 2, retry_.max_backoff);
  }
}

absl::Status FederationClient::GetTaskOnce(const std::string& client_id, absl::Duration wait,
                                           Download* d) {
  grpc::ClientContext ctx;
  // Generous: the wait, then the weights themselves.
  ctx.set_deadline(Deadline(wait + absl::Minutes(30)));
  v1::TaskRequest req;
  req.set_client_id(client_id);
  req.set_wait_seconds(absl::ToDoubleSeconds(wait));
  const bool resuming = d->has_header && HasWeights(d->task.header) &&
                        !d->task.header.weights_digest().empty() && d->received > 0;
  if (resuming) {
    req.set_resume_digest(d->task.header.weights_digest());
    req.set_resume_offset(static_cast<int64_t>(d->received));
  }
  auto reader = stub_->GetTask(&ctx, req);

  v1::TaskMessage msg;
  if (!reader->Read(&msg) || !msg.has_header()) {
    grpc::Status s = reader->Finish();
    if (!s.ok()) return FromGrpc(s, "get task");
    return absl::DataLossError("get task: the stream did not start with a header");
  }
  const v1::TaskHeader& h = msg.header();
  if (resuming && HasWeights(h) && h.weights_digest() == d->task.header.weights_digest() &&
      h.offset() == static_cast<int64_t>(d->received) &&
      h.total_bytes() == static_cast<int64_t>(d->expected)) {
    // The same weights (whatever the task): go on where the last call
    // broke off.
    d->task.header = h;
    d->resumed = true;
    d->resumed_at = d->received;
  } else {
    if (h.offset() != 0) {
      ctx.TryCancel();
      (void)reader->Finish();
      return absl::DataLossError(absl::StrCat("get task: the aggregator sends weights from byte ",
                                              h.offset(), ", not from ",
                                              resuming ? d->received : 0));
    }
    *d = Download{};
    d->task.header = h;
    d->has_header = true;
    absl::StatusOr<uint64_t> expected = AllocateWeights(d->task);
    if (!expected.ok()) {
      ctx.TryCancel();
      (void)reader->Finish();
      d->has_header = false;
      return expected.status();
    }
    d->expected = *expected;
  }
  // Fill tensors in order from the chunk stream, from d->received on.
  size_t tensor = 0;
  uint64_t skip = d->received;
  while (tensor < d->task.weights.size() && skip >= d->task.weights[tensor].data.size()) {
    skip -= d->task.weights[tensor].data.size();
    ++tensor;
  }
  size_t within = static_cast<size_t>(skip);
  while (reader->Read(&msg)) {
    if (!msg.has_chunk()) {
      ctx.TryCancel();
      (void)reader->Finish();
      return absl::DataLossError("get task: a second header in the stream");
    }
    const v1::Chunk& chunk = msg.chunk();
    if (static_cast<uint64_t>(chunk.offset()) != d->received ||
        chunk.data().size() > d->expected - d->received) {
      ctx.TryCancel();
      (void)reader->Finish();
      return absl::DataLossError(absl::StrCat("get task: chunk at offset ", chunk.offset(),
                                              " does not follow byte ", d->received));
    }
    const char* p = chunk.data().data();
    size_t left = chunk.data().size();
    while (left > 0) {
      while (d->task.weights[tensor].data.size() == within) {
        ++tensor;
        within = 0;
      }
      std::vector<uint8_t>& dst = d->task.weights[tensor].data;
      const size_t n = std::min(left, dst.size() - within);
      std::memcpy(dst.data() + within, p, n);
      within += n;
      p += n;
      left -= n;
    }
    d->received += chunk.data().size();
  }
  if (grpc::Status s = reader->Finish(); !s.ok()) return FromGrpc(s, "get task");
  if (d->received != d->expected) {
    return absl::DataLossError(absl::StrCat("get task: stream ended after ", d->received, " of ",
                                            d->expected, " bytes"));
  }
  return absl::OkStatus();
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

absl::Status FederationClient::PutChunks(v1::UpdateMessage msg, const Parts& parts, int round) {
  msg.mutable_header()->set_digest(DigestOf(parts));
  UploadStats stats;
  for (const auto& part : parts) stats.total_bytes += static_cast<int64_t>(part.second);
  absl::Duration backoff = retry_.initial_backoff;
  absl::Time first_break = absl::InfiniteFuture();
  absl::Status s;
  for (int attempt = 1;; ++attempt) {
    ++stats.attempts;
    s = PutOnce(msg, parts, round, &stats);
    if (s.ok() && stats.resumed_at > 0) {
      LogInfo(absl::StrCat("worker: upload of round ", round, " resumed at byte ",
                           stats.resumed_at, " of ", stats.total_bytes, "; ", stats.sent_bytes,
                           " bytes sent in ", stats.attempts, " calls"));
    }
    if (s.ok() || !BrokeOff(s)) break;
    const absl::Time now = absl::Now();
    if (first_break == absl::InfiniteFuture()) first_break = now;
    if (attempt >= retry_.max_attempts || now - first_break > retry_.give_up) break;
    LogWarning(absl::StrCat("worker: upload of round ", round, " broke off (", s.message(),
                            "); resuming in ", absl::FormatDuration(backoff)));
    absl::SleepFor(backoff);  // backoff between calls, not synchronization
    backoff = std::min(backoff * 2, retry_.max_backoff);
  }
  absl::MutexLock lock(&stats_mu_);
  last_upload_ = stats;
  return s;
}

UploadStats FederationClient::last_upload() const {
  absl::MutexLock lock(&stats_mu_);
  return last_upload_;
}

absl::Status FederationClient::PutOnce(const v1::UpdateMessage& msg, const Parts& parts,
                                       int round, UploadStats* stats) {
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
  // The metadata names the bytes of this update it already holds.
  uint64_t start = 0;
  if (open) {
    writer->WaitForInitialMetadata();
    const auto& md = ctx.GetServerInitialMetadata();
    if (auto it = md.find(std::string(kUploadOffsetKey)); it != md.end()) {
      const absl::string_view text(it->second.data(), it->second.size());
      if (!absl::SimpleAtoi(text, &start) ||
          start > static_cast<uint64_t>(stats->total_bytes)) {
        ctx.TryCancel();
        (void)writer->Finish();
        return absl::DataLossError(absl::StrCat("upload of round ", round,
                                                ": the aggregator would resume at byte '", text,
                                                "' of ", stats->total_bytes));
      }
    }
  }
  stats->resumed_at = static_cast<int64_t>(start);
  // Cut the parts, back to back from `start`, into chunks of kChunkDataBytes.
  std::vector<ChunkPiece> pieces;
  size_t in_chunk = 0;
  uint64_t offset = start;
  auto flush = [&] {
    if (in_chunk == 0 || !open) return;
    open = writer->Write(EncodeChunkFrame(static_cast<int64_t>(offset), pieces, lease));
    if (open) stats->sent_bytes += static_cast<int64_t>(in_chunk);
    offset += in_chunk;
    pieces.clear();
    in_chunk = 0;
  };
  uint64_t skip = start;
  for (const auto& [data, size] : parts) {
    if (skip >= size) {
      skip -= size;
      continue;
    }
    const char* p = data + skip;
    size_t left = size - skip;
    skip = 0;
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
