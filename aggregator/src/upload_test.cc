#include "braid/aggregator/upload.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

constexpr int kFloats = 8;
constexpr uint64_t kBytes = kFloats * sizeof(float);

std::unique_ptr<Upload> Take(UploadPool& pool, const std::string& client) {
  absl::StatusOr<UploadPool::Held> slot = pool.Acquire(absl::ZeroDuration());
  if (!slot.ok()) return nullptr;
  return std::make_unique<Upload>(&pool, *slot, client, 1, 10);
}

// A pool of `slots` with their buffers allocated, as the round engine
// leaves it when a round starts.
std::unique_ptr<UploadPool> ReservedPool(int slots) {
  auto pool = std::make_unique<UploadPool>(slots, kFloats);
  pool->Reserve();
  return pool;
}

std::vector<float> Filled(float value) { return std::vector<float>(kFloats, value); }

// Writes `values` as the upload's first bytes on a thread of its own, so a
// test can see whether the write waits.
class BackgroundWrite {
 public:
  BackgroundWrite(Upload* upload, std::vector<float> values) : values_(std::move(values)) {
    thread_ = std::thread([this, upload] {
      ok_ = upload->Write(0, values_.data(), values_.size() * sizeof(float)).ok();
      done_ = true;
    });
  }
  ~BackgroundWrite() { thread_.join(); }
  bool done() const { return done_; }
  bool ok() const { return ok_; }

 private:
  std::vector<float> values_;
  std::atomic<bool> done_{false};
  std::atomic<bool> ok_{false};
  std::thread thread_;
};

bool WaitUntilDone(const BackgroundWrite& write) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!write.done() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  return write.done();
}

// A complete upload hands its slot to the next one while it is folded; the
// next overwrites only the bytes the first has consumed.
TEST(UploadPoolTest, TheNextUploadOverwritesOnlyWhatTheFoldHasConsumed) {
  std::unique_ptr<UploadPool> reserved = ReservedPool(/*slots=*/1);
  UploadPool& pool = *reserved;
  std::unique_ptr<Upload> first = Take(pool, "a");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->Write(0, Filled(1).data(), kBytes).ok());
  EXPECT_EQ(Take(pool, "b"), nullptr) << "a held slot was handed out";
  first->HandOver();
  std::unique_ptr<Upload> second = Take(pool, "b");
  ASSERT_NE(second, nullptr) << "the slot was not handed over";

  BackgroundWrite write(second.get(), Filled(2));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(write.done()) << "overwrote bytes the first upload had not consumed";
  first->Consumed(kBytes / 2);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(write.done()) << "overwrote bytes the first upload had not consumed";
  EXPECT_EQ(std::vector<float>(first->data(), first->data() + kFloats), Filled(1));
  first.reset();  // done with its bytes
  ASSERT_TRUE(WaitUntilDone(write));
  EXPECT_TRUE(write.ok());
  EXPECT_EQ(std::vector<float>(second->data(), second->data() + kFloats), Filled(2));
}

// An upload that fails (it never hands over its bytes) frees the slot, but
// the bytes of the upload still being folded stay protected.
TEST(UploadPoolTest, AFailedUploadDoesNotReleaseTheBytesStillBeingFolded) {
  std::unique_ptr<UploadPool> reserved = ReservedPool(/*slots=*/1);
  UploadPool& pool = *reserved;
  std::unique_ptr<Upload> folded = Take(pool, "a");
  ASSERT_TRUE(folded->Write(0, Filled(1).data(), kBytes).ok());
  folded->HandOver();
  std::unique_ptr<Upload> failed = Take(pool, "b");
  ASSERT_NE(failed, nullptr);
  failed.reset();  // e.g. the stream broke before its first chunk
  std::unique_ptr<Upload> third = Take(pool, "c");
  ASSERT_NE(third, nullptr) << "the failed upload kept the slot";

  BackgroundWrite write(third.get(), Filled(3));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(write.done()) << "a failed upload released bytes another was folding";
  EXPECT_EQ(std::vector<float>(folded->data(), folded->data() + kFloats), Filled(1));
  folded->Consumed(kBytes);
  ASSERT_TRUE(WaitUntilDone(write));
  EXPECT_TRUE(write.ok());
}

// An incomplete upload cannot hand its slot over as if it were to be
// folded.
TEST(UploadPoolTest, AnIncompleteUploadKeepsItsSlotUntilDestroyed) {
  std::unique_ptr<UploadPool> reserved = ReservedPool(/*slots=*/1);
  UploadPool& pool = *reserved;
  std::unique_ptr<Upload> partial = Take(pool, "a");
  ASSERT_TRUE(partial->Write(0, Filled(1).data(), kBytes / 2).ok());
  partial->HandOver();
  EXPECT_EQ(Take(pool, "b"), nullptr);
  partial.reset();
  std::unique_ptr<Upload> next = Take(pool, "b");
  ASSERT_NE(next, nullptr);
  EXPECT_TRUE(next->Write(0, Filled(2).data(), kBytes).ok());  // does not wait
}

}  // namespace
}  // namespace braid::aggregator
