#include "braid/aggregator/update_receiver.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "braid/core/chunk_frame.h"

namespace braid::aggregator {
namespace {

constexpr size_t kDigestBytes = 32;  // SHA-256

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
  if (!header.digest().empty() && header.digest().size() != kDigestBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "digest must be empty or the ", kDigestBytes, " bytes of a SHA-256, not ",
        header.digest().size(), " bytes"));
  }
  stream.queued();
  absl::StatusOr<std::unique_ptr<Upload>> upload =
      engine.BeginFit(header.client_id(), header.round(),
                      static_cast<uint64_t>(header.total_bytes()), header.num_examples(),
                      stream.slot_wait, header.encoding() == v1::ENCODING_SECAGG_MASKED,
                      header.digest());
  if (!upload.ok()) return upload.status();
  stream.fit_started(header.client_id(), header.round());
  stream.resume_from((*upload)->received());
  stream.admitted();
  grpc::ByteBuffer frame;
  int chunks = 0;
  while (stream.read(&frame)) {
    // The chunk's data stays in the frame's slices, copied once, into the
    // upload.
    absl::StatusOr<ChunkView> chunk = DecodeChunkFrame(frame);
    if (!chunk.ok()) return chunk.status();
    engine.CountUploadBytes(chunk->size);
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
  if (stream.cancelled()) {
    const uint64_t got = (*upload)->received();
    if (engine.KeepPartial(*std::move(upload))) {
      return absl::CancelledError(absl::StrCat("the upload broke off after ", got,
                                               " bytes; they are kept for it to resume"));
    }
    return absl::CancelledError("the worker cancelled the upload");
  }
  // Bytes from more than one stream: folded only if they are the update
  // the header named.
  if ((*upload)->resumed_at() > 0 && (*upload)->complete()) {
    if (absl::Status s = (*upload)->CheckDigest(); !s.ok()) return s;
  }
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
