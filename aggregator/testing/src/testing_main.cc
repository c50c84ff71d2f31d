// braid-aggregator-testing: braid-aggregator plus test hooks, for the
// end-to-end tests only (built with BRAID_BUILD_TESTS, never shipped).
//   --record-uploads=DIR  every FIT upload, as received (masked under
//                         secure aggregation), is written to DIR (see
//                         recording_strategy.h)
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "aggregator_main.h"
#include "braid/aggregator/malloc_tuning.h"
#include "braid/aggregator/testing/recording_strategy.h"
#include "braid/core/cli_flags.h"

ABSL_FLAG(std::string, record_uploads, "",
          "write every FIT upload, as received (masked under secure aggregation), to this "
          "directory");

int main(int argc, char** argv) {
  braid::aggregator::TuneMallocForFrames();
  absl::SetProgramUsageMessage(
      "braid-aggregator-testing --job FILE --checkpoint-dir DIR [flags] (tests only)");
  braid::ParseFlags(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_record_uploads);
  return braid::aggregator::RunAggregator(
      [&dir](std::unique_ptr<braid::aggregator::AggregationStrategy> strategy)
          -> absl::StatusOr<std::unique_ptr<braid::aggregator::AggregationStrategy>> {
        if (dir.empty()) return strategy;
        return braid::aggregator::RecordUploads(std::move(strategy), dir);
      });
}
