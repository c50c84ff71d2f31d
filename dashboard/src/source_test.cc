#include "braid/dashboard/source.h"

#include "gtest/gtest.h"

namespace braid::dashboard {
namespace {

using nlohmann::json;

TEST(JobRow, ShowsAJobFromItsStatus) {
  const json status = {{"phase", "Running"},
                       {"reason", "RoundsRunning"},
                       {"message", "2 of 5 rounds done; 3 workers joined"},
                       {"round", 2},
                       {"metrics", {{"trainLoss", 0.5}, {"evalLoss", 0.7}, {"evalAccuracy", 0.8}}},
                       {"privacy", {{"epsilon", 1.5}, {"delta", 1e-5}, {"maxEpsilon", 8.0}}}};
  const json row = JobRow("lab", "train", status, 5, 9.0);
  EXPECT_EQ(row["namespace"], "lab");
  EXPECT_EQ(row["name"], "train");
  EXPECT_EQ(row["phase"], "Running");
  EXPECT_EQ(row["reason"], "RoundsRunning");
  EXPECT_EQ(row["round"], 2);
  EXPECT_EQ(row["total_rounds"], 5);
  EXPECT_DOUBLE_EQ(row["train_loss"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(row["eval_accuracy"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(row["epsilon"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(row["max_epsilon"].get<double>(), 8.0) << "the status' budget first";
}

TEST(JobRow, ANewJobIsPendingWithTheSpecsBudget) {
  const json row = JobRow("lab", "train", json(), 5, 8.0);
  EXPECT_EQ(row["phase"], "Pending");
  EXPECT_EQ(row["reason"], "");
  EXPECT_EQ(row["round"], 0);
  EXPECT_TRUE(row["train_loss"].is_null());
  EXPECT_TRUE(row["epsilon"].is_null());
  EXPECT_DOUBLE_EQ(row["max_epsilon"].get<double>(), 8.0);
  EXPECT_TRUE(JobRow("lab", "train", json::object(), 5, nullptr)["max_epsilon"].is_null());
}

}  // namespace
}  // namespace braid::dashboard
