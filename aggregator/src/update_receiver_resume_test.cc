// Resumable uploads (issue 18, "Transport"): the receiver's and the round
// engine's bookkeeping of a FIT upload whose stream broke off, without
// sockets. What a worker notices: where it is told to resume, whether its
// update is folded, and that nothing it did not send whole is.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/update_receiver.h"
#include "braid/aggregator/upload.h"
#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

constexpr int kFloats = 8;
constexpr int64_t kBytes = kFloats * sizeof(float);
constexpr int64_t kHalf = kBytes / 2;

std::string Bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

v1::UpdateMessage Header(const std::string& client, const std::string& digest,
                         int64_t examples = 10) {
  v1::UpdateMessage m;
  v1::UpdateHeader* h = m.mutable_header();
  h->set_client_id(client);
  h->set_round(1);
  h->set_kind(v1::TASK_KIND_FIT);
  h->set_encoding(v1::ENCODING_FP32);
  h->set_total_bytes(kBytes);
  h->set_num_examples(examples);
  h->set_digest(digest);
  return m;
}

v1::UpdateMessage Chunk(int64_t offset, const std::string& bytes) {
  v1::UpdateMessage m;
  m.mutable_chunk()->set_offset(offset);
  m.mutable_chunk()->set_data(bytes);
  return m;
}

// What one PutUpdate call saw.
struct Call {
  absl::Status status;
  int64_t resume_from = -1;  // the offset the worker was told (-1: never admitted)
};

// Two tenants' clients (alpha, beta), one round that needs both, a model of
// 8 zeros, a fake clock; alpha's update is kA, beta's kB (equal examples,
// so the new global is their mean).
class ResumeTest : public ::testing::Test {
 protected:
  const std::vector<float> kA = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<float> kB = {3, 2, 1, 0, -1, -2, -3, -4};

  void Start(int upload_slots) {
    engine_.reset();
    absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("resume", kFloats);
    ASSERT_TRUE(cp.ok()) << cp.status();
    checkpoint_ = std::move(cp->checkpoint);
    EngineOptions options;
    options.job = "job";
    options.min_clients = 2;
    options.expected_clients = 2;
    options.upload_slots = upload_slots;
    options.heartbeat_timeout = absl::Hours(10);
    options.round_timeout = absl::Hours(1);
    options.partial_upload_grace = absl::Seconds(30);
    options.partial_upload_timeout = absl::Minutes(5);
    engine_ = std::make_unique<RoundEngine>(options, checkpoint_.get(), nullptr, &clock_);
    alpha_ = *engine_->Join("alpha", 0, 10);
    beta_ = *engine_->Join("beta", 0, 10);
    engine_->Tick();
    for (const std::string& id : {alpha_, beta_}) {
      absl::StatusOr<Task> task = engine_->NextTask(id, absl::ZeroDuration());
      ASSERT_TRUE(task.ok()) << task.status();
      ASSERT_EQ(task->kind, TaskKind::kFit);
    }
  }
  void SetUp() override { Start(/*upload_slots=*/2); }

  // One PutUpdate stream of `messages`; `broken`: it ends as a dropped
  // connection does (cancelled), not with the worker's end of stream.
  Call Put(const std::vector<v1::UpdateMessage>& messages, bool broken = false) {
    Call call;
    size_t next = 0;
    UpdateStream stream;
    stream.read = [&](grpc::ByteBuffer* frame) {
      if (next == messages.size()) return false;
      const std::string bytes = messages[next++].SerializeAsString();
      grpc::Slice slice(bytes.data(), bytes.size());
      *frame = grpc::ByteBuffer(&slice, 1);
      return true;
    };
    stream.cancelled = [broken] { return broken; };
    stream.slot_wait = absl::ZeroDuration();
    stream.resume_from = [&](uint64_t offset) { call.resume_from = static_cast<int64_t>(offset); };
    call.status = ReceiveUpdate(*engine_, stream);
    return call;
  }

  // The first half of alpha's update, then the stream breaks.
  void BreakAlphaAtHalf() {
    const Call cut =
        Put({Header(alpha_, Sha256(Bytes(kA).data(), kBytes)), Chunk(0, Bytes(kA).substr(0, kHalf))},
            /*broken=*/true);
    ASSERT_TRUE(absl::IsCancelled(cut.status)) << cut.status;
    ASSERT_EQ(cut.resume_from, 0);
    ASSERT_EQ(engine_->PartialUploads(), 1);
  }

  // The global weights after the engine has ticked.
  std::vector<float> Weights() {
    engine_->Tick();
    std::vector<float> w(kFloats);
    EXPECT_TRUE(checkpoint_->ReadWeights(0, w.data(), kBytes).ok());
    return w;
  }
  std::vector<float> Mean() const {
    std::vector<float> m(kFloats);
    for (int i = 0; i < kFloats; ++i) m[i] = (kA[i] + kB[i]) / 2;
    return m;
  }
  void PutBeta() {
    const Call b = Put({Header(beta_, Sha256(Bytes(kB).data(), kBytes)), Chunk(0, Bytes(kB))});
    ASSERT_TRUE(b.status.ok()) << b.status;
  }

  FakeClock clock_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<RoundEngine> engine_;
  std::string alpha_, beta_;
};

// The second call is told to start at the half and sends only the rest;
// the whole is folded once.
TEST_F(ResumeTest, ABrokenUploadResumesAtTheBytesReceived) {
  BreakAlphaAtHalf();
  const std::string digest = Sha256(Bytes(kA).data(), kBytes);
  const Call rest = Put({Header(alpha_, digest), Chunk(kHalf, Bytes(kA).substr(kHalf))});
  ASSERT_TRUE(rest.status.ok()) << rest.status;
  EXPECT_EQ(rest.resume_from, kHalf);
  EXPECT_EQ(engine_->PartialUploads(), 0);
  PutBeta();
  EXPECT_EQ(Weights(), Mean());
  EXPECT_EQ(engine_->Status().history.at(0).participants, 2);
}

// A stream that broke after its last chunk: the resume sends nothing more.
TEST_F(ResumeTest, AnUploadCutAfterItsLastByteResumesWithNothingToSend) {
  const std::string digest = Sha256(Bytes(kA).data(), kBytes);
  ASSERT_TRUE(absl::IsCancelled(Put({Header(alpha_, digest), Chunk(0, Bytes(kA))}, true).status));
  const Call rest = Put({Header(alpha_, digest)});
  ASSERT_TRUE(rest.status.ok()) << rest.status;
  EXPECT_EQ(rest.resume_from, kBytes);
  PutBeta();
  EXPECT_EQ(Weights(), Mean());
}

// The rest of another update under the first one's digest: refused before
// the fold, and the round still awaits the client (nothing of it counted).
TEST_F(ResumeTest, APrefixAndARestThatDoNotMatchTheDigestAreRefused) {
  BreakAlphaAtHalf();
  const std::string digest = Sha256(Bytes(kA).data(), kBytes);
  const Call bad = Put({Header(alpha_, digest), Chunk(kHalf, Bytes(kB).substr(kHalf))});
  ASSERT_TRUE(absl::IsInvalidArgument(bad.status)) << bad.status;
  EXPECT_THAT(bad.status.message(), HasSubstr("not the digest its header announced"));
  EXPECT_THAT(bad.status.message(), HasSubstr("nothing of it was folded"));
  EXPECT_EQ(engine_->PartialUploads(), 0);
  // Sent again whole, alpha's update is taken: the refused one left no trace.
  const Call again = Put({Header(alpha_, digest), Chunk(0, Bytes(kA))});
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_EQ(again.resume_from, 0);
  PutBeta();
  EXPECT_EQ(Weights(), Mean());
}

// Chunks that do not start where the worker was told to are refused.
TEST_F(ResumeTest, AResumeThatRestartsAtZeroIsRefused) {
  BreakAlphaAtHalf();
  const Call bad = Put({Header(alpha_, Sha256(Bytes(kA).data(), kBytes)), Chunk(0, Bytes(kA))});
  ASSERT_TRUE(absl::IsInvalidArgument(bad.status)) << bad.status;
  EXPECT_THAT(bad.status.message(), HasSubstr("at byte 0 but 16 bytes received"));
  EXPECT_EQ(engine_->PartialUploads(), 0);
}

// Another update (a new digest, or another example count) does not get the
// old bytes: it starts at 0, and the old partial upload is gone.
TEST_F(ResumeTest, ADifferentUpdateOfTheSameClientStartsOver) {
  BreakAlphaAtHalf();
  const Call other = Put({Header(alpha_, Sha256(Bytes(kB).data(), kBytes)), Chunk(0, Bytes(kB))},
                         /*broken=*/true);
  EXPECT_EQ(other.resume_from, 0);
  EXPECT_EQ(engine_->PartialUploads(), 1) << "one partial upload per client";
  const Call fewer = Put({Header(alpha_, Sha256(Bytes(kB).data(), kBytes), /*examples=*/9)});
  EXPECT_EQ(fewer.resume_from, 0);
}

// Beta naming alpha's digest gets nothing of alpha's bytes, and alpha can
// still resume.
TEST_F(ResumeTest, AnotherClientCannotResumeTheUpload) {
  BreakAlphaAtHalf();
  const std::string digest = Sha256(Bytes(kA).data(), kBytes);
  const Call beta = Put({Header(beta_, digest), Chunk(kHalf, Bytes(kA).substr(kHalf))});
  EXPECT_EQ(beta.resume_from, 0);
  ASSERT_TRUE(absl::IsInvalidArgument(beta.status)) << beta.status;  // a gap: 16, not 0
  EXPECT_EQ(engine_->PartialUploads(), 1);
  const Call rest = Put({Header(alpha_, digest), Chunk(kHalf, Bytes(kA).substr(kHalf))});
  EXPECT_EQ(rest.resume_from, kHalf);
  EXPECT_TRUE(rest.status.ok()) << rest.status;
}

// Without a digest an upload is not resumable: nothing is kept.
TEST_F(ResumeTest, AnUploadWithoutDigestIsNotKept) {
  const Call cut = Put({Header(alpha_, ""), Chunk(0, Bytes(kA).substr(0, kHalf))}, true);
  EXPECT_TRUE(absl::IsCancelled(cut.status)) << cut.status;
  EXPECT_EQ(engine_->PartialUploads(), 0);
  EXPECT_EQ(Put({Header(alpha_, ""), Chunk(0, Bytes(kA))}).resume_from, 0);
}

TEST_F(ResumeTest, ADigestThatIsNotSha256IsRefused) {
  const Call bad = Put({Header(alpha_, "12345"), Chunk(0, Bytes(kA))});
  ASSERT_TRUE(absl::IsInvalidArgument(bad.status)) << bad.status;
  EXPECT_THAT(bad.status.message(), HasSubstr("32 bytes of a SHA-256, not 5"));
  EXPECT_EQ(bad.resume_from, -1);
}

// A partial upload is not kept forever: after partial_upload_timeout it is
// dropped, and its client starts again at 0.
TEST_F(ResumeTest, APartialUploadIsDroppedAfterItsTimeout) {
  BreakAlphaAtHalf();
  clock_.Advance(absl::Minutes(4));
  engine_->Tick();
  EXPECT_EQ(engine_->PartialUploads(), 1);
  clock_.Advance(absl::Minutes(1));
  engine_->Tick();
  EXPECT_EQ(engine_->PartialUploads(), 0);
  EXPECT_EQ(Put({Header(alpha_, Sha256(Bytes(kA).data(), kBytes))}).resume_from, 0);
}

// The round closing (here: failing at its deadline) drops it too.
TEST_F(ResumeTest, APartialUploadIsDroppedWhenItsRoundCloses) {
  BreakAlphaAtHalf();
  clock_.Advance(absl::Hours(1));
  engine_->Tick();
  EXPECT_EQ(engine_->Status().phase, "Failed");
  EXPECT_EQ(engine_->PartialUploads(), 0);
}

// A client that joins again (a restarted worker) is a new session: its
// old partial upload is dropped.
TEST_F(ResumeTest, APartialUploadIsDroppedWhenItsClientJoinsAgain) {
  BreakAlphaAtHalf();
  ASSERT_TRUE(engine_->Join("alpha", 0, 10).ok());
  engine_->Tick();
  EXPECT_EQ(engine_->PartialUploads(), 0);
}

// With one upload slot a partial upload holds it for its grace, then gives
// it up to an upload that waits; its client then starts again at 0.
TEST_F(ResumeTest, APartialUploadGivesItsSlotToAWaitingUploadAfterItsGrace) {
  Start(/*upload_slots=*/1);
  BreakAlphaAtHalf();
  const std::string b = Sha256(Bytes(kB).data(), kBytes);
  const Call early = Put({Header(beta_, b), Chunk(0, Bytes(kB))});
  EXPECT_TRUE(absl::IsUnavailable(early.status)) << early.status;
  EXPECT_EQ(engine_->PartialUploads(), 1);
  clock_.Advance(absl::Seconds(30));
  PutBeta();
  EXPECT_EQ(engine_->PartialUploads(), 0);
  const Call again = Put({Header(alpha_, Sha256(Bytes(kA).data(), kBytes)), Chunk(0, Bytes(kA))});
  EXPECT_EQ(again.resume_from, 0);
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_EQ(Weights(), Mean());
}

// The grace counts from the first break: breaking again does not renew it.
TEST_F(ResumeTest, BreakingAgainDoesNotRenewTheGrace) {
  Start(/*upload_slots=*/1);
  BreakAlphaAtHalf();
  clock_.Advance(absl::Seconds(20));
  const std::string a = Sha256(Bytes(kA).data(), kBytes);
  const Call second = Put({Header(alpha_, a), Chunk(kHalf, Bytes(kA).substr(kHalf, 4))}, true);
  EXPECT_EQ(second.resume_from, kHalf);
  ASSERT_EQ(engine_->PartialUploads(), 1);
  clock_.Advance(absl::Seconds(10));
  PutBeta();  // 30 s after the first break: alpha's slot is given up
  EXPECT_EQ(engine_->PartialUploads(), 0);
}

// A worker that reconnects at once may ask to resume before the server has
// seen its old stream end: with one slot, the new call waits for it and
// takes the bytes up as soon as the old stream's upload is kept.
TEST_F(ResumeTest, AResumeThatArrivesBeforeTheBreakIsSeenWaitsAndTakesTheBytesUp) {
  Start(/*upload_slots=*/1);
  const std::string digest = Sha256(Bytes(kA).data(), kBytes);
  absl::StatusOr<std::unique_ptr<Upload>> old =
      engine_->BeginFit(alpha_, 1, kBytes, 10, absl::ZeroDuration(), false, digest);
  ASSERT_TRUE(old.ok()) << old.status();
  ASSERT_TRUE((*old)->Write(0, Bytes(kA).data(), kHalf).ok());
  absl::StatusOr<std::unique_ptr<Upload>> resumed = absl::UnknownError("not yet");
  std::thread second([&] {
    resumed = engine_->BeginFit(alpha_, 1, kBytes, 10, absl::Seconds(60), false, digest);
  });
  // The old stream's end is seen now: before the second call looks, or
  // (usually not: the thread starts later) while it waits for the only
  // slot; either way it resumes.
  EXPECT_TRUE(engine_->KeepPartial(*std::move(old)));
  second.join();
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ((*resumed)->received(), static_cast<uint64_t>(kHalf));
  EXPECT_EQ((*resumed)->resumed_at(), static_cast<uint64_t>(kHalf));
}

// Downloads: a task carries the SHA-256 of the weights it streams, and the
// file it streams them from.
TEST_F(ResumeTest, ATaskCarriesTheDigestOfItsWeights) {
  absl::StatusOr<Task> task = engine_->NextTask(alpha_, absl::ZeroDuration());
  ASSERT_TRUE(task.ok()) << task.status();
  const std::vector<float> zeros(kFloats, 0.0f);
  EXPECT_EQ(task->weights_digest, Sha256(Bytes(zeros).data(), kBytes));
  ASSERT_NE(task->weights, nullptr);
  std::vector<float> streamed(kFloats, 1.0f);
  ASSERT_TRUE(task->weights->ReadAt(checkpoint_->index().data_begin, streamed.data(), kBytes).ok());
  EXPECT_EQ(streamed, zeros);
  // After the round the digest is the new global's.
  ASSERT_TRUE(Put({Header(alpha_, ""), Chunk(0, Bytes(kA))}).status.ok());
  PutBeta();
  const std::vector<float> mean = Weights();
  EXPECT_EQ(engine_->WeightsDigest(), Sha256(Bytes(mean).data(), kBytes));
}

}  // namespace
}  // namespace braid::aggregator
