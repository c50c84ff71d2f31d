// braid-aggregator: serves one FederatedJob's rounds over gRPC.
//
// Exit status: 0 the job succeeded, 3 it failed (reason in the log and in
// <checkpoint-dir>/state.json), 2 bad arguments or job file, 1 other errors.
#include "absl/flags/usage.h"
#include "aggregator_main.h"
#include "braid/aggregator/malloc_tuning.h"
#include "braid/core/cli_flags.h"

int main(int argc, char** argv) {
  braid::aggregator::TuneMallocForFrames();
  absl::SetProgramUsageMessage("braid-aggregator --job FILE --checkpoint-dir DIR [flags]");
  braid::ParseFlags(argc, argv);
  return braid::aggregator::RunAggregator({});
}
