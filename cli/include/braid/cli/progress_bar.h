// `braid run`'s progress on a terminal: one line redrawn in place
// ("\r...\x1b[K"), instead of the plain line per round it prints when its
// output is a file or a pipe.
#ifndef BRAID_CLI_PROGRESS_BAR_H_
#define BRAID_CLI_PROGRESS_BAR_H_

#include <string>

namespace braid::cli {

// "[#######.............]  round 4/10  40%  <metrics>" with `width` cells
// of bar, `metrics` being the round's figures as the plain progress line
// shows them (e.g. "eval_loss 0.4012  eval_accuracy 0.8592"); done is
// clamped to [0, total]. No "\r".
std::string ProgressBar(int done, int total, const std::string& metrics, int width = 30);

}  // namespace braid::cli

#endif  // BRAID_CLI_PROGRESS_BAR_H_
