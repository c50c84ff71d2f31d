#include "braid/operator/progress_bar.h"

#include "gtest/gtest.h"

namespace braid::op {
namespace {

TEST(ProgressBar, FillsInProportionToRoundsDone) {
  EXPECT_EQ(ProgressBar(0, 10, 0.9, 0.5, 10),
            "[..........]  round 0/10    0%  eval_loss 0.9000  eval_accuracy 0.5000");
  EXPECT_EQ(ProgressBar(4, 10, 0.40123, 0.8592, 10),
            "[####......]  round 4/10   40%  eval_loss 0.4012  eval_accuracy 0.8592");
  EXPECT_EQ(ProgressBar(10, 10, 0.3, 0.9, 10),
            "[##########]  round 10/10  100%  eval_loss 0.3000  eval_accuracy 0.9000");
}

TEST(ProgressBar, ClampsWhatIsOutOfRange) {
  EXPECT_EQ(ProgressBar(12, 10, 0, 0, 4).substr(0, 6), "[####]");
  EXPECT_EQ(ProgressBar(-1, 0, 0, 0, 4).substr(0, 6), "[....]");
}

}  // namespace
}  // namespace braid::op
