#include "braid/operator/work_queue.h"

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "braid/core/testing/fake_clock.h"
#include "gtest/gtest.h"

namespace braid::op {
namespace {

TEST(WorkQueue, AKeyAddedTwiceWhileWaitingIsHandedOutOnce) {
  WorkQueue q;
  q.Add("lab/a");
  q.Add("lab/b");
  q.Add("lab/a");
  EXPECT_EQ(q.Pending(), 2u);
  EXPECT_EQ(q.Get(), "lab/a");
  EXPECT_EQ(q.Get(), "lab/b");
  EXPECT_EQ(q.Pending(), 0u);
}

TEST(WorkQueue, AKeyBeingProcessedIsNotHandedToASecondWorker) {
  WorkQueue q;
  q.Add("lab/a");
  ASSERT_EQ(q.Get(), "lab/a");
  q.Add("lab/a");  // changed again while being reconciled
  q.Add("lab/a");

  std::atomic<bool> got{false};
  std::optional<std::string> second;
  std::thread worker([&] {
    second = q.Get();
    got = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(got) << "handed out while another worker holds it";
  q.Done("lab/a");
  worker.join();
  EXPECT_EQ(second, "lab/a");  // once, however often it was re-added
  q.Done("lab/a");
  EXPECT_EQ(q.Pending(), 0u);
}

TEST(WorkQueue, OtherKeysFlowWhileOneIsProcessed) {
  WorkQueue q;
  q.Add("lab/a");
  ASSERT_EQ(q.Get(), "lab/a");
  q.Add("lab/a");
  q.Add("lab/b");
  EXPECT_EQ(q.Get(), "lab/b");
  q.Done("lab/b");
  q.Done("lab/a");
  EXPECT_EQ(q.Get(), "lab/a");
}

TEST(WorkQueue, AKeyNotReAddedIsNotHandedOutAgainAfterDone) {
  WorkQueue q;
  q.Add("lab/a");
  ASSERT_EQ(q.Get(), "lab/a");
  q.Done("lab/a");
  EXPECT_EQ(q.Pending(), 0u);
  q.Add("lab/b");
  EXPECT_EQ(q.Get(), "lab/b");
}

TEST(WorkQueue, AddAfterHandsKeysOutWhenDueInDueOrder) {
  WorkQueue q;
  const absl::Time start = absl::Now();
  q.AddAfter("lab/late", absl::Milliseconds(150));
  q.AddAfter("lab/soon", absl::Milliseconds(50));
  q.Add("lab/now");
  EXPECT_EQ(q.Pending(), 3u);
  EXPECT_EQ(q.Get(), "lab/now");
  EXPECT_EQ(q.Get(), "lab/soon");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_EQ(q.Get(), "lab/late");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
}

TEST(WorkQueue, AddNowOvertakesAnEarlierAddAfter) {
  WorkQueue q;
  q.AddAfter("lab/a", absl::Hours(1));
  q.Add("lab/a");
  EXPECT_EQ(q.Pending(), 1u);
  EXPECT_EQ(q.Get(), "lab/a");
  q.Done("lab/a");
  EXPECT_EQ(q.Pending(), 0u) << "the delayed copy must not come back";
}

TEST(WorkQueue, TheEarlierOfTwoDelaysWins) {
  WorkQueue q;
  q.AddAfter("lab/a", absl::Hours(1));
  q.AddAfter("lab/a", absl::Milliseconds(30));
  q.AddAfter("lab/b", absl::Milliseconds(80));
  EXPECT_EQ(q.Get(), "lab/a");
  EXPECT_EQ(q.Get(), "lab/b");
}

TEST(WorkQueue, ADelayedKeyDueWhileProcessedWaitsForDone) {
  WorkQueue q;
  q.Add("lab/a");
  ASSERT_EQ(q.Get(), "lab/a");
  q.AddAfter("lab/a", absl::Milliseconds(20));
  q.AddAfter("lab/b", absl::Milliseconds(60));
  // lab/a falls due first but is still being processed: lab/b comes first.
  EXPECT_EQ(q.Get(), "lab/b");
  q.Done("lab/a");
  EXPECT_EQ(q.Get(), "lab/a");
}

// A worker already blocked in Get() (the controller's idle workers are)
// must see a key added with a short delay when it falls due, not only when
// its own earlier wake-up time comes. On a fake clock: the idle key is due
// in 30 s, the retry in 50 ms; only the retry's due time passes.
TEST(WorkQueue, ABlockedGetWakesForAShortDelayAddedLater) {
  FakeClock clock;
  WorkQueue q(&clock, /*poll=*/absl::Milliseconds(10));
  q.AddAfter("lab/idle", absl::Seconds(30));
  std::optional<std::string> got;
  absl::Time returned;
  absl::Notification started;
  std::thread worker([&] {
    started.Notify();
    got = q.Get();
    returned = clock.Now();
  });
  started.WaitForNotification();
  const absl::Time added = clock.Now();
  q.AddAfter("lab/retry", absl::Milliseconds(50));
  clock.Advance(absl::Milliseconds(50));
  worker.join();
  EXPECT_EQ(got, "lab/retry");
  EXPECT_EQ(returned - added, absl::Milliseconds(50)) << "handed out when due, not later";
  EXPECT_EQ(q.Pending(), 1u) << "the idle key still waits for its time";
}

// The same on the wall clock: the retry is not held back to the blocked
// Get's earlier wake-up (30 s); waits on the key itself, with a deadline.
TEST(WorkQueue, ABlockedGetOnTheRealClockHandsOutAShortDelay) {
  WorkQueue q;
  q.AddAfter("lab/idle", absl::Seconds(30));
  std::optional<std::string> got;
  absl::Notification done;
  std::thread worker([&] {
    got = q.Get();
    done.Notify();
  });
  q.AddAfter("lab/retry", absl::Milliseconds(50));
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  worker.join();
  EXPECT_EQ(got, "lab/retry");
}

TEST(WorkQueue, ShutDownWakesABlockedGet) {
  WorkQueue q;
  std::optional<std::string> got = "unset";
  std::thread worker([&] { got = q.Get(); });
  absl::SleepFor(absl::Milliseconds(50));
  q.ShutDown();
  worker.join();
  EXPECT_EQ(got, std::nullopt);
  q.Add("lab/a");
  EXPECT_EQ(q.Get(), std::nullopt) << "a shut-down queue hands out nothing";
}

}  // namespace
}  // namespace braid::op
