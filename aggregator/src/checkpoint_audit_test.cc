// The audit anchor in state.json (checkpoint.h): kept across writes of the
// state, read back at Open, and refused when it cannot be an anchor.
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "braid/aggregator/checkpoint.h"
#include "braid/core/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

json StateJson(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadSmallFile(dir + "/state.json", 1 << 20);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? json::parse(*text) : json();
}

TEST(CheckpointAuditTest, AnchorIsWrittenKeptByStateWritesAndReadBack) {
  absl::StatusOr<TestCheckpoint> t = MakeTestCheckpoint("anchor", 4);
  ASSERT_TRUE(t.ok()) << t.status();
  Checkpoint& cp = *t->checkpoint;
  EXPECT_EQ(cp.audit_anchor(), audit::Anchor{});
  EXPECT_FALSE(StateJson(t->dir).contains("audit"));

  const audit::Anchor anchor{7, std::string(64, 'c')};
  ASSERT_TRUE(cp.WriteAuditAnchor(anchor).ok());
  EXPECT_EQ(StateJson(t->dir)["audit"], (json{{"entries", 7}, {"head", anchor.head}}));

  // The engine's state writes keep it.
  CheckpointState state = cp.state();
  state.phase = "Running";
  RoundRecord first;
  first.round = 1;
  state.history.push_back(first);
  ASSERT_TRUE(cp.WriteState(state).ok());
  EXPECT_EQ(StateJson(t->dir)["audit"]["entries"], 7);
  EXPECT_EQ(StateJson(t->dir)["phase"], "Running");

  // An anchor written later keeps the state.
  ASSERT_TRUE(cp.WriteAuditAnchor({8, std::string(64, 'd')}).ok());
  EXPECT_EQ(StateJson(t->dir)["history"].size(), 1u);

  absl::StatusOr<Checkpoint> reopened = Checkpoint::Open(t->dir, "job", "");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(reopened->audit_anchor(), (audit::Anchor{8, std::string(64, 'd')}));
  EXPECT_EQ(reopened->state().history.size(), 1u);
}

TEST(CheckpointAuditTest, AMalformedAnchorIsCorruptState) {
  absl::StatusOr<TestCheckpoint> t = MakeTestCheckpoint("bad_anchor", 4);
  ASSERT_TRUE(t.ok()) << t.status();
  json state = StateJson(t->dir);
  state["audit"] = {{"entries", 3}, {"head", "not-a-hash"}};
  std::ofstream(t->dir + "/state.json", std::ios::trunc) << state.dump();
  absl::StatusOr<Checkpoint> reopened = Checkpoint::Open(t->dir, "job", "");
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(reopened.status().message(), HasSubstr("state.json: audit.head"));
}

}  // namespace
}  // namespace braid::aggregator
