#include "braid/aggregator/strategy_factory.h"

#include "absl/strings/str_cat.h"
#include "strategies.h"

namespace braid::aggregator {

absl::StatusOr<std::unique_ptr<AggregationStrategy>> CreateStrategy(
    const StrategyOptions& options) {
  std::unique_ptr<AggregationStrategy> average;
  if (options.secure_aggregation) {
    average = NewSecAggSumStrategy(options.dp);
  } else if (options.dp.enabled) {
    average = NewDpFedAvgStrategy(options.dp);
  } else {
    average = NewFedAvgStrategy();
  }
  if (options.name == "fedavg") return average;
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> optimized =
      NewServerOptimizerStrategy(options.name, options.server, std::move(average));
  if (!optimized.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.strategy.name: unknown strategy '", options.name,
                     "'; use fedavg, fedavgm, fedadam, fedyogi or fedadagrad"));
  }
  return optimized;
}

}  // namespace braid::aggregator
