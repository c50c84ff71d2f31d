#include "braid/kube/backoff.h"

#include "gtest/gtest.h"

namespace braid::kube {
namespace {

TEST(BackoffTest, GrowsWithJitterUpToTheCapAndResets) {
  Backoff b({absl::Milliseconds(200), absl::Seconds(30), 2.0, 0.2}, /*seed=*/42);
  absl::Duration expected = absl::Milliseconds(200);
  for (int i = 0; i < 12; ++i) {
    const absl::Duration d = b.Next();
    EXPECT_LE(d, expected) << i;
    EXPECT_GE(d, expected * 0.8) << i;
    expected = std::min(expected * 2, absl::Seconds(30));
  }
  EXPECT_GE(b.Next(), absl::Seconds(24));  // capped at 30s, minus jitter
  b.Reset();
  EXPECT_LE(b.Next(), absl::Milliseconds(200));
}

TEST(BackoffTest, JitterSpreadsClients) {
  Backoff a({}, 1), c({}, 2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ |= a.Next() != c.Next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace braid::kube
