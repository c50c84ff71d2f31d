#include "braid/dashboard/event_feed.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace braid::dashboard {
namespace {

using nlohmann::json;

TEST(EventFeed, WaitsForTheNextEventAndTimesOut) {
  EventFeed feed;
  EXPECT_TRUE(feed.After(0, absl::Milliseconds(20)).empty());
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(50));
    feed.Publish(json{{"n", 1}});
  });
  std::vector<DashboardEvent> got = feed.After(0, absl::Seconds(10));
  publisher.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 1);
  EXPECT_EQ(got[0].data["n"], 1);
  feed.Publish(json{{"n", 2}});
  feed.Publish(json{{"n", 3}});
  EXPECT_EQ(feed.After(1, absl::ZeroDuration()).size(), 2u);
  EXPECT_EQ(feed.last_id(), 3);
}

TEST(EventFeed, CloseWakesWaiters) {
  EventFeed feed;
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    feed.Close();
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(feed.After(0, absl::Minutes(1)).empty());
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  closer.join();
  EXPECT_TRUE(feed.closed());
}

TEST(EventFeed, KeepsOnlyTheNewest) {
  EventFeed feed(2);
  for (int i = 0; i < 5; ++i) feed.Publish(json{{"n", i}});
  std::vector<DashboardEvent> got = feed.After(0, absl::ZeroDuration());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 4);
}

}  // namespace
}  // namespace braid::dashboard
