// A test-only strategy decorator: writes every FIT update, as the aggregator
// received it (masked under secure aggregation), to a directory before the
// wrapped strategy folds it. Lets an end-to-end test check what the
// aggregator sees. Target braid_aggregator_testing; never in what ships.
#ifndef BRAID_AGGREGATOR_TESTING_RECORDING_STRATEGY_H_
#define BRAID_AGGREGATOR_TESTING_RECORDING_STRATEGY_H_

#include <memory>
#include <string>

#include "braid/aggregator/strategy.h"

namespace braid::aggregator {

// Each update goes to <dir>/round<R>-<tenant>-<replica>.bin (replaced if it
// exists); a write that fails is logged and the update is folded anyway.
// Everything else is the wrapped strategy's. Thread-compatible, as any
// strategy.
std::unique_ptr<AggregationStrategy> RecordUploads(std::unique_ptr<AggregationStrategy> inner,
                                                   std::string dir);

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_TESTING_RECORDING_STRATEGY_H_
