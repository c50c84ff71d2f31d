// The checkpoint's state.json: never written in a form that cannot be read
// back, and a corrupt value on disk named by its path in the file.
#include "braid/aggregator/checkpoint.h"

#include <limits>
#include <string>

#include "braid/core/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_checkpoint.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

CheckpointState StateWithOneRound() {
  CheckpointState state;
  state.job = "job";
  state.phase = "Running";
  RoundRecord r;
  r.round = 1;
  r.participants = 2;
  r.tenants = {"a", "b"};
  r.train_loss = 0.5;
  r.tenant_eval.push_back({"a", 0.25, 0.75, 10});
  r.evaluated = true;
  state.history.push_back(r);
  return state;
}

TEST(CheckpointTest, AStateRoundTrips) {
  absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("checkpoint_roundtrip", 4);
  ASSERT_TRUE(cp.ok()) << cp.status();
  ASSERT_TRUE(cp->checkpoint->WriteState(StateWithOneRound()).ok());
  absl::StatusOr<Checkpoint> again = Checkpoint::Open(cp->dir, "job", "");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->state().history.size(), 1u);
  EXPECT_EQ(again->state().history[0].train_loss, 0.5);
  EXPECT_EQ(again->state().history[0].tenants, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(again->state().history[0].tenant_eval[0].eval_accuracy, 0.75);
}

TEST(CheckpointTest, ANonFiniteNumberIsNeverWrittenAndTheLastStateStays) {
  absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("checkpoint_nan", 4);
  ASSERT_TRUE(cp.ok()) << cp.status();
  ASSERT_TRUE(cp->checkpoint->WriteState(StateWithOneRound()).ok());
  CheckpointState bad = StateWithOneRound();
  bad.history[0].tenant_eval[0].eval_loss = std::numeric_limits<double>::quiet_NaN();
  const absl::Status s = cp->checkpoint->WriteState(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("history[0].tenant_eval[0].eval_loss"));
  bad = StateWithOneRound();
  bad.history[0].update_norm_mean = std::numeric_limits<double>::infinity();
  EXPECT_THAT(std::string(cp->checkpoint->WriteState(bad).message()),
              HasSubstr("history[0].update_norm_mean"));
  // What is on disk is the last good state, and it loads.
  absl::StatusOr<Checkpoint> again = Checkpoint::Open(cp->dir, "job", "");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state().history[0].train_loss, 0.5);
}

// Replaces `from` by `to` in the state file of `dir`, once.
void Corrupt(const std::string& dir, const std::string& from, const std::string& to) {
  absl::StatusOr<std::string> text = ReadSmallFile(dir + "/state.json", 1 << 20);
  ASSERT_TRUE(text.ok()) << text.status();
  const size_t at = text->find(from);
  ASSERT_NE(at, std::string::npos) << *text;
  text->replace(at, from.size(), to);
  ASSERT_TRUE(WriteFileAtomically(dir + "/state.json", {*text}).ok());
}

TEST(CheckpointTest, ACorruptValueOnDiskIsNamedByItsPath) {
  absl::StatusOr<TestCheckpoint> cp = MakeTestCheckpoint("checkpoint_corrupt", 4);
  ASSERT_TRUE(cp.ok()) << cp.status();
  ASSERT_TRUE(cp->checkpoint->WriteState(StateWithOneRound()).ok());
  // As an older aggregator wrote a NaN training loss.
  Corrupt(cp->dir, "\"train_loss\": 0.5", "\"train_loss\": null");
  absl::StatusOr<Checkpoint> again = Checkpoint::Open(cp->dir, "job", "");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("state.json: corrupt checkpoint state: history[0].train_loss: expected a "
                        "finite number, got null"));
  Corrupt(cp->dir, "\"train_loss\": null", "\"train_loss\": 0.5");
  Corrupt(cp->dir, "\"eval_examples\": 10", "\"eval_examples\": \"ten\"");
  again = Checkpoint::Open(cp->dir, "job", "");
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr("history[0].tenant_eval[0].eval_examples: expected an integer in range, "
                        "got \"ten\""));
  Corrupt(cp->dir, "\"eval_examples\": \"ten\"", "\"eval_examples\": 10");
  Corrupt(cp->dir, "\"job\": \"job\"", "\"job\": 7");
  again = Checkpoint::Open(cp->dir, "job", "");
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("job: expected a string, got 7"));
  Corrupt(cp->dir, "\"job\": 7", "\"job\": \"job\"");
  EXPECT_TRUE(Checkpoint::Open(cp->dir, "job", "").ok());
  Corrupt(cp->dir, "{", "[");
  again = Checkpoint::Open(cp->dir, "job", "");
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("not valid JSON"));
}

}  // namespace
}  // namespace braid::aggregator
