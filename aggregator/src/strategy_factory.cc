#include "braid/aggregator/strategy_factory.h"

#include "absl/strings/str_cat.h"
#include "strategies.h"

namespace braid::aggregator {

absl::StatusOr<std::unique_ptr<AggregationStrategy>> CreateStrategy(
    const StrategyOptions& options) {
  if (options.name != "fedavg") {
    return absl::InvalidArgumentError(absl::StrCat("spec.strategy.name: unknown strategy '",
                                                   options.name, "'; use fedavg"));
  }
  if (options.secure_aggregation) return NewSecAggSumStrategy(options.dp);
  if (options.dp.enabled) return NewDpFedAvgStrategy(options.dp);
  return NewFedAvgStrategy();
}

}  // namespace braid::aggregator
