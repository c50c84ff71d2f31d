// The body of the braid-aggregator program, shared by the shipped binary
// (main.cc) and the test-only braid-aggregator-testing
// (testing/src/testing_main.cc), which adds test hooks around the strategy.
#ifndef BRAID_AGGREGATOR_SRC_AGGREGATOR_MAIN_H_
#define BRAID_AGGREGATOR_SRC_AGGREGATOR_MAIN_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "braid/aggregator/strategy.h"

namespace braid::aggregator {

// Wraps the strategy the job asks for (e.g. in a test-only decorator); an
// error ends the program with status 2.
using StrategyDecorator = std::function<absl::StatusOr<std::unique_ptr<AggregationStrategy>>(
    std::unique_ptr<AggregationStrategy>)>;

// Runs the aggregator on the parsed flags (--job, --checkpoint-dir, ...)
// until the job ends (and --linger has passed) or SIGINT/SIGTERM. Returns
// the exit status: 0 the job succeeded, 3 it failed (reason in the log and
// in <checkpoint-dir>/state.json), 2 bad arguments or job file, 1 other
// errors. `decorate` (may be empty) wraps the job's strategy.
int RunAggregator(const StrategyDecorator& decorate);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SRC_AGGREGATOR_MAIN_H_
