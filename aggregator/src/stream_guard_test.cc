// StreamWatchdog and CallLimiter on their own, with a fake clock.
#include "braid/aggregator/stream_guard.h"

#include <memory>
#include <optional>
#include <vector>

#include "braid/core/testing/fake_clock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

class StreamWatchdogTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  // 10 s of silence at most; 1000 bytes buy 10 s.
  StreamWatchdog dog_{absl::Seconds(10), 1000, &clock_, /*run_thread=*/false};
  int cancels_ = 0;
  std::unique_ptr<StreamWatchdog::Watch> Watch() {
    return dog_.Start([this] { ++cancels_; });
  }
};

TEST_F(StreamWatchdogTest, ASilentStreamIsCancelledOnceAfterTheTimeout) {
  auto w = Watch();
  clock_.Advance(absl::Seconds(10));
  dog_.Sweep(clock_.Now());
  EXPECT_EQ(cancels_, 0);
  clock_.Advance(absl::Seconds(1));
  dog_.Sweep(clock_.Now());
  dog_.Sweep(clock_.Now());
  EXPECT_EQ(cancels_, 1);
  EXPECT_TRUE(w->expired());
}

TEST_F(StreamWatchdogTest, FullChunksKeepAStreamAliveATrickleDoesNot) {
  auto full = Watch();
  auto trickle = Watch();
  for (int i = 0; i < 30; ++i) {
    clock_.Advance(absl::Seconds(5));
    full->Progress(1000);
    trickle->Progress(4);  // 4 bytes every 5 s: 0.04 s of credit each
    dog_.Sweep(clock_.Now());
  }
  EXPECT_FALSE(full->expired());
  EXPECT_TRUE(trickle->expired());
  EXPECT_EQ(cancels_, 1);
}

TEST_F(StreamWatchdogTest, APausedStreamHasNoDeadlineAndResumesWithAFullOne) {
  auto w = Watch();
  w->Pause();
  clock_.Advance(absl::Minutes(5));
  dog_.Sweep(clock_.Now());
  EXPECT_FALSE(w->expired());
  w->Resume();
  clock_.Advance(absl::Seconds(9));
  dog_.Sweep(clock_.Now());
  EXPECT_FALSE(w->expired());
  clock_.Advance(absl::Seconds(2));
  dog_.Sweep(clock_.Now());
  EXPECT_TRUE(w->expired());
}

TEST(CallLimiterTest, EachKeyHasItsOwnLimit) {
  CallLimiter limiter([](const std::string& key) { return key == "big" ? 3 : 2; });
  std::vector<CallLimiter::Permit> held;
  for (int i = 0; i < 2; ++i) held.push_back(*limiter.Acquire("evil"));
  const absl::StatusOr<CallLimiter::Permit> refused = limiter.Acquire("evil");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(limiter.Acquire("honest").ok());  // released at once
  EXPECT_EQ(limiter.InFlight("honest"), 0);
  EXPECT_EQ(limiter.InFlight("evil"), 2);
  held.pop_back();
  EXPECT_TRUE(limiter.Acquire("evil").ok());
  for (int i = 0; i < 3; ++i) held.push_back(*limiter.Acquire("big"));
  EXPECT_FALSE(limiter.Acquire("big").ok());
}

}  // namespace
}  // namespace braid::aggregator
