// PutUpdate's messages as the bytes gRPC sends and receives, so that an
// update's payload is never copied into or out of a protobuf: the worker
// hands gRPC its tensors' memory as they are, and the aggregator reads each
// chunk's data straight from the slices gRPC received. The bytes are the
// proto/braid/v1 UpdateMessage encoding; either side may use the generated
// code instead and the other cannot tell.
#ifndef BRAID_CORE_CHUNK_FRAME_H_
#define BRAID_CORE_CHUNK_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include <google/protobuf/message_lite.h>

namespace braid {

// One message of a stream, unparsed. gRPC moves it in and out with the
// SerializationTraits below (no copy of the bytes either way).
struct WireFrame {
  grpc::ByteBuffer bytes;
};

// Counts the payload slices handed to gRPC by reference, so their memory
// is known to be free again: gRPC may hold a slice until well after the
// Write that sent it returned (until the call is torn down).
class PayloadLease {
 public:
  PayloadLease() = default;
  PayloadLease(const PayloadLease&) = delete;
  PayloadLease& operator=(const PayloadLease&) = delete;
  // Waits until every slice is returned.
  ~PayloadLease() { WaitUntilReturned(); }

  // A slice over [data, data + len) that refers to the memory, not a copy.
  grpc::Slice Borrow(const char* data, size_t len);
  // Blocks until gRPC has dropped every slice Borrow handed out. Call it
  // after the call that carried them has ended (its writer destroyed).
  void WaitUntilReturned();

 private:
  static void Return(void* lease);
  absl::Mutex mu_;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
};

// Bytes of a chunk's payload, in place.
struct ChunkPiece {
  const char* data;
  size_t size;
};

// An UpdateMessage{chunk: {offset, data}} whose data is `pieces` back to
// back, borrowed through `lease` (so they must stay valid and unchanged
// until lease.WaitUntilReturned() returns).
WireFrame EncodeChunkFrame(int64_t offset, const std::vector<ChunkPiece>& pieces,
                           PayloadLease& lease);

// A small message, copied into a frame.
WireFrame EncodeFrame(const google::protobuf::MessageLite& message);

// An UpdateMessage frame that holds a chunk, with its data left in the
// frame's slices: `data` views them and is valid while the frame is alive
// and unchanged.
struct ChunkView {
  int64_t offset = 0;
  std::vector<absl::string_view> data;
  size_t size = 0;  // bytes in `data`, summed
};

// Decodes `frame` (an UpdateMessage) as a chunk, as protobuf would (fields
// in any order, unknown fields skipped, the last `data` wins).
// InvalidArgument if it holds a header ("a second header in the stream"),
// holds neither, or is not valid protobuf.
absl::StatusOr<ChunkView> DecodeChunkFrame(grpc::ByteBuffer& frame);

// Parses a whole frame with the generated code (for headers and other
// small messages). False if it is not a valid encoding of `message`'s type.
bool ParseFrame(grpc::ByteBuffer& frame, google::protobuf::MessageLite* message);

}  // namespace braid

namespace grpc {

template <>
class SerializationTraits<braid::WireFrame, void> {
 public:
  // gRPC hands over `buffer`'s contents and forgets them.
  static Status Deserialize(ByteBuffer* buffer, braid::WireFrame* frame) {
    frame->bytes.Clear();
    frame->bytes.Swap(buffer);
    return Status::OK;
  }
  // A copy of a ByteBuffer shares its slices; no bytes are copied.
  static Status Serialize(const braid::WireFrame& frame, ByteBuffer* buffer, bool* own_buffer) {
    *buffer = frame.bytes;
    *own_buffer = true;
    return Status::OK;
  }
};

}  // namespace grpc

#endif  // BRAID_CORE_CHUNK_FRAME_H_
