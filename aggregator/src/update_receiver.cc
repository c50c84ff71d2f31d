#include "braid/aggregator/update_receiver.h"

#include <memory>

#include "braid/core/chunk_frame.h"

namespace braid::aggregator {
namespace {

ClientMetrics FromProto(const v1::Metrics& m) {
  return ClientMetrics{m.loss(), m.accuracy(), m.num_examples()};
}

absl::Status ReceiveFit(RoundEngine& engine, const v1::UpdateHeader& header,
                        const UpdateStream& stream) {
  if (header.encoding() != v1::ENCODING_FP32 &&
      header.encoding() != v1::ENCODING_SECAGG_MASKED) {
    return absl::InvalidArgumentError(
        "updates must be ENCODING_FP32 or (secure aggregation) ENCODING_SECAGG_MASKED");
  }
  if (header.total_bytes() < 0) return absl::InvalidArgumentError("total_bytes must be >= 0");
  stream.queued();
  absl::StatusOr<std::unique_ptr<Upload>> upload =
      engine.BeginFit(header.client_id(), header.round(),
                      static_cast<uint64_t>(header.total_bytes()), header.num_examples(),
                      stream.slot_wait, header.encoding() == v1::ENCODING_SECAGG_MASKED);
  if (!upload.ok()) return upload.status();
  stream.admitted();
  grpc::ByteBuffer frame;
  int chunks = 0;
  while (stream.read(&frame)) {
    // The chunk's data stays in the frame's slices, copied once, into the
    // upload.
    absl::StatusOr<ChunkView> chunk = DecodeChunkFrame(frame);
    if (!chunk.ok()) return chunk.status();
    if (chunk->offset < 0) return absl::InvalidArgumentError("negative chunk offset");
    if (chunk->size % sizeof(float) != 0) {
      return absl::InvalidArgumentError("update chunks must hold whole float32 values");
    }
    auto at = static_cast<uint64_t>(chunk->offset);
    for (absl::string_view piece : chunk->data) {
      if (absl::Status s = (*upload)->Write(at, piece.data(), piece.size()); !s.ok()) return s;
      at += piece.size();
    }
    // Long uploads count as signs of life.
    if (++chunks % 16 == 0) (void)engine.Touch(header.client_id());
  }
  if (const std::string why = stream.stalled(); !why.empty()) {
    // The staller is out of the round; its slot is free again when
    // `upload` is destroyed, for the next in line.
    engine.AbandonFit(header.client_id(), header.round(), why);
    return absl::DeadlineExceededError(why);
  }
  if (stream.cancelled()) return absl::CancelledError("the worker cancelled the upload");
  return engine.CommitFit(*std::move(upload), FromProto(header.train()));
}

}  // namespace

absl::Status ReceiveUpdate(RoundEngine& engine, const UpdateStream& stream) {
  grpc::ByteBuffer frame;
  v1::UpdateMessage msg;
  if (!stream.read(&frame) || !ParseFrame(frame, &msg) || !msg.has_header()) {
    return absl::InvalidArgumentError("an update stream must start with an UpdateHeader");
  }
  const v1::UpdateHeader header = msg.header();
  if (absl::Status s = stream.authorize(header.client_id()); !s.ok()) return s;
  if (header.kind() == v1::TASK_KIND_FIT) return ReceiveFit(engine, header, stream);
  if (header.kind() == v1::TASK_KIND_EVALUATE) {
    return engine.ReportEval(header.client_id(), header.round(), FromProto(header.eval()));
  }
  return absl::InvalidArgumentError("update kind must be TASK_KIND_FIT or TASK_KIND_EVALUATE");
}

}  // namespace braid::aggregator
