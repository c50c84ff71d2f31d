#include "braid/federation/invitation_board.h"

#include <thread>

#include "gtest/gtest.h"

namespace braid::federation {
namespace {

v1::Invitation Invite(const std::string& uid) {
  v1::Invitation inv;
  inv.set_job_uid(uid);
  inv.set_job_name("notes-lora");
  return inv;
}

TEST(InvitationBoardTest, EachSiteSeesItsOwnSetAndVersionsGrowOnChangeOnly) {
  InvitationBoard board;
  EXPECT_EQ(board.Get("st-mary").version, 0u);
  board.Set("st-mary", {Invite("a")});
  board.Set("charite", {Invite("b"), Invite("c")});
  InvitationBoard::Snapshot mary = board.Get("st-mary");
  ASSERT_EQ(mary.invitations.size(), 1u);
  EXPECT_EQ(mary.invitations[0].job_uid(), "a");
  EXPECT_EQ(board.Get("charite").invitations.size(), 2u);

  const uint64_t v = board.version();
  board.Set("st-mary", {Invite("a")});  // the same set
  EXPECT_EQ(board.version(), v);
  EXPECT_EQ(board.Get("st-mary").version, mary.version);
  board.Set("st-mary", {});  // withdrawn
  EXPECT_GT(board.Get("st-mary").version, mary.version);
  EXPECT_TRUE(board.Get("st-mary").invitations.empty());
  board.Set("nobody", {});  // never set, still empty: no change
  EXPECT_EQ(board.version(), v + 1);
}

TEST(InvitationBoardTest, WaitersWakeOnChangeOnWakeAndOnShutdown) {
  InvitationBoard board;
  // A deadline in the past returns at once with the version.
  EXPECT_EQ(board.WaitForChange(0, absl::InfinitePast()), 0u);

  uint64_t seen = 0;
  std::thread waiter([&] { seen = board.WaitForChange(0, absl::InfiniteFuture()); });
  board.Set("st-mary", {Invite("a")});
  waiter.join();
  EXPECT_EQ(seen, 1u);

  // A Wake is not lost on a waiter that starts waiting after it, and
  // changes no site's set.
  const uint64_t mary = board.Get("st-mary").version;
  std::thread woken([&] { seen = board.WaitForChange(1, absl::InfiniteFuture()); });
  board.Wake();
  woken.join();
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(board.Get("st-mary").version, mary);

  std::thread stopped([&] { board.WaitForChange(2, absl::InfiniteFuture()); });
  board.Shutdown();
  stopped.join();
  EXPECT_TRUE(board.shut_down());
  EXPECT_EQ(board.WaitForChange(2, absl::InfiniteFuture()), 2u) << "returns at once after shutdown";
}

}  // namespace
}  // namespace braid::federation
