#include "braid/core/chunk_frame.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

namespace braid {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using google::protobuf::internal::WireFormatLite;

// Field numbers of proto/braid/v1/federation.proto (the chunk_frame test
// checks them against the generated code).
constexpr int kUpdateHeaderField = 1;  // UpdateMessage.header
constexpr int kUpdateChunkField = 2;   // UpdateMessage.chunk
constexpr int kChunkOffsetField = 1;   // Chunk.offset
constexpr int kChunkDataField = 2;     // Chunk.data

constexpr uint32_t Tag(int field, WireFormatLite::WireType type) {
  return static_cast<uint32_t>(field << 3) | type;
}
constexpr uint32_t kChunkTag = Tag(kUpdateChunkField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
constexpr uint32_t kHeaderTag = Tag(kUpdateHeaderField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
constexpr uint32_t kOffsetTag = Tag(kChunkOffsetField, WireFormatLite::WIRETYPE_VARINT);
constexpr uint32_t kDataTag = Tag(kChunkDataField, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);

absl::Status Malformed() {
  return absl::InvalidArgumentError("an update stream message is not valid protobuf");
}

// The body of a Chunk, up to the limit `in` is at.
absl::Status DecodeChunkBody(CodedInputStream& in, ChunkView& out) {
  while (const uint32_t tag = in.ReadTag()) {
    if (tag == kOffsetTag) {
      uint64_t offset = 0;
      if (!in.ReadVarint64(&offset)) return Malformed();
      out.offset = static_cast<int64_t>(offset);
    } else if (tag == kDataTag) {
      uint32_t left = 0;
      if (!in.ReadVarint32(&left)) return Malformed();
      out.data.clear();  // a repeated singular field: the last one wins
      out.size = left;
      while (left > 0) {
        const void* p = nullptr;
        int n = 0;
        if (!in.GetDirectBufferPointer(&p, &n) || n <= 0) return Malformed();
        const uint32_t take = std::min<uint32_t>(left, static_cast<uint32_t>(n));
        out.data.emplace_back(static_cast<const char*>(p), take);
        in.Skip(static_cast<int>(take));
        left -= take;
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return Malformed();
    }
  }
  return in.ConsumedEntireMessage() ? absl::OkStatus() : Malformed();
}

}  // namespace

grpc::Slice PayloadLease::Borrow(const char* data, size_t len) {
  {
    absl::MutexLock lock(&mu_);
    ++outstanding_;
  }
  return grpc::Slice(const_cast<char*>(data), len, &PayloadLease::Return, this);
}

void PayloadLease::Return(void* lease) {
  auto* self = static_cast<PayloadLease*>(lease);
  absl::MutexLock lock(&self->mu_);
  --self->outstanding_;
}

void PayloadLease::WaitUntilReturned() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* outstanding) { return *outstanding == 0; }, &outstanding_));
}

WireFrame EncodeChunkFrame(int64_t offset, const std::vector<ChunkPiece>& pieces,
                           PayloadLease& lease) {
  size_t data_bytes = 0;
  for (const ChunkPiece& p : pieces) data_bytes += p.size;
  const auto offset_bits = static_cast<uint64_t>(offset);
  const size_t chunk_bytes =
      (offset != 0 ? 1 + CodedOutputStream::VarintSize64(offset_bits) : 0) + 1 +
      CodedOutputStream::VarintSize64(data_bytes) + data_bytes;
  // Everything up to the data's first byte: at most 4 tags and varints.
  uint8_t prefix[4 * 10];
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(kChunkTag, prefix);
  end = CodedOutputStream::WriteVarint64ToArray(chunk_bytes, end);
  if (offset != 0) {  // proto3 leaves a zero out
    end = CodedOutputStream::WriteVarint32ToArray(kOffsetTag, end);
    end = CodedOutputStream::WriteVarint64ToArray(offset_bits, end);
  }
  end = CodedOutputStream::WriteVarint32ToArray(kDataTag, end);
  end = CodedOutputStream::WriteVarint64ToArray(data_bytes, end);
  std::vector<grpc::Slice> slices;
  slices.reserve(pieces.size() + 1);
  slices.emplace_back(prefix, static_cast<size_t>(end - prefix));
  for (const ChunkPiece& p : pieces) {
    if (p.size > 0) slices.push_back(lease.Borrow(p.data, p.size));
  }
  return WireFrame{grpc::ByteBuffer(slices.data(), slices.size())};
}

WireFrame EncodeFrame(const google::protobuf::MessageLite& message) {
  const std::string bytes = message.SerializeAsString();
  grpc::Slice slice(bytes);
  return WireFrame{grpc::ByteBuffer(&slice, 1)};
}

absl::StatusOr<ChunkView> DecodeChunkFrame(grpc::ByteBuffer& frame) {
  grpc::ProtoBufferReader reader(&frame);
  CodedInputStream in(&reader);
  ChunkView out;
  bool chunk = false;
  while (const uint32_t tag = in.ReadTag()) {
    if (tag == kHeaderTag) return absl::InvalidArgumentError("a second header in the stream");
    if (tag != kChunkTag) {
      if (!WireFormatLite::SkipField(&in, tag)) return Malformed();
      continue;
    }
    // A message field seen twice merges; the writers here never do that,
    // and a second chunk's fields simply overwrite the first's.
    chunk = true;
    uint32_t length = 0;
    if (!in.ReadVarint32(&length) || length > INT32_MAX) return Malformed();
    const CodedInputStream::Limit limit = in.PushLimit(static_cast<int>(length));
    if (absl::Status s = DecodeChunkBody(in, out); !s.ok()) return s;
    in.PopLimit(limit);
  }
  if (!in.ConsumedEntireMessage()) return Malformed();
  if (!chunk) {
    return absl::InvalidArgumentError("a message after the header that holds no chunk");
  }
  return out;
}

bool ParseFrame(grpc::ByteBuffer& frame, google::protobuf::MessageLite* message) {
  if (!frame.Valid()) return false;
  grpc::ProtoBufferReader reader(&frame);
  return message->ParseFromZeroCopyStream(&reader);
}

}  // namespace braid
