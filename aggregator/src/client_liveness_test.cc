// ClientLiveness on its own, with a fake clock: join, heartbeats, loss after
// the heartbeat timeout, the live set, joining again.
#include "braid/aggregator/client_liveness.h"

#include <string>
#include <vector>

#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ClientLivenessTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  ClientLiveness clients_{&clock_, absl::Seconds(10)};
};

TEST_F(ClientLivenessTest, AJoinedClientIsLiveUnderANewId) {
  const std::string a = clients_.Join("st-mary", 0, 100);
  const std::string b = clients_.Join("charite", 1, 50);
  EXPECT_EQ(a, "st-mary/0#1");
  EXPECT_EQ(b, "charite/1#2");
  EXPECT_TRUE(clients_.IsLive(a));
  EXPECT_EQ(clients_.LiveCount(), 2);
  EXPECT_THAT(clients_.LiveIds(), ElementsAre(b, a));
  ASSERT_NE(clients_.Find(b), nullptr);
  EXPECT_EQ(clients_.Find(b)->tenant, "charite");
  EXPECT_EQ(clients_.Find(b)->replica, 1);
  EXPECT_EQ(clients_.Find(b)->num_examples, 50);
  EXPECT_EQ(clients_.Find("nobody/0#9"), nullptr);
  EXPECT_FALSE(clients_.IsLive("nobody/0#9"));
}

TEST_F(ClientLivenessTest, ASilentClientIsLostOnlyAfterTheHeartbeatTimeout) {
  const std::string a = clients_.Join("a", 0, 1);
  const std::string b = clients_.Join("b", 0, 1);
  clock_.Advance(absl::Seconds(6));
  ASSERT_TRUE(clients_.Heartbeat(a).ok());
  clock_.Advance(absl::Seconds(4));  // b silent exactly 10 s: not yet lost
  EXPECT_THAT(clients_.MarkLost(), IsEmpty());
  clock_.Advance(absl::Seconds(1));  // b silent 11 s, a 5 s
  EXPECT_THAT(clients_.MarkLost(), ElementsAre(b));
  EXPECT_FALSE(clients_.IsLive(b));
  EXPECT_TRUE(clients_.IsLive(a));
  EXPECT_THAT(clients_.LiveIds(), ElementsAre(a));
  EXPECT_EQ(clients_.LostWorkers(), 1);
  // A lost client is told to join again; it is still known (its tenant).
  const absl::Status s = clients_.Heartbeat(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("join again"));
  ASSERT_NE(clients_.Find(b), nullptr);
  EXPECT_EQ(clients_.Heartbeat("never/0#7").code(), absl::StatusCode::kNotFound);
  // Declared once only.
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(clients_.MarkLost(), IsEmpty());
}

TEST_F(ClientLivenessTest, AWorkerThatJoinsAgainReplacesItsEarlierRegistration) {
  const std::string first = clients_.Join("a", 0, 1);
  clock_.Advance(absl::Seconds(11));
  ASSERT_THAT(clients_.MarkLost(), ElementsAre(first));
  ASSERT_EQ(clients_.LostWorkers(), 1);
  const std::string again = clients_.Join("a", 0, 2);
  EXPECT_NE(again, first);
  EXPECT_TRUE(clients_.IsLive(again));
  EXPECT_FALSE(clients_.IsLive(first));
  EXPECT_EQ(clients_.LostWorkers(), 0);  // the worker is back
  EXPECT_EQ(clients_.LiveCount(), 1);
  // A live worker joining again (a restarted pod that was never declared
  // lost) replaces the old id at once.
  const std::string third = clients_.Join("a", 0, 3);
  EXPECT_FALSE(clients_.IsLive(again));
  EXPECT_THAT(clients_.LiveIds(), ElementsAre(third));
  EXPECT_EQ(clients_.LostWorkers(), 0);
}

TEST_F(ClientLivenessTest, RejoiningOftenKeepsOneRecordPerWorkerButThoseTheRoundKeeps) {
  const std::string pinned = clients_.Join("a", 0, 1);
  std::string last;
  for (int i = 0; i < 1000; ++i) {
    last = clients_.Join("a", 0, 1, [&](const std::string& id) { return id == pinned; });
  }
  // The live session and the one the round still refers to, not 1001.
  EXPECT_EQ(clients_.Records(), 2);
  EXPECT_THAT(clients_.LiveIds(), ElementsAre(last));
  ASSERT_NE(clients_.Find(pinned), nullptr);
  EXPECT_FALSE(clients_.IsLive(pinned));
  EXPECT_EQ(clients_.Heartbeat(pinned).code(), absl::StatusCode::kNotFound);
  (void)clients_.Join("b", 0, 1);
  EXPECT_EQ(clients_.LiveTenants(), 2);
}

}  // namespace
}  // namespace braid::aggregator
