// Decodes one PutUpdate stream (an UpdateHeader, then for FIT the update's
// bytes as Chunks) into a RoundEngine. Separate from the gRPC service so the
// decoding of what a possibly hostile worker sends is unit-tested and fuzzed
// without sockets (aggregator/src/update_fuzz.cc).
#ifndef BRAID_AGGREGATOR_UPDATE_RECEIVER_H_
#define BRAID_AGGREGATOR_UPDATE_RECEIVER_H_

#include <functional>

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "braid/aggregator/round_engine.h"
#include "braid/v1/federation.pb.h"

namespace braid::aggregator {

struct UpdateStream {
  // Reads the next message's bytes (an encoded UpdateMessage, as gRPC
  // received it) into `frame`; false at the end of the stream.
  std::function<bool(grpc::ByteBuffer* frame)> read;
  // True when the worker cancelled the call (checked at the end).
  std::function<bool()> cancelled = [] { return false; };
  // How long to wait for a free upload slot.
  absl::Duration slot_wait = absl::Minutes(5);
  // Called once a FIT upload holds its slot, before its chunks are read:
  // tells the worker to start sending them (over gRPC, the response's
  // initial metadata). Workers queued for a slot send nothing beyond their
  // header, so what the transport buffers does not grow with the queue.
  std::function<void()> admitted = [] {};
  // Called once, just before `admitted`, with the bytes of this update the
  // aggregator already holds from a stream that broke off (0: none): the
  // worker sends its chunks from there (over gRPC, the initial metadata's
  // `braid-upload-offset`).
  std::function<void(uint64_t offset)> resume_from = [](uint64_t) {};
  // Called before a FIT upload waits for its slot (the server's wait, not
  // the worker's: the progress deadline pauses until `admitted`).
  std::function<void()> queued = [] {};
  // Non-empty when the stream ended because it stopped making progress
  // (the service's StreamWatchdog cancelled it): why. A FIT upload that
  // stalled while holding its slot puts its client out of the round
  // (RoundEngine::AbandonFit) and is DeadlineExceeded.
  std::function<std::string()> stalled = [] { return std::string(); };
  // Called once a FIT upload's header is accepted, with its client and
  // round: from then on a stall puts that client out of the round.
  std::function<void(const std::string& client_id, int round)> fit_started =
      [](const std::string&, int) {};
  // Whether the caller may send for the header's client id (its
  // certificate's tenant is the client's); an error refuses the update.
  std::function<absl::Status(const std::string& client_id)> authorize =
      [](const std::string&) { return absl::OkStatus(); };
};

// Receives one update into `engine`. OK when it was folded in (FIT) or
// recorded (EVALUATE). Otherwise the update is refused and nothing of it
// reaches the round: InvalidArgument for a malformed stream (no header
// first, a second header, an unknown kind or encoding, a negative size or
// offset, a gap, too many bytes, a value that is not finite, fewer bytes
// than announced, a digest that is not 32 bytes, a resumed update whose
// bytes do not match its digest), `authorize`'s error (PermissionDenied),
// and the engine's own codes (NotFound: unknown client; Aborted: not this
// client's round; Unavailable: no upload slot); Cancelled when the stream
// broke off (the worker cancelled, or the connection dropped): a FIT
// update with a digest is then kept to resume (RoundEngine::KeepPartial);
// DeadlineExceeded when it stalled (nothing is kept).
//
// Resuming: a FIT header with the digest (and round, size, examples) of
// the client's partial upload continues it; the chunks must then start at
// the offset `resume_from` was told. The digest of the whole is checked
// before the fold whenever the bytes came in more than one stream.
absl::Status ReceiveUpdate(RoundEngine& engine, const UpdateStream& stream);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_UPDATE_RECEIVER_H_
