#include "braid/cli/progress_bar.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace braid::cli {

std::string ProgressBar(int done, int total, const std::string& metrics, int width) {
  total = std::max(total, 1);
  done = std::clamp(done, 0, total);
  width = std::max(width, 1);
  const int filled = done * width / total;
  return absl::StrFormat("[%s%s]  round %d/%d  %3d%%  %s", std::string(filled, '#'),
                         std::string(width - filled, '.'), done, total, done * 100 / total,
                         metrics);
}

}  // namespace braid::cli
