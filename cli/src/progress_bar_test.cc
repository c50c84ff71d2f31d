#include "braid/cli/progress_bar.h"

#include "gtest/gtest.h"

namespace braid::cli {
namespace {

TEST(ProgressBar, FillsInProportionToRoundsDone) {
  EXPECT_EQ(ProgressBar(0, 10, "eval_loss 0.9000", 10),
            "[..........]  round 0/10    0%  eval_loss 0.9000");
  EXPECT_EQ(ProgressBar(4, 10, "eval_loss 0.4012  perplexity 1.4936", 10),
            "[####......]  round 4/10   40%  eval_loss 0.4012  perplexity 1.4936");
  EXPECT_EQ(ProgressBar(10, 10, "x", 10), "[##########]  round 10/10  100%  x");
}

TEST(ProgressBar, ClampsWhatIsOutOfRange) {
  EXPECT_EQ(ProgressBar(12, 10, "", 4).substr(0, 6), "[####]");
  EXPECT_EQ(ProgressBar(-1, 0, "", 4).substr(0, 6), "[....]");
}

}  // namespace
}  // namespace braid::cli
