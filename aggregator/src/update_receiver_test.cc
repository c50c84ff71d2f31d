#include "braid/aggregator/update_receiver.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 4;

v1::UpdateMessage Header(const std::string& client, int round, int64_t bytes,
                         v1::TaskKind kind = v1::TASK_KIND_FIT) {
  v1::UpdateMessage m;
  v1::UpdateHeader* h = m.mutable_header();
  h->set_client_id(client);
  h->set_round(round);
  h->set_kind(kind);
  h->set_encoding(v1::ENCODING_FP32);
  h->set_total_bytes(bytes);
  h->set_num_examples(10);
  h->mutable_train()->set_loss(0.5);
  return m;
}

v1::UpdateMessage Chunk(int64_t offset, const std::vector<float>& values) {
  v1::UpdateMessage m;
  m.mutable_chunk()->set_offset(offset);
  m.mutable_chunk()->set_data(std::string(reinterpret_cast<const char*>(values.data()),
                                          values.size() * sizeof(float)));
  return m;
}

// A message's `bytes` as gRPC might hand them over: in slices of
// `slice_bytes` (so values and varints straddle slices).
grpc::ByteBuffer Frame(const std::string& bytes, size_t slice_bytes) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += slice_bytes) {
    slices.emplace_back(bytes.data() + at, std::min(slice_bytes, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// A one-client, one-round job over a 4-float model of zeros, with the
// client's FIT task handed out.
class UpdateReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("update_receiver", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    checkpoint_ = std::move(cp->checkpoint);
    EngineOptions options;
    options.job = "job";
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), nullptr);
    absl::StatusOr<std::string> id = engine_->Join("alpha", 0, 10);
    ASSERT_TRUE(id.ok()) << id.status();
    id_ = *id;
    engine_->Tick();
    absl::StatusOr<Task> task = engine_->NextTask(id_, absl::ZeroDuration());
    ASSERT_TRUE(task.ok()) << task.status();
    ASSERT_EQ(task->kind, TaskKind::kFit);
  }

  // Rebuilds the engine with a bound on update norms (the client joins again).
  void BoundNorm(double bound) {
    EngineOptions options;
    options.job = "job";
    options.max_update_norm = bound;
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), nullptr);
    absl::StatusOr<std::string> id = engine_->Join("alpha", 0, 10);
    ASSERT_TRUE(id.ok()) << id.status();
    id_ = *id;
    engine_->Tick();
    ASSERT_EQ(engine_->NextTask(id_, absl::ZeroDuration())->kind, TaskKind::kFit);
  }

  // Feeds `messages`, each in slices of `slice_bytes`; *read_when_admitted
  // (if given) records how many had been read when the receiver admitted
  // the upload (-1: never).
  absl::Status Receive(const std::vector<v1::UpdateMessage>& messages,
                       int* read_when_admitted = nullptr, size_t slice_bytes = 3) {
    std::vector<std::string> frames;
    for (const v1::UpdateMessage& m : messages) frames.push_back(m.SerializeAsString());
    return ReceiveBytes(frames, read_when_admitted, slice_bytes);
  }

  // The same for messages given as their encoded bytes.
  absl::Status ReceiveBytes(const std::vector<std::string>& frames,
                            int* read_when_admitted = nullptr, size_t slice_bytes = 3) {
    size_t next = 0;
    UpdateStream stream;
    stream.read = [&](grpc::ByteBuffer* frame) {
      if (next == frames.size()) return false;
      *frame = Frame(frames[next++], slice_bytes);
      return true;
    };
    stream.slot_wait = absl::ZeroDuration();
    if (read_when_admitted != nullptr) {
      *read_when_admitted = -1;
      stream.admitted = [&] {
        EXPECT_EQ(*read_when_admitted, -1) << "admitted twice";
        *read_when_admitted = static_cast<int>(next);
      };
    }
    return ReceiveUpdate(*engine_, stream);
  }

  // The global weights, once the engine has ticked (a round whose update is
  // in closes on the tick, not in the upload's call).
  std::vector<float> Weights() {
    engine_->Tick();
    std::vector<float> w(kFloats);
    EXPECT_TRUE(checkpoint_->ReadWeights(0, w.data(), sizeof(float) * kFloats).ok());
    return w;
  }

  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<RoundEngine> engine_;
  std::string id_;
};

const std::vector<float> kDelta = {1, 2, 3, 4};
constexpr int64_t kBytes = kFloats * sizeof(float);

TEST_F(UpdateReceiverTest, AWellFormedUpdateIsFoldedIn) {
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, {1, 2}), Chunk(8, {3, 4})}).ok());
  EXPECT_EQ(Weights(), kDelta);
}

// The worker's upload is acknowledged once its update is in the sum; the
// round (average, checkpoint) closes on the engine's thread, which
// AwaitCloseDue wakes at once.
TEST_F(UpdateReceiverTest, TheLastUpdateIsAcknowledgedBeforeTheRoundCloses) {
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, kDelta)}).ok());
  std::vector<float> w(kFloats);
  ASSERT_TRUE(checkpoint_->ReadWeights(0, w.data(), kBytes).ok());
  EXPECT_EQ(w, std::vector<float>(kFloats, 0.0f)) << "closed inside the upload's call";
  EXPECT_TRUE(engine_->Status().history.empty());
  const absl::Time start = absl::Now();
  engine_->AwaitCloseDue(absl::Seconds(30));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "AwaitCloseDue slept through a due close";
  EXPECT_EQ(Weights(), kDelta);  // ticks
  EXPECT_EQ(engine_->Status().history.size(), 1u);
}

// However gRPC slices a message, the update is the same.
TEST_F(UpdateReceiverTest, ChunksArriveWholeOrInSlicesAlike) {
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, {1, 2}), Chunk(8, {3, 4})}, nullptr,
                      1 << 20)
                  .ok());
  EXPECT_EQ(Weights(), kDelta);
}

// A worker sends its chunks only once told: after the header, when the
// update holds an upload slot; never for an update refused up front.
TEST_F(UpdateReceiverTest, TheUploadIsAdmittedAfterItsHeaderOnlyWhenItHoldsASlot) {
  int read_when_admitted = 0;
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes + 4)}, &read_when_admitted).code() ==
              absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(read_when_admitted, -1);
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, kDelta)}, &read_when_admitted).ok());
  EXPECT_EQ(read_when_admitted, 1);
  EXPECT_EQ(Weights(), kDelta);
}

TEST_F(UpdateReceiverTest, MalformedStreamsAreRefusedAndLeaveTheRoundClean) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* what;
    std::vector<v1::UpdateMessage> messages;
    absl::StatusCode code;
    const char* says;
  };
  v1::UpdateMessage fp16 = Header(id_, 1, kBytes);
  fp16.mutable_header()->set_encoding(v1::ENCODING_UNSPECIFIED);
  v1::UpdateMessage no_examples = Header(id_, 1, kBytes);
  no_examples.mutable_header()->set_num_examples(0);
  const std::vector<Case> cases = {
      {"empty stream", {}, absl::StatusCode::kInvalidArgument, "must start with an UpdateHeader"},
      {"chunk first", {Chunk(0, kDelta)}, absl::StatusCode::kInvalidArgument, "UpdateHeader"},
      {"no kind", {Header(id_, 1, kBytes, v1::TASK_KIND_WAIT)}, absl::StatusCode::kInvalidArgument, "kind"},
      {"encoding", {fp16, Chunk(0, kDelta)}, absl::StatusCode::kInvalidArgument, "ENCODING_FP32"},
      {"negative size", {Header(id_, 1, -4)}, absl::StatusCode::kInvalidArgument, "total_bytes"},
      {"wrong size", {Header(id_, 1, kBytes + 4)}, absl::StatusCode::kInvalidArgument, "the model has 16"},
      {"no examples", {no_examples, Chunk(0, kDelta)}, absl::StatusCode::kInvalidArgument, "num_examples"},
      {"second header", {Header(id_, 1, kBytes), Header(id_, 1, kBytes)}, absl::StatusCode::kInvalidArgument, "second header"},
      {"gap", {Header(id_, 1, kBytes), Chunk(0, {1}), Chunk(8, {3, 4})}, absl::StatusCode::kInvalidArgument, "at byte 8"},
      {"negative offset", {Header(id_, 1, kBytes), Chunk(-4, kDelta)}, absl::StatusCode::kInvalidArgument, "negative"},
      {"too long", {Header(id_, 1, kBytes), Chunk(0, {1, 2, 3, 4, 5})}, absl::StatusCode::kInvalidArgument, "larger than"},
      {"torn float", {Header(id_, 1, kBytes), [] { v1::UpdateMessage m = Chunk(0, {1}); m.mutable_chunk()->mutable_data()->pop_back(); return m; }()}, absl::StatusCode::kInvalidArgument, "whole float32"},
      {"NaN", {Header(id_, 1, kBytes), Chunk(0, {1, nan, 3, 4})}, absl::StatusCode::kInvalidArgument, "not finite"},
      {"infinity", {Header(id_, 1, kBytes), Chunk(0, {1, 2, 3, -inf})}, absl::StatusCode::kInvalidArgument, "not finite"},
      {"short", {Header(id_, 1, kBytes), Chunk(0, {1, 2})}, absl::StatusCode::kInvalidArgument, "ended after 8 of 16"},
      {"unknown client", {Header("nobody", 1, kBytes), Chunk(0, kDelta)}, absl::StatusCode::kNotFound, "unknown client"},
      {"wrong round", {Header(id_, 2, kBytes), Chunk(0, kDelta)}, absl::StatusCode::kAborted, "round 2"},
  };
  for (const Case& c : cases) {
    const absl::Status s = Receive(c.messages);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.says)) << c.what;
  }
  // None of them reached the sum: the one good update alone decides it.
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, kDelta)}).ok());
  EXPECT_EQ(Weights(), kDelta);
}

TEST_F(UpdateReceiverTest, MessagesThatAreNotProtobufAreRefused) {
  const std::string header = Header(id_, 1, kBytes).SerializeAsString();
  const std::string chunk = Chunk(0, kDelta).SerializeAsString();
  const struct {
    const char* what;
    std::string bytes;
    const char* says;
  } cases[] = {
      {"cut short", chunk.substr(0, chunk.size() - 1), "not valid protobuf"},
      {"length past the end", std::string("\x12\x7f\x12\x10", 4), "not valid protobuf"},
      {"bad varint", std::string(11, '\xff'), "not valid protobuf"},
      {"empty", "", "holds no chunk"},
  };
  for (const auto& c : cases) {
    const absl::Status s = ReceiveBytes({header, c.bytes});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.says)) << c.what;
  }
  EXPECT_EQ(ReceiveBytes({"\x0a\xff"}).code(), absl::StatusCode::kInvalidArgument);
  // Fields this aggregator does not know are skipped, as protobuf would.
  const std::string unknown_field("\x18\x05", 2);
  ASSERT_TRUE(ReceiveBytes({header, unknown_field + chunk}).ok());
  EXPECT_EQ(Weights(), kDelta);
}

TEST_F(UpdateReceiverTest, ASecondUpdateFromTheSameClientIsRefused) {
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, kDelta)}).ok());
  const absl::Status again = Receive({Header(id_, 1, kBytes), Chunk(0, {9, 9, 9, 9})});
  EXPECT_EQ(again.code(), absl::StatusCode::kAborted) << again;
  EXPECT_EQ(Weights(), kDelta);
}

TEST_F(UpdateReceiverTest, AnUpdateAboveTheNormBoundIsRefused) {
  BoundNorm(5.0);  // |(1,2,3,4)| = 5.48
  const absl::Status big = Receive({Header(id_, 1, kBytes), Chunk(0, kDelta)});
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument) << big;
  EXPECT_THAT(std::string(big.message()), HasSubstr("exceeds the job's bound 5"));
  ASSERT_TRUE(Receive({Header(id_, 1, kBytes), Chunk(0, {1, 2, 2, 4})}).ok());  // |.| = 5
  EXPECT_EQ(Weights(), (std::vector<float>{1, 2, 2, 4}));
}

}  // namespace
}  // namespace braid::aggregator
