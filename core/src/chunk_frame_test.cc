#include "braid/core/chunk_frame.h"

#include <cstring>
#include <string>
#include <vector>

#include <grpcpp/support/proto_buffer_reader.h>

#include "braid/v1/federation.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid {
namespace {

using ::testing::HasSubstr;

std::string Joined(const ChunkView& view) {
  std::string out;
  for (absl::string_view piece : view.data) out.append(piece.data(), piece.size());
  return out;
}

// What the generated code makes of a frame's bytes.
v1::UpdateMessage Parsed(WireFrame& frame) {
  v1::UpdateMessage m;
  EXPECT_TRUE(ParseFrame(frame.bytes, &m));
  return m;
}

TEST(ChunkFrameTest, EncodedChunksAreWhatProtobufWouldSend) {
  const std::string a = "first part ", b = "and the second";
  for (const int64_t offset : {int64_t{0}, int64_t{4}, int64_t{1} << 40, int64_t{-8}}) {
    PayloadLease lease;
    WireFrame frame = EncodeChunkFrame(offset, {{a.data(), a.size()}, {b.data(), b.size()}}, lease);
    v1::UpdateMessage expected;
    expected.mutable_chunk()->set_offset(offset);
    expected.mutable_chunk()->set_data(a + b);
    EXPECT_EQ(Parsed(frame).SerializeAsString(), expected.SerializeAsString()) << offset;

    absl::StatusOr<ChunkView> view = DecodeChunkFrame(frame.bytes);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->offset, offset);
    EXPECT_EQ(view->size, a.size() + b.size());
    EXPECT_EQ(Joined(*view), a + b);
  }
}

TEST(ChunkFrameTest, ChunkDataIsBorrowedUntilGrpcLetsGoOfIt) {
  std::string payload(1 << 16, 'x');
  PayloadLease lease;
  {
    WireFrame frame = EncodeChunkFrame(0, {{payload.data(), payload.size()}}, lease);
    // The frame refers to the payload's memory: a change shows through.
    payload[0] = 'y';
    absl::StatusOr<ChunkView> view = DecodeChunkFrame(frame.bytes);
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(Joined(*view)[0], 'y');
  }
  lease.WaitUntilReturned();  // returns: the frame let go of its slices
}

TEST(ChunkFrameTest, DecodesWhatTheGeneratedCodeWrites) {
  v1::UpdateMessage m;
  m.mutable_chunk()->set_offset(1 << 20);
  m.mutable_chunk()->set_data(std::string(5000, 'z'));
  WireFrame frame = EncodeFrame(m);
  absl::StatusOr<ChunkView> view = DecodeChunkFrame(frame.bytes);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->offset, 1 << 20);
  EXPECT_EQ(Joined(*view), std::string(5000, 'z'));

  v1::UpdateMessage header;
  header.mutable_header()->set_client_id("c");
  WireFrame header_frame = EncodeFrame(header);
  absl::StatusOr<ChunkView> not_chunk = DecodeChunkFrame(header_frame.bytes);
  EXPECT_THAT(std::string(not_chunk.status().message()), HasSubstr("second header"));
  EXPECT_EQ(Parsed(header_frame).header().client_id(), "c");
}

}  // namespace
}  // namespace braid
