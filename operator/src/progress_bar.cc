#include "braid/operator/progress_bar.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace braid::op {

std::string ProgressBar(int done, int total, double eval_loss, double eval_accuracy, int width) {
  total = std::max(total, 1);
  done = std::clamp(done, 0, total);
  width = std::max(width, 1);
  const int filled = done * width / total;
  return absl::StrFormat("[%s%s]  round %d/%d  %3d%%  eval_loss %.4f  eval_accuracy %.4f",
                         std::string(filled, '#'), std::string(width - filled, '.'), done, total,
                         done * 100 / total, eval_loss, eval_accuracy);
}

}  // namespace braid::op
